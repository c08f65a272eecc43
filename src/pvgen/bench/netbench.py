"""The net workload's host side: the frames the peer injects, the recording of what the guest sent, and the check."""

from __future__ import annotations

from dataclasses import dataclass, field

from pvgen.bench import workload as wl
from pvgen.bench.runner import GuestRun
from pvgen.devices.pvring import ListPeer


def expected_tx(seed: int, n: int) -> list[bytes]:
    return [wl.frame(seed, wl.TAG_TX, i) for i in range(n)]


def expected_rx(seed: int, n: int) -> list[bytes]:
    return [wl.frame(seed, wl.TAG_RX, i) for i in range(n)]


@dataclass
class NetHost:
    """One variant's peer: N frames queued for injection before the guest starts; every transmitted frame recorded.
    A kit attaches `peer` (send/recv/inject, devices/pvring.py ListPeer) to its NIC model's packet backend."""

    seed: int
    ops: int
    workload: str = "net"
    peer: ListPeer = field(default_factory=ListPeer)

    def __post_init__(self) -> None:
        self.rx = expected_rx(self.seed, self.ops)
        self.peer.inject(list(self.rx))

    def verify(self, run: GuestRun) -> list[str]:
        return verify_net(self.seed, self.ops, self.peer.sent, self.rx, run.console)


def verify_net(seed: int, ops: int, sent: list[bytes], rx: list[bytes], console: str) -> list[str]:
    """Transmitted frames byte-for-byte against the expected sequence; received ones through the guest's CRC chain."""
    checks = []
    tx = expected_tx(seed, ops)
    bad = next((i for i, (a, b) in enumerate(zip(sent, tx)) if a != b), None)
    if len(sent) == len(tx) and bad is None:
        checks.append(f"ok: {len(tx)} transmitted frames ({sum(map(len, tx))} bytes) equal the expected ones")
    elif bad is not None:
        checks.append(f"FAIL: transmitted frame {bad} differs (len {len(sent[bad])}, expected {len(tx[bad])})")
    else:
        checks.append(f"FAIL: peer recorded {len(sent)} frames, expected {len(tx)}")
    try:
        res = wl.parse_result(console)
    except Exception as exc:  # noqa: BLE001 - a missing or malformed result line is a failed check, not a crash
        return checks + [f"FAIL: {exc}"]
    want_crc, want_bytes = wl.frames_crc(rx), sum(map(len, rx))
    got = (res.get("rx"), res.get("rx_bytes"), res.get("rx_crc"))
    if got == (ops, want_bytes, want_crc):
        checks.append(f"ok: {ops} received frames ({want_bytes} bytes) match the injected ones (crc {want_crc:#010x})")
    else:
        checks.append(f"FAIL: received rx={got[0]} bytes={got[1]} crc={got[2]:#x}, expected rx={ops} "
                      f"bytes={want_bytes} crc={want_crc:#010x}" if got[2] is not None else
                      f"FAIL: guest result lacks rx/rx_bytes/rx_crc: {res}")
    if res.get("errors", 0):
        checks.append(f"FAIL: the guest counted {res['errors']} request errors")
    return checks
