"""The monitor's batch handler under hostile input: malformed pages, counts, addresses are rejected and counted."""

from __future__ import annotations

import os
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvgen import protocol as P
from pvgen.devices.pvbatch import PvBatch
from pvgen.protocol import BatchRejected, Op, Status
from pvgen.runtime.refmodel import Trace, lab_bus

# Explicit settings (not a global profile): PVGEN_HYPOTHESIS_PROFILE=long is the documented large run.
LONG = os.environ.get("PVGEN_HYPOTHESIS_PROFILE") == "long"
SETTINGS = settings(max_examples=5000 if LONG else 100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

RAM = 0x80000
AREA = 0x10000
BASE = 0x100
FLUSH = P.CTRL_FLUSH - P.CTRL_BASE
REG = P.CTRL_REGISTER - P.CTRL_BASE


class StrictMemory:
    """Guest RAM that fails the test (not with ProtocolError) if the monitor reaches outside it."""

    def __init__(self, size: int):
        self.size, self.buf = size, bytearray(size)

    def read(self, gpa: int, n: int) -> bytes:
        assert 0 <= gpa and n >= 0 and gpa + n <= self.size, f"monitor read outside RAM: {gpa:#x}+{n:#x}"
        return bytes(self.buf[gpa:gpa + n])

    def write(self, gpa: int, data: bytes) -> None:
        assert 0 <= gpa and gpa + len(data) <= self.size, f"monitor write outside RAM: {gpa:#x}+{len(data):#x}"
        self.buf[gpa:gpa + len(data)] = data


def activate(bus, mem, area: int = AREA) -> PvBatch:
    """A monitor on bus's control ports with an area registered at `area`, as the runtime registers it."""
    mon = PvBatch.attach(bus, mem)
    mem.write(area, P.HEADER.pack(magic=P.MAGIC, version=P.VERSION, area_size=P.AREA_SIZE,
                                  capacity=P.ENTRY_CAPACITY, threshold=P.DEFAULT_THRESHOLD))
    bus.write(P.CTRL_REGISTER, 4, area >> 12)
    assert mon.stats.rejected == 0 and P.decode_header(mem.read(area, P.HEADER.size))["state"] == P.State.ACTIVE
    return mon


def machine(ram: int = RAM):
    trace = Trace()
    bus, dev = lab_bus(trace, BASE)
    mem = StrictMemory(ram)
    return mem, activate(bus, mem), bus, trace


def put(mem, entries: list[bytes]) -> None:
    for i, raw in enumerate(entries):
        mem.write(AREA + P.OFF_ENTRIES + i * P.ENTRY.size, raw)
    mem.write(AREA + 20, struct.pack("<I", len(entries)))


def header(mem):
    return P.decode_header(mem.read(AREA, P.HEADER.size))


entry_st = st.builds(lambda port, size, op, value, gpa: P.ENTRY.pack(port=port, size=size, op=op, value=value,
                                                                      gpa=gpa),
                     st.one_of(st.integers(0, 0xFFFF), st.integers(BASE, BASE + 15), st.integers(0xF00, 0xF07)),
                     st.sampled_from([0, 1, 2, 3, 4, 8, 255]), st.integers(0, 255),
                     st.one_of(st.integers(0, 0xFFFFFFFF), st.integers(0, 64)),
                     st.one_of(st.integers(0, (1 << 64) - 1), st.integers(0, RAM), st.integers(RAM - 64, RAM + 64)))


@SETTINGS
@given(st.lists(entry_st, max_size=P.ENTRY_CAPACITY))
def test_pvbatch_random_entries_are_replayed_or_rejected_whole(entries):
    mem, mon, bus, trace = machine()
    put(mem, entries)
    before = mon.stats.rejected
    bus.write(P.CTRL_FLUSH, 4, 0)                  # never raises
    h = header(mem)
    assert h["count"] == 0
    if h["status"] != Status.OK:
        assert mon.stats.rejected == before + 1 and h["rejected"] == 1
        assert trace.events == []                  # validated first: nothing of a bad batch reaches a device
    else:
        assert mon.stats.rejected == before


@SETTINGS
@given(st.binary(min_size=P.HEADER.size, max_size=P.HEADER.size), st.integers(0, 70))
def test_pvbatch_random_header_never_crashes(raw, slot):
    mem, mon, bus, _ = machine()
    mem.write(AREA, raw)
    bus.write(P.CTRL_FLUSH, 4, slot)
    h = header(mem)
    if slot != 0:
        assert mon.stats.rejected == 1             # unknown slot: recorded, the page is not touched
    elif (h["magic"], h["version"], h["state"]) != (P.MAGIC, P.VERSION, P.State.ACTIVE):
        assert mon.stats.rejected == 1 and h["status"] == Status.BAD_HEADER


@SETTINGS
@given(st.integers(0, 0xFFFFFFFF), st.binary(max_size=64))
def test_pvbatch_random_registration_never_crashes(pfn, raw):
    mem, mon, bus, _ = machine()
    gpa = pfn << 12
    if gpa + len(raw) <= RAM:
        mem.write(gpa, raw)
    rejected = mon.stats.rejected
    bus.write(P.CTRL_REGISTER, 4, pfn)
    if gpa + P.AREA_SIZE > RAM:
        assert mon.stats.rejected == rejected + 1


def test_pvbatch_count_above_capacity_is_rejected():
    mem, mon, bus, trace = machine()
    put(mem, [P.Entry(Op.OUT, BASE, 1, 1).encode()])
    mem.write(AREA + 20, struct.pack("<I", P.ENTRY_CAPACITY + 1))
    bus.write(P.CTRL_FLUSH, 4, 0)
    assert header(mem)["status"] == Status.BAD_COUNT and mon.stats.rejected == 1 and trace.events == []


def test_pvbatch_entries_for_unowned_or_control_ports_are_rejected():
    for port in (0x300, P.CTRL_FLUSH, BASE + 15):          # BASE+15 of size 2 runs past the device
        mem, mon, bus, trace = machine()
        size = 2 if port == BASE + 15 else 4
        put(mem, [P.Entry(Op.OUT, BASE, 1, 7).encode(), P.Entry(Op.OUT, port, size, 0).encode()])
        bus.write(P.CTRL_FLUSH, 4, 0)
        assert header(mem)["status"] == Status.BAD_ENTRY, hex(port)
        assert trace.events == [] and "not owned" in mon.stats.errors[-1]


def test_pvbatch_string_outside_ram_is_rejected():
    mem, mon, bus, trace = machine()
    put(mem, [P.Entry(Op.INS, BASE + 10, 2, 16, RAM - 8).encode()])
    bus.write(P.CTRL_FLUSH, 4, 0)
    assert header(mem)["status"] == Status.BAD_ADDRESS and trace.events == []


def test_pvbatch_valid_batch_replays_in_order_and_writes_results_back():
    mem, mon, bus, trace = machine()
    # the strings' buffers lie past the area (0x10000..+AREA_SIZE): an INS into an area is rejected
    mem.write(0x70000, bytes([1, 0, 2, 0, 3, 0]))
    put(mem, [P.Entry(Op.OUT, BASE, 1, 9).encode(), P.Entry(Op.OUTS, BASE + 12, 2, 3, 0x70000).encode(),
              P.Entry(Op.IN_DISCARD, BASE + 6, 1).encode(), P.Entry(Op.INS, BASE + 10, 1, 2, 0x70010).encode(),
              P.Entry(Op.IN, BASE + 0, 1).encode()])
    bus.write(P.CTRL_FLUSH, 4, 0)
    assert header(mem)["status"] == Status.OK and mon.stats.rejected == 0
    assert trace.events == [("w", BASE, 1, 9), ("w", BASE + 12, 2, 1), ("w", BASE + 12, 2, 2),
                            ("w", BASE + 12, 2, 3), ("r", BASE + 6, 1, 0), ("r", BASE + 10, 1, 0),
                            ("r", BASE + 10, 1, 0), ("r", BASE, 1, 9)]
    assert struct.unpack_from("<I", mem.read(AREA + P.OFF_ENTRIES + 4 * P.ENTRY.size + 4, 4))[0] == 9


def test_pvbatch_publishes_classes_and_shadows():
    mem, mon, bus, _ = machine()
    word = lambda port: struct.unpack_from("<H", mem.read(AREA + P.OFF_CLASSES + 2 * port, 2))[0]  # noqa: E731
    rc, wc, owned, effect, slot = P.split_class_word(word(BASE + 5))
    assert (rc, owned, effect) == (P.PortClass.SHADOW, True, False)
    assert P.split_class_word(word(BASE + 6))[:4] == (P.PortClass.SHADOW, P.PortClass.STRICT, True, True)
    # posted, and the device has a FIFO port: published DOORBELL_IF with no mask (the runtime's slow path, which
    # flushes a write while prefetched values are owed: FIFO.kill)
    assert P.split_class_word(word(BASE))[1] == P.PortClass.DOORBELL_IF
    assert P.split_class_word(word(BASE + 4))[1] == P.PortClass.DOORBELL
    assert P.split_class_word(word(BASE + 8))[0] == P.PortClass.FIFO
    assert word(0x300) == 0 and word(P.CTRL_FLUSH) == 0       # unowned and the control ports: strict, not owned
    assert word(BASE + 10) == P.CLS_OWNED
    sh = P.SHADOW.unpack(mem.read(AREA + P.OFF_SHADOWS + slot * P.SHADOW.size, P.SHADOW.size))
    assert sh["port"] == BASE + 5 and sh["valid"] == 0b111


@SETTINGS
@given(st.binary(min_size=P.ENTRY.size, max_size=P.ENTRY.size), st.integers(0, 1 << 40))
def test_pvbatch_decoder_accepts_or_rejects_random_entries(raw, ram):
    try:
        e = P.decode_entry(raw, 0, ram)
    except BatchRejected as exc:
        assert exc.status in (Status.BAD_ENTRY, Status.BAD_ADDRESS)
        return
    assert e.size in P.SIZES and e.port + e.size <= 0x10000
    if e.op in (Op.OUTS, Op.INS):
        assert 0 < e.value * e.size <= P.MAX_STRING_BYTES and e.gpa + e.value * e.size <= ram
