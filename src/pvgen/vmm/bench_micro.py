"""`pvgen bench micro`: N posted `outb` then one strict read, as original / coalesced / generated code, and the
raw cost of a KVM_RUN round trip and of a full dispatch per exit."""

from __future__ import annotations

import ctypes
import fcntl
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

from pvgen.errors import PvgenError
from pvgen.guest import build
from pvgen.vmm import kvm
from pvgen.vmm.hxdev import SINK_PORT_BASE
from pvgen.vmm.machine import Machine

WORKLOADS = Path(build.__file__).resolve().parent / "workloads"
MICRO_SRC = WORKLOADS / "micro.c"
POSTED_PORT, STRICT_PORT = SINK_PORT_BASE, SINK_PORT_BASE + 1
RESULT = re.compile(r"PVGEN-MICRO outs=(\d+) strict_read=(\d+) expected=(\d+) guest_ns=(\d+)")
VARIANTS = ("original", "coalesced", "generated")


class Unavailable(PvgenError):
    """A variant whose pieces (rewriter, batching runtime, pvbatch device) are not there yet."""


@dataclass
class Images:
    original: Path
    generated: Path | None
    generated_reason: str = ""
    threshold: int | None = None


def build_original(workdir: Path) -> Path:
    obj = build.compile_source(MICRO_SRC, build.CFLAGS, include_dirs=[WORKLOADS])
    return build.link_image([obj], workdir / "micro-original.elf")


def build_rewritten(src: Path, workdir: Path, name: str) -> Path:
    """A C workload as generated code: gcc -S, pvgen.rewrite.rewrite_text, as, then linked with the batching
    runtime (`pvgen runtime build --target x86_64 --backend batch`) and the harness."""
    try:
        from pvgen.rewrite import rewrite_text
    except ImportError as exc:
        raise Unavailable(f"rewriter: {exc}") from None
    try:
        from pvgen.runtime import build as rt_build
    except ImportError as exc:
        raise Unavailable(f"batching runtime build (pvgen.runtime.build): {exc}") from None
    asm = build.compile_to_asm(src, workdir / f"{name}.s", build.CFLAGS + [f"-I{WORKLOADS}"])
    result = rewrite_text(asm.read_text(), str(asm))
    if not result.sites:
        raise Unavailable(f"the rewriter found no site in {asm.name}")
    pv = workdir / f"{name}.pv.s"
    pv.write_text(result.text)
    obj = build.assemble(pv, workdir / f"{name}.pv.o")
    rt = rt_build.build("x86_64", "batch", workdir / "pvio-x86_64-batch.o")
    return build.link_image([obj, rt], workdir / f"{name}-generated.elf")


def build_generated(workdir: Path) -> tuple[Path, int | None]:
    """The micro benchmark as generated code, and the runtime's default flush threshold."""
    from pvgen import protocol

    return build_rewritten(MICRO_SRC, workdir, "micro"), getattr(protocol, "DEFAULT_THRESHOLD", None)


def attach_pvbatch(m: Machine):
    try:
        from pvgen.devices.pvbatch import PvBatch
    except ImportError as exc:
        raise Unavailable(f"pvbatch device: {exc}") from None
    return PvBatch.attach(m.ports, m.mem)


def run_variant(variant: str, image: Path, outs: int, timeout: float = 60.0) -> dict:
    with Machine() as m:
        if variant == "coalesced":
            m.add_coalesced_pio(POSTED_PORT, 1)
        pvb = attach_pvbatch(m) if variant == "generated" else None
        m.boot(image, f"outs={outs} port={POSTED_PORT:#x} strict={STRICT_PORT:#x}")
        res = m.run(timeout=timeout)
        sink_count = m.sink.count
        pvb_stats = vars(pvb.stats).copy() if pvb is not None else None
    if res.stop != "exit":
        raise PvgenError(f"micro {variant}: guest stopped ({res.stop}): {res.message}")
    phase = res.phase(1, 2)
    found = RESULT.search(res.console.decode("utf-8", "replace"))
    verified = bool(found) and res.code == 0 and sink_count == outs
    return {
        "variant": variant,
        "outs": outs,
        "exits": phase.stats.get("exits", 0),
        "io_exits": phase.stats.get("io_exits", 0),
        "kvm_run_io": phase.run_exits.get("IO", 0),
        "kvm_run_exits": phase.run_exits,
        "io_exits_by_port": phase.extra.get("io_exits_by_port", {}),
        "wall_s": phase.wall_s,
        "ns_per_out": phase.wall_s * 1e9 / max(outs, 1),
        "guest_loop_s": int(found.group(4)) / 1e9 if found else None,
        "verified": verified,
        "sink_count": sink_count,
        "coalesced_entries": res.report.extra.get("coalesced_entries"),
        "pvbatch": pvb_stats,
        "console": res.console.decode("utf-8", "replace")[-400:],
        "stats": {k: v for k, v in phase.stats.items() if v},
    }


def roundtrip(image: Path, n: int = 20000, rounds: int = 8) -> dict:
    """Per-exit costs on this host, from a CPL3 guest that does `outb` forever:
    - ioctl_us: KVM_RUN with kvm_run.immediate_exit set (the syscall, no guest entry);
    - kvm_run_us: KVM_RUN returning one KVM_EXIT_IO each, the loop only reads the exit reason;
    - dispatch_us: the monitor's full exit path (exit reason, counters, handle_io, port bus, device);
    - python_us: dispatch_us - kvm_run_us, the monitor's own share in the loop (Python and its cache footprint);
    - handler_warm_us: handle_io + bus + device alone, repeated on one exit with warm caches.
    The three loops alternate in `rounds` slices, so load changes on a shared host hit them alike."""
    with Machine() as m:
        m.boot(image, f"spin=1 port={POSTED_PORT:#x}")
        fd, run_mm = m.vcpu.fd, m.vcpu.run_mm
        libc = ctypes.CDLL(None, use_errno=True)
        req = kvm.KVM_RUN
        run_once, counts, handlers = m.vcpu.run_once, m.run_exits, m._handlers
        m.vcpu.run_once()   # first entry: boot to the loop (not timed)
        handlers[kvm.KVM_EXIT_IO]()
        ioctl_s = bare_s = full_s = 0.0
        delivered = 0
        k = max(n // rounds, 1)
        for _ in range(rounds):
            run_mm[1] = 1
            t = time.perf_counter()
            for _ in range(k):
                libc.ioctl(fd, req, 0)
            ioctl_s += time.perf_counter() - t
            run_mm[1] = 0
            t = time.perf_counter()
            for _ in range(k):
                fcntl.ioctl(fd, req, 0)
                run_mm[8]
            bare_s += time.perf_counter() - t
            before = m.sink.count
            t = time.perf_counter()
            for _ in range(k):
                reason = run_once()
                counts[reason & 63] += 1
                handlers[reason]()
            full_s += time.perf_counter() - t
            delivered += m.sink.count - before
        io = handlers[kvm.KVM_EXIT_IO]   # the handler alone, warm, replaying the last exit
        t = time.perf_counter()
        for _ in range(k):
            io()
        handler_s = (time.perf_counter() - t) / k
    total = k * rounds
    return {"n": total, "handler_warm_us": handler_s * 1e6, "ioctl_us": ioctl_s * 1e6 / total, "kvm_run_us": bare_s * 1e6 / total,
            "dispatch_us": full_s * 1e6 / total, "python_us": (full_s - bare_s) * 1e6 / total,
            "dispatch_delivered": delivered}


CPL0_SPIN = """\
/* A bare image (no harness) that stays at CPL0 and exits forever: for the CPL0 round-trip figure. */
\t.section .text.hx_boot, "ax"
\t.globl _start
_start:
1:\toutb %al, $0x80
\tjmp 1b
\t.section .note.GNU-stack, "", @progbits
"""


def cpl0_roundtrip(workdir: Path, n: int = 5000) -> float:
    """µs per bare KVM_RUN round trip when the exiting `outb` runs at CPL0 (emulated on hosts without VMX/SVM)."""
    import subprocess

    src = workdir / "cpl0spin.s"
    src.write_text(CPL0_SPIN)
    obj = build.assemble(src, workdir / "cpl0spin.o")
    elf = workdir / "cpl0spin.elf"
    subprocess.run(["ld", *build.LDFLAGS, "-T", str(build.LINKER_SCRIPT), "-o", str(elf), str(obj)], check=True,
                   capture_output=True)
    with Machine() as m:
        m.boot(elf)
        fd, req = m.vcpu.fd, kvm.KVM_RUN
        m.vcpu.run_once()
        t = time.perf_counter()
        for _ in range(n):
            fcntl.ioctl(fd, req, 0)
        return (time.perf_counter() - t) * 1e6 / n


def _median_run(variant: str, image: Path, outs: int, repeat: int) -> dict:
    """Run `repeat` times; keep the run with the median wall time, all wall times, and verified only if all were."""
    runs = sorted((run_variant(variant, image, outs) for _ in range(max(repeat, 1))), key=lambda r: r["wall_s"])
    res = runs[len(runs) // 2]
    res["verified"] = all(r["verified"] for r in runs)
    res["wall_s_all"] = [r["wall_s"] for r in runs]
    return res


def micro(outs: int, variants: list[str], workdir: Path, rt_n: int = 20000, repeat: int = 1) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    original = build_original(workdir)
    out: dict = {"schema": "pvgen-micro/1", "outs": outs, "repeat": repeat, "variants": {}}
    for v in variants:
        try:
            if v == "generated":
                image, threshold = build_generated(workdir)
                res = _median_run(v, image, outs, repeat)
                res["threshold"] = threshold
                if threshold:
                    res["bound"] = math.ceil(outs / threshold)
            else:
                res = _median_run(v, original, outs, repeat)
            res["status"] = "ok" if res["verified"] else "failed"
        except Unavailable as exc:
            res = {"variant": v, "status": "unavailable", "reason": str(exc)}
        out["variants"][v] = res
    base = out["variants"].get("original", {})
    for v, res in out["variants"].items():
        if res.get("status") == "ok" and base.get("status") == "ok" and v != "original":
            res["exit_reduction"] = base["exits"] / max(res["exits"], 1)
            res["speedup"] = base["wall_s"] / res["wall_s"] if res["wall_s"] else None
    if rt_n:
        out["roundtrip"] = roundtrip(original, rt_n)
        out["roundtrip"]["kvm_run_cpl0_us"] = cpl0_roundtrip(workdir, max(rt_n // 4, 1))
    return out
