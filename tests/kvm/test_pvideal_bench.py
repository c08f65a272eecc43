"""pv-ideal end to end on /dev/kvm: the hand-written PV driver and the pvring device, measured and verified."""

from __future__ import annotations

import pytest

from pvgen.bench import workload as wl
from pvgen.bench.diskbench import DiskHost
from pvgen.bench.kits import KITS
from pvgen.bench.machine import run_guest
from pvgen.bench.netbench import NetHost
from pvgen.bench.runner import run_variant
from pvgen.bench.variants import VARIANTS

pytestmark = pytest.mark.kvm


def run(workload: str, ops: int, batch: int, host=None):
    host = host or (NetHost(7, ops) if workload == "net" else DiskHost(7, ops))
    return run_variant(VARIANTS["pv-ideal"], KITS["pvideal"], run_guest, wl.Params(workload, ops, seed=7,
                                                                                     batch=batch), host)


@pytest.mark.parametrize("workload", ["net", "disk"])
def test_pvideal_batched_at_most_one_exit_per_op(kvm, workload):
    r = run(workload, 64, batch=8)
    assert r.status == "ok", (r.reason, r.checks)
    assert r.verified and all(c.startswith("ok") for c in r.checks)
    for p in r.phases:
        assert p.ops == (64 if p.name in ("tx", "rx", "disk") else 32 if p.name in ("read", "write") else 16)
        assert p.exits > 0 and p.wall_s > 0
        if p.name in ("tx", "rx", "disk"):     # a quarter of 16 requests pays its closing mark and a tick or two
            assert p.exits_per_op <= 1.0, (p.name, p.exits, p.stats)


@pytest.mark.parametrize("workload", ["net", "disk"])
def test_pvideal_one_doorbell_per_request(kvm, workload):
    """batch=1: each request is exactly one port write that reaches the monitor, plus the marks inside the phase:
    the closing one (and for the whole disk phase, the three quarter marks; the read/write sums have two)."""
    r = run(workload, 40, batch=1)
    assert r.status == "ok" and r.verified, (r.reason, r.checks)
    marks = {"disk": 4, "read": 2, "write": 2}
    for p in r.phases:
        assert p.breakdown.get("IO") == p.ops + marks.get(p.name, 1), (p.name, p.breakdown)
        assert p.exits >= p.ops


class CorruptingPeer(NetHost):
    """A peer that flips one bit of the 3rd transmitted frame: the variant must fail verification."""

    def __post_init__(self) -> None:
        super().__post_init__()
        send = self.peer.send

        def corrupt(frame: bytes) -> None:
            if len(self.peer.sent) == 2:
                frame = frame[:20] + bytes([frame[20] ^ 1]) + frame[21:]
            send(frame)
        self.peer.send = corrupt


def test_corrupted_frame_fails_the_variant(kvm):
    r = run("net", 8, batch=4, host=CorruptingPeer(7, 8))
    assert r.status == "failed" and not r.verified
    assert "transmitted frame 2 differs" in r.reason
    assert r.phases                       # still measured: the counts are real, the verdict is failed


class LosingDisk(DiskHost):
    """A disk whose final image lost one written block."""

    def final_image(self) -> bytes:
        img = bytearray(super().final_image())
        img[0:wl.BLOCK] = bytes(wl.BLOCK)
        return bytes(img)


def test_lost_write_fails_the_variant(kvm):
    r = run("disk", 16, batch=4, host=LosingDisk(7, 16))
    assert r.status == "failed" and "image block 0 differs" in r.reason


@pytest.mark.parametrize("workload", ["net", "disk"])
def test_pvideal_interrupt_completion(kvm, workload):
    """With irq=LINE every batch completes by an interrupt that KVM injects (and the data still verifies)."""
    ops, batch = 16, 4
    host = NetHost(7, ops) if workload == "net" else DiskHost(7, ops)
    params = wl.Params(workload, ops, seed=7, batch=batch, extra={"pv_irq": True})
    r = run_variant(VARIANTS["pv-ideal"], KITS["pvideal"], run_guest, params, host)
    assert r.status == "ok" and r.verified, (r.reason, r.checks)
    assert " irq=" in r.info["cmdline"]
    for p in r.phases:
        assert p.stats.get("irq_injections", 0) >= p.ops // batch, (p.name, p.stats)
        assert p.breakdown.get("IO", 0) >= 2 * (p.ops // batch)     # a doorbell and an ISR read per batch
