"""PciHost's index/data register file declaration (protocol v5): mechanism #1 as an index file whose published
entries are exactly what configuration reads return, for every programmed state (PCI Local Bus 3.0, 3.2.2.3.2, 6)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pvgen import protocol as PR
from pvgen.devices import pci as P
from pvgen.devices.bus import PortBus
from pvgen.devices.pvpublish import publish
from pvgen.devices.pvmodels import ModelSet
from pvgen.protocol import PortClass


class Scratch:
    """An I/O device a BAR decodes (so BAR and Command writes move it on the bus)."""

    name = "scratch"

    def __init__(self) -> None:
        self.regs = [0] * 16

    def io_read(self, off: int, size: int) -> int:
        return self.regs[off]

    def io_write(self, off: int, size: int, value: int) -> None:
        self.regs[off] = value & 0xFF

    def port_classes(self):
        return {}


@st.composite
def function(draw, n: int, bus: PortBus):
    bars = []
    for i in sorted(draw(st.sets(st.integers(0, 5), max_size=3))):
        if draw(st.booleans()):
            size = 1 << draw(st.integers(2, 4))
            bars.append(P.Bar(i, size, io=True, base=0x1000 + n * 0x100 + i * 0x10,
                              device=Scratch() if draw(st.booleans()) else None))
        else:
            bars.append(P.Bar(i, 1 << draw(st.integers(4, 20)), io=False, base=0xE000_0000 + n * 0x10_0000))
    return P.PciFunction(
        f"f{n}", vendor_id=draw(st.integers(1, 0xFFFE)), device_id=draw(st.integers(0, 0xFFFF)),
        class_code=draw(st.integers(0, 0xFFFFFF)), revision=draw(st.integers(0, 255)),
        subsystem_vendor_id=draw(st.integers(0, 0xFFFF)), subsystem_id=draw(st.integers(0, 0xFFFF)),
        interrupt_pin=draw(st.integers(0, 4)), interrupt_line=draw(st.integers(0, 255)), bars=bars,
        command=draw(st.sampled_from([0, P.PCI_COMMAND_IO])), bus=bus)


@st.composite
def hosts(draw, max_slots: int = 6):
    bus = PortBus()
    host = P.PciHost()
    bus.register(P.CONFIG_ADDRESS_PORT, 8, host)
    host.add(0, 0, P.host_bridge())
    n = 0
    for slot in draw(st.lists(st.integers(1, 31), max_size=max_slots, unique=True)):
        fns = sorted(draw(st.sets(st.integers(1, 7), max_size=3)) | {0})
        for fn in fns:
            f = draw(function(n, bus))
            n += 1
            if fn == 0 and len(fns) > 1:
                f.header_type = P.HEADER_TYPE_MULTI_FUNCTION
            host.add(slot, fn, f)
    return bus, host


def config_writes(host: P.PciHost):
    """Random programming: BARs (sizing all-ones, a new base, the old one), Command, Interrupt Line, cache line and
    latency, read-only registers, absent functions."""
    where = st.sampled_from(sorted(host.functions) + [(0, 30, 0), (0, 3, 5)])
    reg = st.sampled_from([P.PCI_COMMAND, P.PCI_CACHE_LINE_SIZE, P.PCI_INTERRUPT_LINE, P.PCI_VENDOR_ID,
                           P.PCI_REVISION_ID, *range(P.PCI_BASE_ADDRESS_0, P.PCI_BASE_ADDRESS_5 + 4, 4)])
    value = st.one_of(st.just(0xFFFF_FFFF), st.integers(0, 0xFFFF_FFFF), st.sampled_from([0, 1, 3, 0x400]))
    return st.lists(st.tuples(where, reg, st.sampled_from([1, 2, 4]), value), max_size=12)


def cfg_read(bus: PortBus, addr: int, lane: int, size: int) -> int:
    bus.write(0xCF8, 4, addr)
    return bus.read(0xCFC + lane, size)


def program(bus: PortBus, writes) -> None:
    for (b, d, f), reg, size, value in writes:
        lane = reg & 3 & ~(size - 1)
        bus.write(0xCF8, 4, P.config_address(b, d, f, reg))
        bus.write(0xCFC + lane, size, value & ((1 << 8 * size) - 1))


def test_declaration_is_mechanism_1():
    host = P.PciHost()
    [f] = host.index_files()
    assert (f.index_offset, f.index_size, f.data_offset, f.data_len) == (0, 4, 4, 4)
    # enable bit 31, bus 23:16, device 15:11, function 10:8, dword register 7:2; reserved 30:24 and 1:0 out
    assert f.key_mask == 0x80FF_FFFC == P.CONFIG_ADDRESS_MASK
    assert host.index_files()[0].index_offset in host.port_classes()     # the index port is declared (POSTED)
    assert host.port_classes()[0][1] == PortClass.POSTED
    assert host.index_latch(0) == 0
    host.io_write(0, 4, 0xFFFF_FFFF)
    assert host.index_latch(0) == 0x80FF_FFFC
    host.io_write(0, 1, 0x12)                  # not the address register: the latch stays
    assert host.index_latch(0) == 0x80FF_FFFC


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_entries_equal_config_reads_in_every_programmed_state(data):
    bus, host = data.draw(hosts())
    program(bus, data.draw(config_writes(host)))
    for fn in host.functions.values():     # INTx changes Status only, which is not published
        fn.irq(data.draw(st.booleans()))
    entries = host.index_entries(0)
    assert 0 < len(entries) <= PR.IX_ENTRY_COUNT
    for key, value in entries.items():
        assert key & ~P.CONFIG_ADDRESS_MASK == 0 and key & P.CONFIG_ADDRESS_ENABLE
        assert cfg_read(bus, key, 0, 4) == value
        for lane, size in ((0, 1), (1, 1), (2, 1), (3, 1), (0, 2), (2, 2)):   # every aligned byte lane
            assert cfg_read(bus, key, lane, size) == value >> 8 * lane & ((1 << 8 * size) - 1)
        # the reserved address bits are not decoded: the same register
        assert cfg_read(bus, key | 0x7F00_0003, 0, 4) == value


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_key_layout_and_what_is_left_out(data):
    bus, host = data.draw(hosts())
    program(bus, data.draw(config_writes(host)))
    entries = host.index_entries(0)
    regs = {k & 0xFC for k in entries}
    assert P.PCI_COMMAND not in regs                      # Command/Status: Status bit 3 follows INTx
    assert all(r < 0x40 for r in regs)                    # no device-specific space
    present = {P.config_address(b, d, f, r) for (b, d, f) in host.functions for r in P.MIRRORED_REGISTERS}
    absent = set()
    for d in range(32):                                   # what a bus-0 scan reads of absent functions
        f0 = host.functions.get((0, d, 0))
        fns = [0] if f0 is None else range(1, 8) if f0.header_type & P.HEADER_TYPE_MULTI_FUNCTION else []
        absent |= {P.config_address(0, d, f, 0) for f in fns if (0, d, f) not in host.functions}
    if len(present | absent) <= PR.IX_ENTRY_COUNT:
        assert set(entries) == present | absent
    else:                                                 # the present functions' registers go first
        assert len(entries) == PR.IX_ENTRY_COUNT and set(entries) <= present | absent
        assert present <= set(entries) or not absent & set(entries)
    for key, value in entries.items():
        fn, reg = host._target(key)
        assert (fn is None) == (value == 0xFFFF_FFFF and reg == 0)
        assert key >> 8 & 0xFF == (key >> 11 & 0x1F) << 3 | (key >> 8 & 7)   # devfn


def test_status_interrupt_bit_is_never_published():
    bus = PortBus()
    host = P.PciHost()
    bus.register(P.CONFIG_ADDRESS_PORT, 8, host)
    fn = host.add(3, 0, P.PciFunction("f", vendor_id=0x1234, device_id=1, class_code=0x020000, interrupt_pin=1))
    before = host.index_entries(0)
    fn.irq(True)
    assert cfg_read(bus, P.config_address(0, 3, 0, P.PCI_COMMAND), 2, 2) & P.PCI_STATUS_INTERRUPT
    assert host.index_entries(0) == before
    assert P.config_address(0, 3, 0, P.PCI_COMMAND) not in before


def test_a_full_bus_keeps_present_functions_first():
    host = P.PciHost()
    for d in range(32):
        for f in range(8):
            host.add(d, f, P.PciFunction("f", vendor_id=0x1234, device_id=d, class_code=0,
                                         header_type=P.HEADER_TYPE_MULTI_FUNCTION if f == 0 else 0))
    entries = host.index_entries(0)
    assert len(entries) == PR.IX_ENTRY_COUNT
    assert all(v != 0xFFFF_FFFF for v in entries.values())
    first = [P.config_address(0, d, f, r) for d in range(32) for f in range(8) for r in P.MIRRORED_REGISTERS]
    assert set(entries) == set(first[: PR.IX_ENTRY_COUNT])


def test_the_monitor_publishes_it_with_models():
    """pvmodels builds the index file from the declaration: CONFIG_ADDRESS becomes DOORBELL_IF (the runtime's slow
    path latches it), CONFIG_DATA stays strict, and without models nothing changes."""
    bus = PortBus()
    host = P.PciHost()
    bus.register(P.CONFIG_ADDRESS_PORT, 8, host)
    host.add(0, 0, P.host_bridge())
    pub = publish(bus, models=True)
    assert PR.split_class_word(pub.words[0xCF8])[1] == PortClass.DOORBELL_IF
    assert all(PR.split_class_word(pub.words[p])[:2] == (PortClass.STRICT, PortClass.STRICT)
               for p in range(0xCFC, 0xD00))
    ms = ModelSet.build(bus, pub.words, pub.slots, None)
    assert ms.ix is not None and (ms.ix.index_port, ms.ix.data_port, ms.ix.data_len, ms.ix.index_size,
                                  ms.ix.key_mask) == (0xCF8, 0xCFC, 4, 4, P.CONFIG_ADDRESS_MASK)
    assert ms.models_word() == 2
    plain = publish(bus, models=False)
    assert PR.split_class_word(plain.words[0xCF8])[1] == PortClass.POSTED
