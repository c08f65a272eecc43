"""One `pvgen qemu` boot: build the modules and the initramfs, start the peer or the disks, boot, and turn the
trace, the console and the host's checks into the bench's VariantResults (bench/results.py)."""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from pathlib import Path

from pvgen.bench import workload as wl
from pvgen.bench.diskbench import verify_disk
from pvgen.bench.netbench import expected_rx, verify_net
from pvgen.bench.results import Phase, VariantResult
from pvgen.errors import PvgenError
from pvgen.qemu.helper import build_helper
from pvgen.qemu.initramfs import build_initramfs
from pvgen.qemu.kernel import ensure_kernel
from pvgen.qemu.launcher import Boot, run_qemu
from pvgen.qemu.netpeer import NetPeer
from pvgen.qemu.trace import Segment, TraceCounter, phase_accesses
from pvgen.qemu.workloads import VARIANTS, WORKLOADS, Workload

DISK_BYTES = 16 << 20       # per variant: a disk of its own (the workload's blocks; counts do not depend on it)


def variant_modules(workload: Workload, variants: list[str]) -> dict[str, list[Path]]:
    """The .ko files of each variant, from the cached Kbuild builds of the corpus target."""
    from pvgen.toolchain.kbuild import TARGETS, build

    target = TARGETS.get(workload.target)
    if target is None:
        raise PvgenError(f"the corpus has no target {workload.target!r} for the {workload.name} workload")
    out = {}
    for v in variants:
        res = build(target, VARIANTS[v])
        out[v] = [res.modules[m] for m in workload.load]
    return out


def check_variants(spec: str) -> list[str]:
    names = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [n for n in names if n not in VARIANTS]
    if bad or not names:
        raise PvgenError(f"unknown variant {bad[0]!r}; choose from {', '.join(VARIANTS)}" if bad else
                         "no variant selected")
    return list(dict.fromkeys(names))


def run(workload_name: str, variants: list[str], ops: int, seed: int, *, timeout_s: float = 900.0,
        accel: str | None = None) -> tuple[dict[str, VariantResult], dict]:
    """Every variant in one boot; returns the results and the boot's details (accel, seconds, kernel)."""
    workload = WORKLOADS[workload_name]
    if workload.name == "disk" and ops < 4:
        raise PvgenError("disk needs --ops >= 4 (four quarters: seq write, seq read, random write, random read)")
    if not 1 <= ops <= 100_000:
        raise PvgenError(f"--ops {ops} is outside 1..100000")
    kernel = ensure_kernel()
    modules = variant_modules(workload, variants)
    blocks = DISK_BYTES // wl.BLOCK
    trace = TraceCounter(workload.device)
    with tempfile.TemporaryDirectory(prefix="pvgen-qemu-") as tmp:
        initrd = build_initramfs(Path(tmp) / "initrd.cpio", init=workload.script(variants, seed, ops, blocks),
                                 helper=build_helper(), modules=modules, kernel=kernel,
                                 kernel_modules=list(workload.kernel_modules))
        if workload.name == "net":
            peer = NetPeer(expected_rx(seed, ops), trace)
            peer.start()
            try:
                boot = run_qemu(kernel.image, initrd, workload.devices(netdev=peer.netdev("n0")), trace,
                                timeout_s=timeout_s, accel=accel)
            finally:
                peer.stop()
            results = _net_results(workload, variants, seed, ops, boot, trace, peer)
        else:
            initial = bytes(wl.initial_image(seed, DISK_BYTES))
            images = [Path(tmp) / f"disk{k}.img" for k in range(len(variants))]
            for img in images:
                img.write_bytes(initial)
            boot = run_qemu(kernel.image, initrd, workload.devices(images=[str(i) for i in images]), trace,
                            timeout_s=timeout_s, accel=accel)
            results = _disk_results(workload, variants, seed, ops, boot, trace, initial, images)
    transparency(results)
    info = {"accel": boot.accel, "boot_s": round(boot.seconds, 1), "kernel": kernel.version,
            "trace_lines": trace.lines, "device": workload.device.device, "console": boot.console}
    return results, info


def _console_parts(console: str, variants: list[str]) -> dict[str, str]:
    """The console text of each variant (from its PVGEN-VARIANT line to the next)."""
    text = console.replace("\r", "")
    parts = re.split(r"^PVGEN-VARIANT (\S+)$", text, flags=re.M)
    got = {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}
    return {v: got.get(v, "") for v in variants}


def _walls(console: str) -> dict[str, float]:
    m = re.findall(r"^PVGEN-WALL((?:\s+[\w-]+=[0-9.]+)+)", console, flags=re.M)
    return {k: float(v) for k, v in (kv.split("=") for kv in m[-1].split())} if m else {}


def _phases(workload: Workload, segs: list[Segment], ops: int, walls: dict[str, float]) -> list[Phase]:
    out = []
    for name, (start, end) in workload.phases.items():
        acc = phase_accesses(segs, start, end)
        if acc is None:
            continue
        n = 1 if name in wl.SETUP_PHASES else (ops if name in ("tx", "rx", "disk") else _quarter_ops(name, ops))
        total = sum(acc.values())
        out.append(Phase(name, n, total, total, walls.get(name, 0.0), stats=dict(_by_event(acc)),
                         breakdown={f"io {k}": c for k, c in sorted(acc.items())},
                         in_total=name not in wl.SETUP_PHASES))
    return out


def _quarter_ops(name: str, ops: int) -> int:
    q = ("seq-write", "seq-read", "rand-write", "rand-read").index(name)
    return wl.disk_quarter_start(q + 1, ops) - wl.disk_quarter_start(q, ops)


def _by_event(acc: Counter) -> Counter:
    out: Counter = Counter()
    for k, n in acc.items():
        out[k.split(" ")[0]] += n
    return out


def _result(workload: Workload, variant: str, segs: list[Segment] | None, ops: int, console: str,
            checks: list[str]) -> VariantResult:
    errors = re.findall(r"^PVGEN-ERROR .*$", console, flags=re.M)
    checks = checks + [f"FAIL: guest: {e}" for e in errors]
    phases = _phases(workload, segs, ops, _walls(console)) if segs is not None else []
    if len(phases) != len(workload.phases):
        checks.append(f"FAIL: {len(phases)} of {len(workload.phases)} phases marked in QEMU's trace")
    ok = all(c.startswith("ok") for c in checks)
    first_bad = next((c for c in checks if not c.startswith("ok")), "")
    return VariantResult(variant, "ok" if ok else "failed", first_bad.removeprefix("FAIL: "), phases, ok, checks)


def _net_results(workload: Workload, variants: list[str], seed: int, ops: int, boot: Boot, trace: TraceCounter,
                 peer: NetPeer) -> dict[str, VariantResult]:
    parts = _console_parts(boot.console, variants)
    by_variant = trace.variants()
    rx = expected_rx(seed, ops)
    out = {}
    for k, v in enumerate(variants):
        sent = peer.sent[k] if k < len(peer.sent) else []
        checks = verify_net(seed, ops, sent, rx, parts[v]) + [f"FAIL: peer: {e}" for e in peer.errors]
        out[v] = _result(workload, v, by_variant[k] if k < len(by_variant) else None, ops, parts[v], checks)
    return out


def _disk_results(workload: Workload, variants: list[str], seed: int, ops: int, boot: Boot, trace: TraceCounter,
                  initial: bytes, images: list[Path]) -> dict[str, VariantResult]:
    parts = _console_parts(boot.console, variants)
    by_variant = trace.variants()
    out = {}
    for k, v in enumerate(variants):
        checks = verify_disk(seed, ops, initial, images[k].read_bytes(), parts[v])
        out[v] = _result(workload, v, by_variant[k] if k < len(by_variant) else None, ops, parts[v], checks)
    return out


def transparency(results: dict[str, VariantResult], reference: str = "original") -> None:
    """The direct runtime executes each original instruction: every variant's accesses per phase must equal the
    reference's, access by access kind and register; a difference fails the variant (a check line)."""
    ref = results.get(reference)
    if ref is None or not ref.phases:
        return
    for name, r in results.items():
        if name == reference or not r.phases:
            continue
        for p in r.phases:
            q = ref.phase(p.name)
            if q is not None and q.breakdown != p.breakdown:
                diff = sorted(k for k in set(p.breakdown) | set(q.breakdown) if p.breakdown.get(k) != q.breakdown.get(k))
                r.checks.append(f"FAIL: {p.name}: {p.exits} port accesses, {reference} {q.exits} "
                                f"(first difference: {diff[0][3:]})")
                if r.status == "ok":
                    r.status, r.verified, r.reason = "failed", False, r.checks[-1].removeprefix("FAIL: ")
