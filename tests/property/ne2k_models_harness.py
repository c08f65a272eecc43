"""Runs the lib8390 mimic (lib8390_mimic.py) against the real Ne2000 model two ways: at once on the device
(`ImmediateIO`), and through the C runtime's host build with the monitor publishing the NE2000's in-guest models
(`RuntimeIO`: remote-DMA engine, command rules, interrupt rule).  The runtime side logs every access the driver
made, in program order, with the value it got; `replay` runs that log at once on a twin device, so a test can ask
the question that matters: is the batched run indistinguishable from an immediate run of the same accesses?"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

from lib8390_mimic import IO, Lib8390

from pvgen import protocol as P
from pvgen.devices.bus import PortBus
from pvgen.devices.ne2000 import Ne2000
from pvgen.devices.pvbatch import PvBatch
from pvgen.devices.pvirq import IrqNotifier
from pvgen.protocol import PortClass
from pvgen.runtime.hostlib import HostMemory, HostOp, HostRuntime, Hop, Strict

MAC = bytes.fromhex("525400123456")
NIC, LINE = 0xC000, 11
RAM, AREA, BUFS = 4 << 20, 0x10000, 0x100000


def new_nic(set_irq) -> Ne2000:
    nic = Ne2000(mac=MAC, cr_write_class=PortClass.DOORBELL_IF)
    nic.irq = lambda level: set_irq(LINE, level)
    nic.irq_line_number = LINE
    return nic


class Pic:
    """The machine's set_irq: the monitor's filter first, then edges the 'controller' delivers."""

    def __init__(self) -> None:
        self.irq_filter = None
        self.level = False
        self.edges = 0          # rising edges the controller saw (not taken by the notifier)

    def set_irq(self, line: int, level: bool) -> None:
        if self.irq_filter is not None and self.irq_filter(line, level):
            return
        if level and not self.level:
            self.edges += 1
        self.level = level


class _Irqs:
    """disable_irq/enable_irq and the handler, for both IOs: an interrupt while disabled (or while the handler runs)
    waits, like a latched edge, and runs when the line is enabled again."""

    def __init__(self) -> None:
        self.driver: Lib8390 | None = None
        self.disabled = 0
        self.pending = 0
        self.running = False

    def fire(self) -> None:
        self.pending += 1
        self.run()

    def irq_disable(self) -> None:
        self.disabled += 1

    def irq_enable(self) -> None:
        self.disabled -= 1
        self.run()

    def run(self) -> None:
        while self.pending and not self.disabled and not self.running and self.driver is not None:
            self.pending = 0
            self.running = True
            try:
                self.driver.interrupt()
            finally:
                self.running = False


class ImmediateIO(_Irqs, IO):
    """Every access at once on the device; an interrupt right after the access whose edge raised it."""

    def __init__(self) -> None:
        _Irqs.__init__(self)
        self.pic = Pic()
        self.nic = new_nic(self.pic.set_irq)
        self.bus = PortBus()
        self.bus.register(NIC, 0x20, self.nic)

    def _after(self) -> None:
        if self.pic.edges:
            self.pic.edges = 0
            self.fire()

    def outb(self, v, off): self.bus.write(NIC + off, 1, v); self._after()          # noqa: E704
    def outw(self, v, off): self.bus.write(NIC + off, 2, v); self._after()          # noqa: E704

    def _in(self, off: int, size: int) -> int:
        v = self.bus.read(NIC + off, size)
        self._after()
        return v

    def inb(self, off): return self._in(off, 1)                                      # noqa: E704
    def inw(self, off): return self._in(off, 2)                                      # noqa: E704
    def inl(self, off): return self._in(off, 4)                                      # noqa: E704

    def outsl(self, off: int, data: bytes) -> None:
        for k in range(0, len(data), 4):
            self.bus.write(NIC + off, 4, int.from_bytes(data[k:k + 4], "little"))
        self._after()

    def insl(self, off: int, count: int) -> bytes:
        out = b"".join(self.bus.read(NIC + off, 4).to_bytes(4, "little") for _ in range(count))
        self._after()
        return out

    def inject(self, frames) -> None:
        for f in frames:
            assert self.nic.rx_fits(len(f))
            self.nic.receive(f)
        self._after()


@dataclass
class Log:
    """What the driver did, in program order: (kind, offset, size, argument, result) and ("inject", frames)."""

    events: list = field(default_factory=list)


class RuntimeIO(_Irqs, IO):
    """Every access through the runtime (rewritten-driver thunks of the host build), the monitor publishing the
    NE2000's in-guest models; interrupts come back in the area, from the guest's interrupt rule, or through the
    'controller' (an edge outside a flush)."""

    def __init__(self, lib: str, models: bool = True, notify: bool = True, posted_tx: bool = True) -> None:
        _Irqs.__init__(self)
        self.pic = Pic()
        self.nic = new_nic(self.pic.set_irq)
        self.nic.posted_tx = posted_tx
        self.bus = PortBus()
        self.bus.register(NIC, 0x20, self.nic)
        self.mem = HostMemory(RAM)
        self.mon = PvBatch(self.bus, self.mem, models=models)
        self.bus.register(P.CTRL_BASE, P.CTRL_LEN, self.mon)
        self.notifier = IrqNotifier.attach(self.pic, self.mon) if notify else None
        self.log = Log()
        self.rt = HostRuntime(lib, self.mem, lambda port, value: self.bus.write(port, 4, value),
                              Strict(self.bus.read, self.bus.write), irq=self.fire)
        self.rt.lib.pvio_fini()
        ctypes.c_uint32.in_dll(self.rt.lib, "pvio_host_irq_lines").value = (1 << LINE) if notify else 0
        assert self.rt.init(AREA) == 0
        self.forced = 0     # exits settle() made (a test's synchronisation, not the driver's: not compared)

    def _op(self, kind: Hop, off: int, size: int, value: int = 0, buf: int = 0) -> int:
        r = self.rt.run([HostOp(kind, NIC + off, size, value, self.mem.base + buf if buf else 0)])[0]
        if self.pic.edges:
            self.pic.edges = 0
            self.fire()
        return r

    def outb(self, v, off):
        self.log.events.append(("out", off, 1, v, None))
        self._op(Hop.OUT, off, 1, v)

    def outw(self, v, off):
        self.log.events.append(("out", off, 2, v, None))
        self._op(Hop.OUT, off, 2, v)

    def _in(self, off: int, size: int) -> int:
        ev = ["in", off, size, None, None]
        self.log.events.append(ev)
        ev[4] = v = self._op(Hop.IN, off, size)
        return v

    def inb(self, off): return self._in(off, 1)                                      # noqa: E704
    def inw(self, off): return self._in(off, 2)                                      # noqa: E704
    def inl(self, off): return self._in(off, 4)                                      # noqa: E704

    def outsl(self, off: int, data: bytes) -> None:
        if not data:
            return
        self.log.events.append(("outs", off, 4, bytes(data), None))
        self.mem.write(BUFS, data)
        self._op(Hop.OUTS, off, 4, len(data) // 4, BUFS)

    def insl(self, off: int, count: int) -> bytes:
        if not count:
            return b""
        ev = ["ins", off, 4, count, None]
        self.log.events.append(ev)
        self.mem.write(BUFS, bytes(4 * count))
        self._op(Hop.INS, off, 4, count, BUFS)
        ev[4] = out = self.mem.read(BUFS, 4 * count)
        return out

    def flush(self) -> None:
        self.rt.lib.pvio_flush()

    def tick(self) -> None:
        self.rt.run([HostOp(Hop.TICK, 0, 1, 0, 0)])
        if self.pic.edges:
            self.pic.edges = 0
            self.fire()

    def settle(self) -> None:
        """Flush until nothing is queued or waiting to be audited, delivering the interrupts the flushes raise on the
        controller (a handler may queue more; a timer tick flushes only work that waited a whole period, so the
        program's last tick need not have flushed): an asynchronous device event then comes after everything the
        driver did, as the bench's pacer's frames do (it injects them after a replay)."""
        for _ in range(64):
            exits = self.rt.exits
            self.flush()
            self.forced += self.rt.exits - exits
            if self.pic.edges:          # an interrupt the flush raised on the controller: its handler may queue more
                self.pic.edges = 0
                self.fire()
                continue
            h = self.rt.header(AREA)
            audit = int.from_bytes(self.mem.read(AREA + P.OFF_AUDIT, 4), "little")
            if h["count"] == 0 and audit == 0:
                return
        raise AssertionError("the guest keeps queueing")

    def inject(self, frames) -> None:
        """Frames from the wire, between two accesses: the guest's queue goes first (the device sees the frames
        after everything the driver did so far), then the shadows and mirrors are brought up to date."""
        self.settle()
        self.log.events.append(("inject", 0, 0, tuple(frames), None))
        for f in frames:
            assert self.nic.rx_fits(len(f))
            self.nic.receive(f)
        self.mon.refresh()
        if self.pic.edges:
            self.pic.edges = 0
            self.fire()

    def finish(self) -> None:
        self.flush()
        self.rt.lib.pvio_fini()

    def stats(self) -> dict:
        h = self.rt.header(AREA)
        ms = self.mon.areas[0].models
        return {"exits": self.rt.exits, "served": h["served"], "irq_raised": h["irq_raised"],
                "mismatches": ms.stats.mismatches if ms else 0, "errors": ms.stats.errors if ms else [],
                "audit": self.mon.audit, "rejected": self.mon.stats.rejected}


def replay(log: Log) -> tuple[list, Ne2000]:
    """The logged accesses at once on a twin device: the results each read gets there."""
    pic = Pic()
    nic = new_nic(pic.set_irq)
    bus = PortBus()
    bus.register(NIC, 0x20, nic)
    got = []
    for kind, off, size, arg, _ in log.events:
        if kind == "out":
            bus.write(NIC + off, size, arg)
        elif kind == "in":
            got.append(bus.read(NIC + off, size))
        elif kind == "outs":
            for k in range(0, len(arg), size):
                bus.write(NIC + off, size, int.from_bytes(arg[k:k + size], "little"))
        elif kind == "ins":
            got.append(b"".join(bus.read(NIC + off, size).to_bytes(size, "little") for _ in range(arg)))
        else:
            for f in arg:
                nic.receive(f)
    return got, nic


def results(log: Log) -> list:
    return [ev[4] for ev in log.events if ev[0] in ("in", "ins")]


def state(nic: Ne2000) -> dict:
    skip = {"backend", "irq", "irq_gate", "irq_line_number", "metrics"}
    return {k: (bytes(v) if isinstance(v, (bytearray, list)) else v) for k, v in vars(nic).items()
            if k not in skip and not k.startswith("_")}
