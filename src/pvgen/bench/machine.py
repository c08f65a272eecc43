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


class _ClassFilter:
    """A view of the port bus whose class map publishes only `allowed` classes (others become STRICT): the
    generated-batch variant is the full runtime with the shadow and fifo classes switched off by the monitor."""

    def __init__(self, bus, allowed):
        self._bus, self._allowed = bus, allowed

    def __getattr__(self, item):
        return getattr(self._bus, item)

    def class_map(self):
        keep = lambda c: c if c in self._allowed else PortClass.STRICT  # noqa: E731
        return {p: (keep(r), keep(w)) for p, (r, w) in self._bus.class_map().items()}


def _attach_pvbatch(m, classes, models: bool = False):
    """The runtime's monitor side (devices/pvbatch.py) on its control ports, publishing only `classes` (and the
    devices' in-guest models when `models`)."""
    try:
        from pvgen import protocol as P
        from pvgen.devices.pvbatch import PvBatch
    except ImportError as exc:
        raise Unavailable(f"pvbatch device: {exc}") from None
    bus = m.ports if classes >= frozenset(PortClass) else _ClassFilter(m.ports, classes)
    pv = PvBatch(bus, m.mem, models=models)   # replays through the class filter, sits on the real bus
    m.ports.register(P.CTRL_BASE, P.CTRL_LEN, pv)
    return pv


class ExitCounter:
    """Opt-in (--ports) diagnosis: KVM_EXIT_IO returns by port and direction, and for pvbatch flushes the entry that
    ended the batch (the trigger: a strict IN, a doorbell OUT, or an empty flush from a tick/hlt), snapshotted at
    every mark in the order of the machine's marks. Costs a few Python operations per exit."""

    def __init__(self, m) -> None:
        from collections import Counter

        from pvgen.vmm import kvm

        self.counts: Counter = Counter()
        self.per_mark: list[dict[str, int]] = []
        handle, io_exit, out = m._handlers[kvm.KVM_EXIT_IO], m.vcpu.io_exit, kvm.KVM_EXIT_IO_OUT
        on_mark = m.hxdev.on_mark

        def counted():
            direction, _size, port, _count, _off = io_exit()
            self.counts[f"io {port:#06x} {'out' if direction == out else 'in'}"] += 1
            return handle()

        def mark(mid: int) -> None:
            on_mark(mid)
            self.per_mark.append(dict(self.counts))

        m._handlers[kvm.KVM_EXIT_IO] = counted
        m.hxdev.on_mark = mark

    def watch_pvbatch(self, pv) -> None:
        validate = pv._validate

        from pvgen.protocol import Op

        def recorded(area, slot):
            entries, touched = validate(area, slot)
            last = entries[-1] if entries else None     # (op, device, offset, size, value, gpa, port)
            key = "flush empty" if last is None else f"flush {Op(last[0]).name} {last[6]:#06x}"
            self.counts[key] += 1
            return entries, touched

        pv._validate = recorded


def run_guest(spec: GuestSpec) -> GuestRun:
    """Boot spec.image with spec.cmdline and its devices; marks carry KVM stats, monotonic ns and exit reasons."""
    try:
        from pvgen.vmm.machine import Machine
    except ImportError as exc:
        raise Unavailable(f"monitor: {exc}") from None
    with Machine(ram_mb=spec.ram >> 20, console=spec.extra.get("console")) as m:
        for d in spec.devices:
            line = d.irq_line
            irq = (lambda level, line=line: m.set_irq(line, level)) if line is not None else (lambda level: None)
            m.ports.register(d.base, d.length, d.factory(m.mem, irq))
        for hook in spec.extra.get("machine_hooks", []):
            hook(m)
        info: dict = {}
        if spec.coalesced_posted:
            runs = posted_ranges(m.ports.class_map())
            for base, length in runs:
                m.add_coalesced_pio(base, length)
            info["coalesced_zones"] = [f"{b:#x}..+{n:#x}" for b, n in runs]
        pv = None
        if spec.pvbatch_classes is not None:
            pv = _attach_pvbatch(m, spec.pvbatch_classes, spec.models)
            if spec.irq_notify:
                from pvgen.devices.pvirq import IrqNotifier
                IrqNotifier.attach(m, pv)
            pacer = spec.extra.get("devices", {}).get("pacer")
            if pacer is not None:
                pacer.attach_to(pv)     # frames after the batch's replay; an injected frame changes ISR: refresh
        counter = ExitCounter(m) if spec.extra.get("count_ports") else None
        if counter is not None and pv is not None:
            counter.watch_pvbatch(pv)
        boot = spec.extra.get("boot")        # a kit that loads something else than a harness image (guestlinux.py)
        if boot is not None:
            boot(m)
        else:
            m.boot(spec.image, spec.cmdline)
        res = m.run(timeout=spec.timeout_s)
    marks = [Mark(mid, int(s["t"] * 1e9), dict(s["stats"]), dict(s.get("runs", {})), s.get("guest_delay_ns", 0),
                  s.get("monitor_ns", 0)) for mid, s in res.marks]
    if counter is not None and len(counter.per_mark) == len(marks):
        for mk, ports in zip(marks, counter.per_mark):
            mk.breakdown.update(ports)
    console = res.console.decode("utf-8", "replace")
    info.update(stop=res.stop, message=res.message, coalesced_entries=res.report.extra.get("coalesced_entries"))
    if pv is not None:
        st = pv.stats
        info["pvbatch"] = {"registrations": st.registrations, "flushes": st.flushes, "entries": st.entries,
                           "rejected": st.rejected, "fifo_refills": st.fifo_refills, "errors": st.errors[-3:]}
        if pv.notifier is not None:
            info["pvbatch"]["irq_notified"] = pv.notifier.stats.notified
            info["pvbatch"]["irq_forwarded"] = pv.notifier.stats.forwarded
            info["pvbatch"]["irq_premarked"] = pv.notifier.stats.premarked
        models = [a.models for a in pv.areas if a.models is not None]
        if models:
            ms = models[0].stats
            info["models"] = {"served_in": ms.served_in, "served_out": ms.served_out, "irq_marks": ms.irq_marks,
                              "mismatches": ms.mismatches, "errors": ms.errors[-3:]}
        if any(a.audit for a in pv.areas):
            info["audit"] = {"served": pv.audit.served, "mismatches": pv.audit.mismatches,
                             "errors": pv.audit.errors[-3:]}
    pacer = spec.extra.get("devices", {}).get("pacer")
    if pacer is not None:
        info["rx_injected"] = pacer.injected
    code = res.code if res.stop == "exit" else (res.code or 1)
    if res.stop != "exit":
        console += f"\n[monitor] guest stopped: {res.stop}: {res.message}\n"
    return GuestRun(code, console, marks, info)
