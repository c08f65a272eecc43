"""The bulk shadow reads (`shadow_block`, used by pvbatch's partial refresh) equal the per-register reads for random
device states and have no side effects; the declared `shadow_sizes` hold; and a monitor using both publishes exactly
what the per-register path, asking every size, does."""

from __future__ import annotations

import copy
import os
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from pvgen import protocol as P
from pvgen.devices import ata as A
from pvgen.devices import ne2000 as N
from pvgen.devices.bus import PortBus
from pvgen.devices.diskimage import MemoryDisk
from pvgen.protocol import Op, PortClass
from tests.property.test_ata_fuzz import access as ata_access
from tests.property.test_ata_fuzz import apply as ata_apply
from tests.property.test_ne2000_rules import MAC, nic_after, write
from tests.property.test_pvbatch_fuzz import StrictMemory, activate

PROFILE = os.environ.get("PVGEN_HYPOTHESIS_PROFILE", "default")
EXAMPLES = {"long": 2000}.get(PROFILE, 100)
BANKS = (None, -1, 0, 1, 2, 3, 4)

# NE2000 fields a driver or the wire moves, set directly too (their hardware widths), to reach odd rings
ne_fields = st.fixed_dictionaries({}, optional={
    "pstart": st.integers(0, 0xFF), "pstop": st.integers(0, 0xFF), "curr": st.integers(0, 0xFF),
    "crda": st.integers(0, 0xFFFF), "clda": st.integers(0, 0x7FFF), "rsr": st.integers(0, 0xFF),
    "page": st.integers(0, 3), "cntr": st.lists(st.integers(0, 0xFF), min_size=3, max_size=3)})


def expected(read, first: int, count: int) -> bytes | None:
    vals = [read(off) for off in range(first, first + count)]
    return None if any(v is None for v in vals) else bytes(v & 0xFF for v in vals)


def state(dev) -> dict:
    return copy.deepcopy({k: v for k, v in vars(dev).items() if k not in ("irq", "backend", "control", "shadow_block", "shadow_sizes")})


def check_blocks(dev, reader, offsets: range) -> None:
    before = state(dev)
    for bank in BANKS:
        read = reader(bank, 1)
        for first in offsets:
            for count in range(1, offsets.stop - max(first, 0) + 1):
                assert dev.shadow_block(bank, first, count) == expected(read, first, count), (bank, first, count)
        for size in set(P.SIZES) - set(dev.shadow_sizes):   # the declaration a full refresh relies on
            assert all(reader(bank, size)(off) is None for off in offsets), (bank, size)
    assert state(dev) == before                    # no side effects, the page is left as it was


def ne_reader(nic: N.Ne2000, bank, size: int):
    if bank is None:
        return lambda off: nic.shadow_read(off, size)
    return lambda off: nic.bank_shadow_read(bank, off, size)


@settings(max_examples=EXAMPLES, deadline=None)
@given(setup=st.lists(write, max_size=16), frames=st.integers(0, 3), fields=ne_fields)
def test_ne2000_shadow_block_equals_register_reads(setup, frames, fields):
    nic = nic_after(setup, frames)
    for k, v in fields.items():
        setattr(nic, k, v)
    check_blocks(nic, lambda bank, size: ne_reader(nic, bank, size), range(-1, 0x12))


def ata_reader(dev: A.AtaDisk, bank, size: int):
    if bank is None:
        return lambda off: dev.shadow_read(off, size)
    return lambda off: None                         # the ATA task file has no banks


@settings(max_examples=EXAMPLES, deadline=None)
@given(ops=st.lists(ata_access, max_size=40))
def test_ata_shadow_block_equals_register_reads(ops):
    dev = A.AtaDisk(MemoryDisk(64))
    for op in ops:
        ata_apply(dev, op)
    check_blocks(dev, lambda bank, size: ata_reader(dev, bank, size), range(-1, 10))


# --- the monitor: bulk refresh against the per-register refresh, same batches -----------------------------------

RAM, AREA, NIC, ATA = 0x100000, 0x40000, 0xC000, 0x1F0


def monitor(bulk: bool):
    bus = PortBus()
    nic = N.Ne2000(mac=MAC, cr_write_class=PortClass.DOORBELL_IF)
    disk = A.AtaDisk(MemoryDisk(64))
    bus.register(NIC, N.NE_IO_EXTENT, nic)
    A.attach_primary(bus, disk)
    calls = []
    if bulk:
        for dev in (nic, disk):
            real = dev.shadow_block
            dev.shadow_block = lambda *a, real=real: calls.append(a) or real(*a)   # counted, same values
    else:
        nic.shadow_block = disk.shadow_block = None          # the per-register path, every size asked
        nic.shadow_sizes = disk.shadow_sizes = None
    mem = StrictMemory(RAM)
    mon = activate(bus, mem, AREA)
    return mem, bus, mon, nic, disk, calls


entry = st.one_of(
    st.tuples(st.just(Op.OUT), st.sampled_from([NIC + o for o in range(0x10)]), st.integers(0, 0xFF)),
    st.tuples(st.just(Op.OUT), st.just(NIC), st.sampled_from([0x21, 0x22, 0x62, 0xA2, 0xE2, 0x0A, 0x12, 0x26])),
    st.tuples(st.sampled_from([Op.IN, Op.IN_DISCARD]), st.sampled_from([NIC + o for o in range(0x10)]),
              st.just(0)),
    st.tuples(st.just(Op.OUT), st.sampled_from([ATA + o for o in range(1, 8)] + [A.ATA_PRIMARY_CTL]),
              st.integers(0, 0xFF)),
    st.tuples(st.sampled_from([Op.IN, Op.IN_DISCARD]), st.sampled_from([ATA + o for o in range(1, 8)]), st.just(0)),
)
step = st.one_of(st.lists(entry, max_size=12), st.just("rx"), st.just("refresh"))


def run_step(mem, bus, mon, nic, s) -> None:
    if s == "rx":
        nic.receive(MAC + bytes(80))
        mon.refresh()
        return
    if s == "refresh":
        mon.refresh()
        return
    for i, (op, port, value) in enumerate(s):
        mem.write(AREA + P.OFF_ENTRIES + i * P.ENTRY.size, P.Entry(port=port, size=1, op=op, value=value).encode())
    mem.write(AREA + P.HEADER.field("count")[0], struct.pack("<I", len(s)))
    bus.write(P.CTRL_FLUSH, 4, 0)


@settings(max_examples=EXAMPLES, deadline=None)
@given(steps=st.lists(step, max_size=14))
def test_bulk_refresh_publishes_what_the_register_reads_publish(steps):
    fast, slow = monitor(True), monitor(False)
    shadows = slice(AREA + P.OFF_SHADOWS, AREA + P.OFF_SHADOWS + P.SHADOW_SLOTS * P.SHADOW.size)
    for s in steps:
        for mem, bus, mon, nic, _, _ in (fast, slow):
            run_step(mem, bus, mon, nic, s)
        assert fast[0].buf[AREA:AREA + P.OFF_FIFO_VALUES] == slow[0].buf[AREA:AREA + P.OFF_FIFO_VALUES]
        assert fast[0].buf[shadows] == slow[0].buf[shadows]
        assert state(fast[3]) == state(slow[3]) and state(fast[4]) == state(slow[4])
    nonempty = [s for s in steps if isinstance(s, list) and s]
    if nonempty:
        assert fast[5], "the bulk path was not taken"
    assert fast[2].stats.rejected == slow[2].stats.rejected == 0
