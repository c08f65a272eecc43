"""ATA's neutral read effect (AtaDisk.neutral_read_effects, protocol v4): reading Status acknowledges INTRQ and
changes no register's readback, from every state; the data port's reads do change Status, so it is not declared;
pvbatch publishes the bit for 0x1F7 only."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pvgen import protocol as P
from pvgen.devices import ata as A
from pvgen.devices.bus import PortBus
from pvgen.devices.diskimage import MemoryDisk
from pvgen.devices.pvbatch import PvBatch
from pvgen.protocol import PortClass
from pvgen.runtime.hostlib import HostMemory
from pvgen.runtime.refmodel import RefRuntime
from tests.property.test_ata_fuzz import Line, access, apply
from tests.property.test_ata_neutral import STATES

INTRQ_STATES = {   # states with an interrupt pending (nIEN clear), so the acknowledge has something to clear
    "IDENTIFY data ready": [(1, 0, 0), (0, 7, A.ATA_CMD_ID_ATA)],
    "completed": [(1, 0, 0), (0, 2, 0), (0, 7, A.ATA_CMD_SET_MULTI)],
    "aborted": [(1, 0, 0), (0, 7, 0xFF)],
    "completed, then HOB": [(1, 0, 0), (0, 7, A.ATA_CMD_FLUSH), (1, 0, A.ATA_HOB)],
}


def readbacks(dev: A.AtaDisk) -> dict:
    """Every shadow the monitor can publish for the channel: command block 0-7 and the control block, each size."""
    out = {("cmd", off, size): dev.shadow_read(off, size) for off in range(8) for size in (1, 2, 4)}
    out.update({("ctl", 0, size): dev.control.shadow_read(0, size) for size in (1, 2, 4)})
    return out


def check_status_read(dev: A.AtaDisk, line: Line) -> None:
    before = readbacks(dev)
    value = dev.io_read(A.ATA_REG_STATUS, 1)
    assert readbacks(dev) == before                      # no shadowed value changed
    assert value == before[("cmd", 7, 1)]                # and the shadow served is what the read returned
    if not dev.device & A.ATA_DEV1:
        assert not dev.intrq and not line.level          # the only effect: INTRQ acknowledged


def build(prefix) -> tuple[A.AtaDisk, Line]:
    line = Line()
    dev = A.AtaDisk(MemoryDisk(64), irq=line)
    for target, off, value in prefix:
        (dev.control if target else dev).io_write(off, 1, value)
    return dev, line


def test_declaration_is_status_only():
    dev = A.AtaDisk(MemoryDisk(8))
    assert dev.neutral_read_effects() == {A.ATA_REG_STATUS}
    assert all(dev.read_side_effects(off) for off in dev.neutral_read_effects())   # neutral, yet replayed
    assert not hasattr(dev.control, "neutral_read_effects")       # Alternate Status has no effect at all


def test_status_read_changes_no_readback_from_each_state():
    for name, prefix in {**STATES, **INTRQ_STATES}.items():
        dev, line = build(prefix)
        pending = dev.intrq
        check_status_read(dev, line)
        check_status_read(dev, line)                     # a second read finds nothing left to acknowledge
        if name in INTRQ_STATES:
            assert pending, name


@settings(max_examples=80, deadline=None)
@given(ops=st.lists(access, max_size=60))
def test_status_read_changes_no_readback_after_a_random_guest(ops):
    line = Line()
    dev = A.AtaDisk(MemoryDisk(64), irq=line)
    for op in ops:
        apply(dev, op)
    check_status_read(dev, line)


def test_data_reads_are_not_neutral_the_last_word_clears_drq():
    dev, _ = build(INTRQ_STATES["IDENTIFY data ready"])
    before = readbacks(dev)
    dev.read_many(A.ATA_REG_DATA, 2, 256)
    assert readbacks(dev)[("cmd", 7, 1)] == before[("cmd", 7, 1)] & ~A.ATA_DRQ
    assert A.ATA_REG_DATA not in dev.neutral_read_effects()


def test_pvbatch_publishes_the_bit_for_status_only():
    bus = PortBus()
    A.attach_primary(bus, A.AtaDisk(MemoryDisk(8)))
    mem, area = HostMemory(1 << 20), 0x10000
    mon = PvBatch.attach(bus, mem)
    ref = RefRuntime(mem, area, mon, lambda p, s: bus.read(p, s), lambda p, s, v: bus.write(p, s, v))
    assert ref.init() == 0
    bitmap = mem.read(area + P.OFF_READ_NEUTRAL, P.READ_NEUTRAL_SIZE)
    words = {port: P.split_class_word(int.from_bytes(mem.read(area + P.OFF_CLASSES + 2 * port, 2), "little"))
             for port in (*range(0x1F0, 0x1F8), 0x3F6)}
    shadows = {port for port, w in words.items() if w[0] == PortClass.SHADOW}
    assert shadows == {*range(0x1F1, 0x1F8), 0x3F6}
    assert {port for port in shadows if P.is_read_neutral(bitmap, words[port][4])} == {0x1F7}
    assert sum(bin(b).count("1") for b in bitmap) == 1
