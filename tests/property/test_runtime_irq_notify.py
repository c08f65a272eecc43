"""Interrupt notification (protocol v4, devices/pvirq.py): a line that a flush raises comes back to the runtime in the
area, is handed to the environment (pvio_arch_irq_notify) and runs its handler right after the access that caused
it, without the interrupt controller; lines the guest did not offer, or edges outside a flush, still take the
controller."""

from __future__ import annotations

import ctypes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_runtime_batch import AREA, LONG, RAM

from pvgen import protocol as P
from pvgen.devices.bus import PortBus
from pvgen.devices.pvbatch import PvBatch
from pvgen.devices.pvirq import IrqNotifier
from pvgen.protocol import PortClass
from pvgen.runtime.build import build
from pvgen.runtime.hostlib import HostMemory, HostOp, HostRuntime, Hop, Strict

LINE_PORT, DATA_PORT, STATUS_PORT = 0x200, 0x201, 0x202


class LineDevice:
    """A device whose posted writes to LINE_PORT set its interrupt lines (bit n = line n, level), and a DATA_PORT
    doorbell: what the handler sees in STATUS_PORT (a strict read) is the lines it raised."""

    name = "lines"

    def __init__(self, set_irq) -> None:
        self.set_irq, self.level, self.log = set_irq, 0, []

    def port_classes(self):
        return {0: (PortClass.STRICT, PortClass.POSTED), 1: (PortClass.STRICT, PortClass.DOORBELL),
                2: (PortClass.STRICT, PortClass.STRICT)}

    def io_write(self, offset: int, size: int, value: int) -> None:
        self.log.append(("w", offset, value))
        if offset == 0:
            for line in range(16):
                new = bool(value >> line & 1)
                if new != bool(self.level >> line & 1):
                    self.set_irq(line, new)
            self.level = value & 0xFFFF

    def io_read(self, offset: int, size: int) -> int:
        self.log.append(("r", offset))
        return self.level if offset == 2 else 0xFF


class Pic:
    """The machine's set_irq: level changes, the filter first (Machine.set_irq), the rest is the 'controller'."""

    def __init__(self) -> None:
        self.irq_filter = None
        self.asserted: list[tuple[int, bool]] = []

    def set_irq(self, line: int, level: bool) -> None:
        if self.irq_filter is not None and self.irq_filter(line, level):
            return
        self.asserted.append((line, level))


@pytest.fixture(scope="module")
def sim_lib(tmp_path_factory) -> str:
    return str(build("host", "batch", tmp_path_factory.mktemp("rt") / "pvio_host_notify.so",
                     extra_cflags=("-DPVIO_HOST_IRQ_SIM",)))


def _setup(lib: str, offered: int):
    pic = Pic()
    dev = LineDevice(pic.set_irq)
    bus = PortBus()
    bus.register(LINE_PORT, 4, dev)
    mem = HostMemory(RAM)
    mon = PvBatch.attach(bus, mem)
    notifier = IrqNotifier.attach(pic, mon)
    calls: list[int] = []

    def irq() -> None:   # the handler: reads the status (a strict access, so it follows everything queued)
        calls.append(rt.run([HostOp(Hop.IN, STATUS_PORT, 2, 0, 0)])[0])

    rt = HostRuntime(lib, mem, lambda port, value: bus.write(port, 4, value),
                     Strict(bus.read, bus.write), irq=irq)
    rt.lib.pvio_fini()
    ctypes.c_uint32.in_dll(rt.lib, "pvio_host_irq_lines").value = offered
    ctypes.c_uint32.in_dll(rt.lib, "pvio_host_irq_notified").value = 0
    assert rt.init(AREA) == 0
    return pic, dev, mem, mon, notifier, rt, calls


def test_notify_runs_the_handler_after_the_doorbell_without_the_controller(sim_lib):
    pic, dev, mem, mon, notifier, rt, calls = _setup(sim_lib, 0xFFFA)
    rt.run([HostOp(Hop.OUT, LINE_PORT, 2, 1 << 11, 0), HostOp(Hop.OUT, DATA_PORT, 1, 7, 0)])
    assert calls == [1 << 11], "the handler ran once and saw the raised line"
    # the handler's read came after the doorbell that raised the line (and after the posted write before it)
    assert dev.log == [("w", 0, 1 << 11), ("w", 1, 7), ("r", 2)]
    assert pic.asserted == [] and notifier.stats.notified == 1
    assert ctypes.c_uint32.in_dll(rt.lib, "pvio_host_irq_notified").value == 1 << 11
    assert rt.header(AREA)["irq_notify"] == 0 and rt.header(AREA)["irq_lines"] == 0xFFFA
    # the line falls (in a flush): the controller never hears of it; a new edge notifies again
    rt.run([HostOp(Hop.OUT, LINE_PORT, 2, 0, 0), HostOp(Hop.OUT, DATA_PORT, 1, 0, 0)])
    rt.run([HostOp(Hop.OUT, LINE_PORT, 2, 1 << 11, 0), HostOp(Hop.OUT, DATA_PORT, 1, 0, 0)])
    assert calls == [1 << 11, 1 << 11] and pic.asserted == [] and notifier.stats.notified == 2


def test_unoffered_lines_and_edges_outside_a_flush_take_the_controller(sim_lib):
    pic, dev, mem, mon, notifier, rt, calls = _setup(sim_lib, 0)     # an environment without notification
    rt.run([HostOp(Hop.OUT, LINE_PORT, 2, 1 << 5, 0), HostOp(Hop.OUT, DATA_PORT, 1, 0, 0)])
    assert calls == [] and pic.asserted == [(5, True)]
    dev.io_write(0, 1, 0)                                   # an asynchronous device event: not in a flush
    assert pic.asserted == [(5, True), (5, False)]
    pic2, dev2, *_rest, calls2 = _setup(sim_lib, 0xFFFA)
    dev2.io_write(0, 1, 1 << 9)                             # outside a flush, even on an offered line
    assert pic2.asserted == [(9, True)] and calls2 == []


@settings(max_examples=1000 if LONG else 100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 0xFFFF), st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=12))
def test_every_rising_edge_is_delivered_exactly_once_one_way_or_the_other(sim_lib, offered, levels):
    pic, dev, mem, mon, notifier, rt, calls = _setup(sim_lib, offered)
    prev, want_notified, want_pic = 0, 0, []
    for lv in levels:
        rt.run([HostOp(Hop.OUT, LINE_PORT, 2, lv, 0), HostOp(Hop.OUT, DATA_PORT, 1, 0, 0)])
        for line in range(16):
            was, now = prev >> line & 1, lv >> line & 1
            if was == now:
                continue
            if offered >> line & 1:
                want_notified |= (1 << line) if now else 0
            else:
                want_pic.append((line, bool(now)))
        prev = lv
    rt.lib.pvio_flush()
    assert pic.asserted == want_pic
    assert ctypes.c_uint32.in_dll(rt.lib, "pvio_host_irq_notified").value == want_notified
    rises = sum(1 for a, b in zip([0] + levels, levels) for line in range(16)
                if offered >> line & 1 and b >> line & 1 and not a >> line & 1)
    assert notifier.stats.notified == rises
    assert len(calls) == sum(1 for a, b in zip([0] + levels, levels) if offered & b & ~a & 0xFFFF)
    assert rt.header(AREA)["irq_notify"] == 0 and mon.stats.rejected == 0
