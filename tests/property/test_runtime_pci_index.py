"""PCI configuration mechanism #1 through the C runtime (host build, real thunks) with the index/data register file
of protocol v5 (PciHost.index_entries), against immediate execution.

Random programs of configuration reads and writes (BAR sizing and moves, Command with I/O decoding on and off,
Interrupt Line, read-only registers, absent functions, a clear enable bit, other buses), CONFIG_ADDRESS writes of
every size, INTx changes between accesses (the asynchronous event a published Status would miss), ticks, flushes,
hlt and thresholds. Every read returns what immediate execution returns, the host bridge sees the same writes in
the same order and ends in the same state, and a configuration read is served without an exit exactly when its
register is published (PciHost.index_entries in the device's state at that point) and the runtime's latch holds
the index (no CONFIG_ADDRESS write of another size since the last exit). `test_publishing_status_is_caught` keeps
the oracle honest: a host bridge that also publishes the Command/Status dword fails it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pvgen import protocol as P
from pvgen.devices import pci
from pvgen.devices.bus import PortBus
from pvgen.devices.pvbatch import PvBatch
from pvgen.runtime.hostlib import HostMemory, HostOp, HostRuntime, Hop, Strict
from tests.property.test_runtime_batch import SETTINGS, host_lib  # noqa: F401

RAM, AREA = 1 << 20, 0x10000
ADDR, DATA = 0xCF8, 0xCFC
SCRATCH_BASE = 0xC000


class Scratch:
    """An I/O device decoded by a BAR: a BAR or Command write moves it on the bus (remap).  Its first 8 registers
    are published as shadows (writes are strict: they leave nothing queued that would keep the index file from
    serving), so a read at the place it left must not be served from the tables published before the move
    (PvBatch republishes them)."""

    name = "scratch"

    def __init__(self) -> None:
        self.regs = [0] * 32

    def io_read(self, off: int, size: int) -> int:
        return self.regs[off] if size == 1 else self.regs[off] | self.regs[(off + 1) % 32] << 8 if size == 2 \
            else int.from_bytes(bytes(self.regs[(off + k) % 32] for k in range(4)), "little")

    def io_write(self, off: int, size: int, value: int) -> None:
        self.regs[off] = value & 0xFF

    def shadow_read(self, off: int, size: int = 1) -> int | None:
        return self.regs[off] if size == 1 and off < 8 else None

    def read_side_effects(self, off: int) -> bool:
        return False

    def port_classes(self):
        return {off: (P.PortClass.SHADOW, P.PortClass.STRICT) for off in range(8)}


class Recorder:
    """The host bridge on the bus, recording every write and every CONFIG_DATA read it sees."""

    def __init__(self, host: pci.PciHost, trace: list):
        self._host, self._trace = host, trace

    def __getattr__(self, name):
        return getattr(self._host, name)

    def io_read(self, off: int, size: int) -> int:
        v = self._host.io_read(off, size)
        self._trace.append(("r", off, size, v))
        return v

    def io_write(self, off: int, size: int, value: int) -> None:
        self._trace.append(("w", off, size, value))
        self._host.io_write(off, size, value)


Layout = dict   # (slot, fn) -> dict of PciFunction fields, "bars": [(index, size, io, base)]


class Placeholder:
    name = "placeholder"

    def io_read(self, off: int, size: int) -> int:
        return 0

    def io_write(self, off: int, size: int, value: int) -> None:
        pass


CTRL_PLACEHOLDER = Placeholder()


@dataclass
class World:
    bus: PortBus
    host: pci.PciHost
    fns: list[pci.PciFunction]
    trace: list

    @classmethod
    def make(cls, layout: Layout, host_cls=pci.PciHost) -> "World":
        bus, trace = PortBus(), []
        host = host_cls()
        bus.register(pci.CONFIG_ADDRESS_PORT, 8, Recorder(host, trace))
        bus.register(P.CTRL_BASE, P.CTRL_LEN, CTRL_PLACEHOLDER)   # where PvBatch goes: a BAR cannot move there
        fns = [host.add(0, 0, pci.host_bridge())]
        fns.append(host.add(3, 0, pci.PciFunction(
            "scratch", vendor_id=0x10EC, device_id=0x8029, class_code=0x020000, subsystem_vendor_id=0x10EC,
            subsystem_id=0x8029, interrupt_pin=1, interrupt_line=11, command=pci.PCI_COMMAND_IO, bus=bus,
            bars=[pci.Bar(0, 32, io=True, device=Scratch(), base=SCRATCH_BASE)])))
        for (slot, fn), f in sorted(layout.items()):
            fields = {k: v for k, v in f.items() if k != "bars"}
            bars = [pci.Bar(i, size, io=io, base=base) for i, size, io, base in f["bars"]]
            fns.append(host.add(slot, fn, pci.PciFunction("f", bars=bars, bus=bus, **fields)))
        return cls(bus, host, fns, trace)

    def state(self) -> tuple:
        fields = ("command", "status", "cache_line_size", "latency_timer", "interrupt_line", "intx_level")
        return (self.host.config_address,
                [(tuple(getattr(f, n) for n in fields), [(b.base, b.mapped_at) for b in f.bars]) for f in self.fns],
                [(r.base, r.length, type(r.device).__name__) for r in self.bus.ranges if r.base != P.CTRL_BASE])


# --- programs ---------------------------------------------------------------------------------------------------
@st.composite
def layouts(draw) -> Layout:
    out: Layout = {}
    for slot in draw(st.lists(st.sampled_from([1, 2, 5, 9, 17, 31]), max_size=3, unique=True)):
        fns = sorted(draw(st.sets(st.integers(1, 7), max_size=2)) | {0})
        for fn in fns:
            n = len(out)
            bars = []
            for i in sorted(draw(st.sets(st.integers(0, 5), max_size=2))):
                io = draw(st.booleans())
                size = 1 << draw(st.integers(2, 6) if io else st.integers(4, 20))
                bars.append((i, size, io, 0x1000 + n * 0x100 + i * 0x40 if io else 0xE000_0000 + n * 0x10_0000))
            out[(slot, fn)] = dict(
                vendor_id=draw(st.integers(1, 0xFFFE)), device_id=draw(st.integers(0, 0xFFFF)),
                class_code=draw(st.integers(0, 0xFFFFFF)), revision=draw(st.integers(0, 255)),
                interrupt_pin=draw(st.integers(0, 4)), interrupt_line=draw(st.integers(0, 15)),
                header_type=pci.HEADER_TYPE_MULTI_FUNCTION if fn == 0 and len(fns) > 1 else 0, bars=bars)
    return out


REGS = [*pci.MIRRORED_REGISTERS, pci.PCI_COMMAND, pci.PCI_COMMAND, 0x40]
WRITE_REGS = [pci.PCI_COMMAND, pci.PCI_BASE_ADDRESS_0, pci.PCI_BASE_ADDRESS_0 + 4, pci.PCI_INTERRUPT_LINE,
              pci.PCI_CACHE_LINE_SIZE, pci.PCI_VENDOR_ID, pci.PCI_REVISION_ID]
aligned = st.sampled_from([(4, 0), (2, 0), (2, 2), (1, 0), (1, 1), (1, 2), (1, 3)])   # (size, lane)


def programs(layout: Layout) -> st.SearchStrategy:
    slots = [0, 3, *sorted({s for s, _ in layout})]
    present = [(s, f) for s, f in layout] + [(0, 0), (3, 0)]
    where = st.one_of(st.sampled_from(present), st.sampled_from(present),
                      st.tuples(st.sampled_from(slots + [4, 30]), st.sampled_from([0, 1, 2, 7])))
    good_addr = st.builds(lambda w, r: pci.config_address(0, w[0], w[1], r), where, st.sampled_from(REGS))
    any_addr = st.one_of(good_addr, good_addr, good_addr, st.integers(0, 0xFFFF_FFFF),
                         st.builds(lambda w, r, b: pci.config_address(b, w[0], w[1], r), where,
                                   st.sampled_from(REGS), st.integers(1, 255)))
    wvalue = st.one_of(st.just(0xFFFF_FFFF), st.integers(0, 0xFFFF_FFFF),
                       st.sampled_from([0, pci.PCI_COMMAND_IO, pci.PCI_COMMAND_IO | pci.PCI_COMMAND_INTX_DISABLE,
                                        SCRATCH_BASE | 1, 0x2000 | 1, 10]))
    read = st.builds(lambda a, sl: [("out", ADDR, 4, a), ("in", DATA + sl[1], sl[0], 0)],
                     st.one_of(good_addr, good_addr, any_addr), aligned)
    def write_op(w, r, sl, v, back):
        a = pci.config_address(0, w[0], w[1], r)
        ops = [("out", ADDR, 4, a), ("out", DATA + sl[1], sl[0], v & ((1 << 8 * sl[0]) - 1))]
        back = sl if back == "same" else back
        return ops + ([("out", ADDR, 4, a), ("in", DATA + back[1], back[0], 0)] if back else [])
    # a write, then (as BAR sizing does) a read of what it changed, often
    write = st.builds(write_op, st.sampled_from(present), st.sampled_from(WRITE_REGS), aligned, wvalue,
                      st.one_of(st.none(), st.just("same"), st.just("same"), aligned))
    other = st.one_of(
        st.builds(lambda sl: [("in", DATA + sl[1], sl[0], 0)], aligned),           # the same register again
        st.builds(lambda a: [("out", ADDR, 4, a)], any_addr),
        st.builds(lambda p, s, v: [("out", p, s, v & ((1 << 8 * s) - 1))],           # not the address register
                  st.sampled_from([ADDR, ADDR + 1, ADDR + 2, ADDR + 3]), st.sampled_from([1, 2]),
                  st.integers(0, 0xFFFF)),
        st.builds(lambda s, v, sl: [("out", ADDR, s, v & ((1 << 8 * s) - 1)), ("in", DATA + sl[1], sl[0], 0)],
                  st.sampled_from([1, 2]), st.integers(0, 0xFFFF), aligned),    # the latch is not known
        st.just([("in", ADDR, 4, 0)]),
        # the BAR-decoded device where it starts and where a BAR write may move it (0x2000): its shadows must
        # follow it (a read where it left reads all-ones, not the old shadow)
        st.builds(lambda b, k: [("in", b + k, 1, 0)], st.sampled_from([SCRATCH_BASE, 0x2000]), st.integers(0, 7)),
        st.builds(lambda b, k, v: [("out", b + k, 1, v)], st.sampled_from([SCRATCH_BASE, 0x2000]),
                  st.integers(0, 7), st.integers(0, 255)),
        st.builds(lambda i, lv: [("intx", 0, i, lv)], st.integers(0, 16), st.booleans()),
        st.sampled_from([[("tick", 0, 1, 0)], [("flush", 0, 1, 0)], [("hlt", 0, 1, 0)]]),
        st.builds(lambda n: [("threshold", 0, 1, n)], st.sampled_from([1, 2, 3, 5, 64])))
    return st.lists(st.one_of(read, read, read, write, other), min_size=5, max_size=60).map(
        lambda xs: [op for x in xs for op in x])


# --- the two executions -----------------------------------------------------------------------------------------
def immediate(layout: Layout, ops, host_cls=pci.PciHost) -> tuple[list, list, tuple, list]:
    """Results, write trace, final state, and for each IN op whether its register was published at that point."""
    w = World.make(layout, host_cls)
    results, published = [], []
    for kind, port, size, v in ops:
        if kind == "out":
            w.bus.write(port, size, v)
        elif kind == "in":
            key = w.host.config_address & pci.CONFIG_ADDRESS_MASK
            published.append(None if not DATA <= port < DATA + 4 else
                             key in w.host.index_entries(0) and not (port - DATA) & (size - 1))
            results.append(w.bus.read(port, size))
        elif kind == "intx":
            w.fns[size % len(w.fns)].irq(v)
    return results, [t for t in w.trace if t[0] == "w"], w.state(), published


HOPS = {"out": Hop.OUT, "in": Hop.IN, "tick": Hop.TICK, "hlt": Hop.HLT, "flush": Hop.FLUSH,
        "threshold": Hop.THRESHOLD}


def batched(lib: str, layout: Layout, ops, models: bool = True, host_cls=pci.PciHost):
    """Results, write trace, final state, and for each IN op (served without an exit, latch valid then)."""
    w = World.make(layout, host_cls)
    mem = HostMemory(RAM)
    mon = PvBatch(w.bus, mem, models=models)
    w.bus.unregister(P.CTRL_BASE, CTRL_PLACEHOLDER)
    w.bus.register(P.CTRL_BASE, P.CTRL_LEN, mon)
    rt = HostRuntime(lib, mem, lambda port, value: w.bus.write(port, 4, value),
                     Strict(lambda p, s: w.bus.read(p, s), lambda p, s, v: w.bus.write(p, s, v)))
    rt.lib.pvio_fini()
    assert rt.init(AREA) == 0
    results, served = [], []
    valid = True          # the runtime's latch holds the device's index (refreshed at every exit)
    for kind, port, size, v in ops:
        if kind == "intx":
            w.fns[size % len(w.fns)].irq(v)   # asynchronous: no flush, no refresh
            continue
        exits, seen = rt.exits, len(w.trace)
        [r] = rt.run([HostOp(HOPS[kind], port, size, v, 0)])
        if kind == "in":
            results.append(r)
            read_by_device = any(t[0] == "r" for t in w.trace[seen:])
            served.append((rt.exits == exits and not read_by_device, valid))
        if kind == "out" and port == ADDR:
            valid = size == 4
        if rt.exits != exits:
            valid = True
    rt.lib.pvio_flush()
    rt.lib.pvio_fini()
    assert mon.stats.rejected == 0, mon.stats.errors
    ms = mon.areas[0].models
    assert ms is None or ms.stats.mismatches == 0, ms.stats.errors
    return results, [t for t in w.trace if t[0] == "w"], w.state(), served, mon


def check(lib: str, layout: Layout, ops, models: bool = True, host_cls=pci.PciHost) -> int:
    """Assert equivalence with immediate execution and the serving rule; returns the reads served."""
    want_results, want_writes, want_state, published = immediate(layout, ops, host_cls)
    got_results, got_writes, got_state, served, _ = batched(lib, layout, ops, models, host_cls)
    at = [k for k, o in enumerate(ops) if o[0] == "in"]
    for i, (got, want) in enumerate(zip(got_results, want_results)):
        assert got == want, f"op {at[i]} {ops[at[i]]}: {got:#x}, immediate execution {want:#x}"
    assert got_writes == want_writes
    assert got_state == want_state
    for i, ((was_served, valid), pub) in enumerate(zip(served, published)):
        if pub is None:
            continue            # a read of the scratch device (moved by BAR writes): its value is what counts
        want = models and pub and valid
        assert was_served == want, (f"op {at[i]} {ops[at[i]]}: served without an exit: {was_served}, "
                                    f"published {pub}, latch valid {valid}")
    return sum(s for s, _ in served)


@SETTINGS
@given(st.data())
def test_config_programs_equal_immediate_execution_and_published_reads_never_exit(host_lib, data):
    layout = data.draw(layouts())
    ops = data.draw(programs(layout))
    check(host_lib, layout, ops)


@SETTINGS
@given(st.data())
def test_without_models_every_config_read_exits(host_lib, data):
    layout = data.draw(layouts())
    ops = data.draw(programs(layout))
    check(host_lib, layout, ops, models=False)


def scan() -> list[tuple]:
    """The environment's scan of the bench's bus (lx_pci.c scan_function; the host bridge at 00:00.0, the NIC at
    00:03.0): each slot's Vendor ID; of a present function the class, header type, subsystem and interrupt dwords,
    each BAR read and sized with decoding off (Command read, writes), and the multi-function check."""
    ops: list[tuple] = []

    def rd(slot, reg, size=4):
        ops.extend([("out", ADDR, 4, pci.config_address(0, slot, 0, reg)), ("in", DATA + (reg & 3), size, 0)])

    def wr(slot, reg, v, size=4):
        ops.extend([("out", ADDR, 4, pci.config_address(0, slot, 0, reg)), ("out", DATA + (reg & 3), size, v)])
    for slot in range(32):
        rd(slot, pci.PCI_VENDOR_ID)
        if slot not in (0, 3):
            continue
        for reg in (pci.PCI_CLASS_REVISION, pci.PCI_CACHE_LINE_SIZE, pci.PCI_SUBSYSTEM_VENDOR_ID,
                    pci.PCI_INTERRUPT_LINE):
            rd(slot, reg)
        for bar in range(pci.PCI_BASE_ADDRESS_0, pci.PCI_BASE_ADDRESS_5 + 4, 4):
            rd(slot, bar)
            rd(slot, pci.PCI_COMMAND, 2)
            wr(slot, pci.PCI_COMMAND, 0, 2)
            wr(slot, bar, 0xFFFF_FFFF)
            rd(slot, bar)
            wr(slot, bar, SCRATCH_BASE | 1 if slot == 3 and bar == pci.PCI_BASE_ADDRESS_0 else 0)
            wr(slot, pci.PCI_COMMAND, pci.PCI_COMMAND_IO if slot == 3 else 0, 2)
        rd(slot, pci.PCI_CACHE_LINE_SIZE)
    return ops


def test_the_scan_reads_exit_only_for_command(host_lib):
    """Every read of the scan is served but the Command reads (2 functions x 6 BARs); without models none is."""
    ops = scan()
    reads = sum(1 for o in ops if o[0] == "in")
    assert check(host_lib, {}, ops) == reads - 2 * 6
    assert check(host_lib, {}, ops, models=False) == 0


class StatusPublishingHost(pci.PciHost):
    """A mutant: also publishes the Command/Status dword (Status bit 3 follows INTx between flushes)."""

    def index_entries(self, i: int) -> dict[int, int]:
        out = super().index_entries(i)
        for (b, d, f) in self.functions:
            out[pci.config_address(b, d, f, pci.PCI_COMMAND)] = self.config_dword(
                pci.config_address(b, d, f, pci.PCI_COMMAND))
        return out


def test_publishing_status_is_caught(host_lib):
    status = pci.config_address(0, 3, 0, pci.PCI_COMMAND)
    ops = [("out", ADDR, 4, status), ("in", DATA + 2, 2, 0), ("intx", 0, 1, 1), ("out", ADDR, 4, status),
           ("in", DATA + 2, 2, 0)]
    check(host_lib, {}, ops)
    with pytest.raises(AssertionError, match="immediate execution"):
        check(host_lib, {}, ops, host_cls=StatusPublishingHost)


def test_misaligned_data_reads_go_to_the_device(host_lib):
    """A misaligned CONFIG_DATA access may be answered otherwise by the device (PciHost: all ones, a guest error it
    counts): the runtime serves only naturally aligned lanes (found by this test, fixed in models.c)."""
    ops = [("out", ADDR, 4, pci.config_address(0, 3, 0, 0)), ("in", DATA + 1, 2, 0)]
    check(host_lib, {}, ops)


def test_a_moved_device_is_not_served_where_it_was(host_lib):
    """The scratch device's shadows are published at registration; a BAR write moves it during a replay.  The
    monitor publishes its tables again (PvBatch._republish_if_remapped): a read where it was reads all-ones (no
    device), a read where it is now reads it, a write there reaches it, as with immediate execution."""
    bar0 = pci.config_address(0, 3, 0, pci.PCI_BASE_ADDRESS_0)
    new = 0x2000
    ops = [("in", SCRATCH_BASE + 1, 1, 0), ("out", SCRATCH_BASE + 1, 1, 0x5A), ("in", SCRATCH_BASE + 1, 1, 0),
           ("out", ADDR, 4, bar0), ("out", DATA, 4, new | 1),
           ("in", SCRATCH_BASE + 1, 1, 0), ("in", new + 1, 1, 0), ("out", new + 2, 1, 0x33), ("in", new + 2, 1, 0),
           ("in", SCRATCH_BASE + 2, 1, 0),
           ("out", ADDR, 4, bar0), ("out", DATA, 4, SCRATCH_BASE | 1),    # and back
           ("in", SCRATCH_BASE + 2, 1, 0), ("in", new + 2, 1, 0)]
    want = immediate({}, ops)[0]
    assert want == [0, 0x5A, 0xFF, 0x5A, 0x33, 0xFF, 0x33, 0xFF]
    got, _, _, served, mon = batched(host_lib, {}, ops)
    assert got == want
    assert mon.stats.republished == 2
    assert served[0][0] and served[3][0], "the device's shadows are served where it is"
