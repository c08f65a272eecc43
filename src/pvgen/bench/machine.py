"""The bench's adapter to the monitor: run one GuestSpec in a fresh pvgen.vmm Machine, return console and marks."""

from __future__ import annotations

from pvgen.bench.runner import GuestRun, GuestSpec, Mark, Unavailable
from pvgen.protocol import PortClass


def posted_ranges(class_map: dict[int, tuple[PortClass, PortClass]]) -> list[tuple[int, int]]:
    """The ports whose writes the device models declare POSTED, merged into (base, length) runs."""
    ports = sorted(p for p, (_, w) in class_map.items() if w == PortClass.POSTED)
    runs: list[tuple[int, int]] = []
    for p in ports:
        if runs and runs[-1][0] + runs[-1][1] == p:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((p, 1))
    return runs


def _attach_pvbatch(m, classes) -> None:
    """Register the pvbatch device with the given published classes (the runtime issue's device)."""
    try:
        from pvgen.devices import pvbatch
    except ImportError as exc:
        raise Unavailable(f"pvbatch device: {exc}") from None
    attach = getattr(pvbatch, "attach", None)
    if attach is None:
        raise Unavailable("pvbatch device: pvgen.devices.pvbatch has no attach(machine, classes=...) yet")
    attach(m, classes=classes)


def run_guest(spec: GuestSpec) -> GuestRun:
    """Boot spec.image with spec.cmdline and its devices; marks carry KVM stats, monotonic ns and exit reasons."""
    try:
        from pvgen.vmm.machine import Machine
    except ImportError as exc:
        raise Unavailable(f"monitor: {exc}") from None
    with Machine(ram_mb=spec.ram >> 20) as m:
        for d in spec.devices:
            line = d.irq_line
            irq = (lambda level, line=line: m.set_irq(line, level)) if line is not None else (lambda level: None)
            m.ports.register(d.base, d.length, d.factory(m.mem, irq))
        info: dict = {}
        if spec.coalesced_posted:
            runs = posted_ranges(m.ports.class_map())
            for base, length in runs:
                m.add_coalesced_pio(base, length)
            info["coalesced_zones"] = [f"{b:#x}..+{n:#x}" for b, n in runs]
        if spec.pvbatch_classes is not None:
            _attach_pvbatch(m, spec.pvbatch_classes)
        for hook in spec.extra.get("machine_hooks", []):
            hook(m)
        m.boot(spec.image, spec.cmdline)
        res = m.run(timeout=spec.timeout_s)
    marks = [Mark(mid, int(s["t"] * 1e9), dict(s["stats"]), dict(s.get("runs", {}))) for mid, s in res.marks]
    console = res.console.decode("utf-8", "replace")
    info.update(stop=res.stop, message=res.message, coalesced_entries=res.report.extra.get("coalesced_entries"))
    code = res.code if res.stop == "exit" else (res.code or 1)
    if res.stop != "exit":
        console += f"\n[monitor] guest stopped: {res.stop}: {res.message}\n"
    return GuestRun(code, console, marks, info)
