"""The monitor under a hostile guest that speaks protocol v5: random batches with SERVED_IN / SERVED_OUT / IRQ_MARK
entries (random engine indexes, device addresses, counts, area offsets, sizes, ports) beside the v4 entries, over an
area whose model records (latches, engines, command and interrupt rules, the index file, audit log, xstaging, engine
memory) the guest scribbled on, with an NE2000 and an ATA disk on the bus and their models published.

The monitor never raises, never touches memory outside guest RAM (StrictMemory) and writes only the area and the
targets of the batch's own INS entries; it rejects a malformed batch whole (BAD_ENTRY / BAD_ADDRESS: nothing replayed,
no device changed); a well-formed batch leaves the devices exactly as the same accesses made directly leave them (a
served run is that many reads or writes, a mark none; plus the reads a FIFO refill prefetches), so no window copy or
mirror sync reaches a device; and a claim the device contradicts (a served run where the device's transfer is not,
more than a window held, other bytes than the device returns, an interrupt the device did not raise) is counted.
The tests at the end pin two claims the monitor once acted on unchecked: a served write on the ATA data port that no
window allowed was acknowledged (write-back; now a mismatch, taken as plain writes), and an audit record made the
monitor read the port it names (now only side-effect-free reads: a shadow's shadow_read, an index file's data).
"""

from __future__ import annotations

import copy
import os
import struct
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine_pic import MachinePic  # noqa: E402
from test_pvbatch_fuzz import StrictMemory  # noqa: E402

from pvgen import protocol as P  # noqa: E402
from pvgen.devices import ata as A  # noqa: E402
from pvgen.devices import ne2000 as N  # noqa: E402
from pvgen.devices.bus import PortBus  # noqa: E402
from pvgen.devices.diskimage import MemoryDisk  # noqa: E402
from pvgen.devices.pvbatch import PvBatch  # noqa: E402
from pvgen.devices.pvirq import IrqNotifier  # noqa: E402
from pvgen.protocol import EngineState, Op, PortClass, Status  # noqa: E402
from tests.conftest import ON_CI  # noqa: E402

LONG = os.environ.get("PVGEN_HYPOTHESIS_PROFILE") == "long"
SETTINGS = settings(max_examples=3000 if LONG else 300, deadline=None, derandomize=ON_CI,
                    database=None if ON_CI else settings.default.database,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

RAM, AREA = 1 << 20, 0x40000
NIC, NIC_LINE, ATA_LINE = 0xC000, 11, A.ATA_PRIMARY_IRQ
CMD, CTL = A.ATA_PRIMARY_CMD, A.ATA_PRIMARY_CTL
DP, DATA = NIC + N.NE_DATAPORT, CMD + A.ATA_REG_DATA
MAC = bytes.fromhex("525400123456")
SECTORS = 32
MODEL_REGIONS = [(off, size) for name, off, size in P.AREA_REGIONS
                 if name in ("latches", "irq_rules", "ix_file", "engines", "cmd_rules", "ix_entries", "audit",
                             "audit_recs", "audit_data", "xstaging", "engine_mem")]


class WatchedMemory(StrictMemory):
    """StrictMemory that also records the ranges the monitor writes."""

    def __init__(self, size: int):
        super().__init__(size)
        self.writes: list[tuple[int, int]] = []

    def write(self, gpa: int, data: bytes) -> None:
        super().write(gpa, data)
        self.writes.append((gpa, len(data)))


def devices(pic=None):
    """An NE2000 (started, word mode, promiscuous, a 0x4C..0x80 ring with two frames) and an ATA disk on one bus."""
    nic = N.Ne2000(mac=MAC, cr_write_class=PortClass.DOORBELL_IF)
    nic.irq_line_number = NIC_LINE
    disk = A.AtaDisk(MemoryDisk(SECTORS))
    disk.backend.data[:] = bytes((k * 7 + (k >> 9)) & 0xFF for k in range(SECTORS * 512))
    if pic is not None:
        nic.irq = lambda level: pic.set_irq(NIC_LINE, level)
        disk.irq = lambda level: pic.set_irq(ATA_LINE, level)
    bus = PortBus()
    bus.register(NIC, N.NE_IO_EXTENT, nic)
    A.attach_primary(bus, disk)
    for off, v in [(N.CR, 0x21), (N.DCR, 0x49), (N.PSTART, 0x4C), (N.PSTOP, 0x80), (N.BNRY, 0x7F), (N.TPSR, 0x40),
                   (N.RCR, 0x1C), (N.IMR, 0x3F), (N.CR, 0x61), (N.CURR, 0x4C), (N.CR, 0x22)]:
        bus.write(NIC + off, 1, v)
    for i in range(2):
        nic.receive(MAC + bytes([i]) * 300)
    return bus, nic, disk


def setup(bus, nic_dma: str, ata_xfer: str) -> None:
    """Put the devices in a transfer: NE2000 remote read/write armed (or none), ATA data-in / data-out DRQ block
    (or none), through their ports."""
    if nic_dma != "idle":
        for off, v in [(N.RBCR0, 0x40), (N.RBCR1, 0x01), (N.RSAR0, 0xF0), (N.RSAR1, 0x7F)]:
            bus.write(NIC + off, 1, v)
        bus.write(NIC + N.CR, 1, 0x0A if nic_dma == "read" else 0x12)
    if ata_xfer != "idle":
        bus.write(CTL, 1, A.ATA_NIEN)
        bus.write(CMD + A.ATA_REG_NSECT, 1, 4)
        bus.write(CMD + A.ATA_REG_LBAL, 1, 3)
        bus.write(CMD + A.ATA_REG_DEVICE, 1, 0xE0)
        if ata_xfer in ("read1", "write1"):
            bus.write(CMD + A.ATA_REG_NSECT, 1, 1)       # one sector: the last (only) block is a window
        bus.write(CMD + A.ATA_REG_STATUS, 1, A.ATA_CMD_PIO_READ if ata_xfer.startswith("read") else
                  A.ATA_CMD_PIO_WRITE)


class World:
    """The devices, a monitor with the models published (and a notifier, interrupt rules), one registered area."""

    def __init__(self, nic_dma: str = "idle", ata_xfer: str = "idle", audit: bool = False, notify: bool = True):
        self.pic = MachinePic()
        self.bus, self.nic, self.disk = devices(self.pic)
        setup(self.bus, nic_dma, ata_xfer)
        self.mem = WatchedMemory(RAM)
        self.mon = PvBatch.attach(self.bus, self.mem)
        self.notifier = IrqNotifier.attach(self.pic, self.mon) if notify else None
        self.mem.write(AREA, P.HEADER.pack(magic=P.MAGIC, version=P.VERSION, area_size=P.AREA_SIZE,
                                           capacity=P.ENTRY_CAPACITY, threshold=P.DEFAULT_THRESHOLD,
                                           irq_lines=1 << NIC_LINE | 1 << ATA_LINE, audit=1 if audit else 0))
        self.bus.write(P.CTRL_REGISTER, 4, AREA >> 12)
        assert self.mon.stats.rejected == 0 and self.header()["state"] == P.State.ACTIVE
        self.models = self.mon.areas[0].models
        assert self.models is not None and [e.port for e in self.models.engines] == [DATA, DP]
        self.pic.edges.clear()            # the setup's (the frames in the ring raised the NE2000's line)

    def header(self) -> dict:
        return P.decode_header(self.mem.read(AREA, P.HEADER.size))

    def put(self, entries: list[bytes]) -> None:
        for i, raw in enumerate(entries):
            self.mem.write(AREA + P.OFF_ENTRIES + i * P.ENTRY.size, raw)
        self.mem.write(AREA + P.HEADER.field("count")[0], struct.pack("<I", len(entries)))

    def flush(self) -> None:
        self.mem.writes.clear()
        self.bus.write(P.CTRL_FLUSH, 4, 0)          # never raises (a ProtocolError is recorded)


def dev_state(nic: N.Ne2000, disk: A.AtaDisk) -> dict:
    def fields(dev, skip):
        return {k: (bytes(v) if isinstance(v, (bytearray, list)) else v) for k, v in vars(dev).items()
                if k not in skip and not k.startswith("_")}
    return {"nic": fields(nic, {"backend", "irq", "irq_gate", "metrics"}),
            "ata": fields(disk, {"backend", "irq", "control", "metrics"}),
            "image": bytes(disk.backend.data)}


def entry(op: int, port: int, size: int, value: int = 0, gpa: int = 0) -> bytes:
    return P.ENTRY.fmt.pack(port & 0xFFFF, size & 0xFF, op & 0xFF, value & 0xFFFFFFFF, gpa & (1 << 64) - 1)


# --- strategies -----------------------------------------------------------------------------------------------------
ports = st.one_of(st.sampled_from([DP, DATA, NIC + N.CR, NIC + N.ISR, NIC + N.NE_RESET, CMD + 7, CTL, DATA + 1]),
                  st.integers(NIC, NIC + 0x1F), st.integers(CMD, CMD + 7), st.integers(0, 0xFFFF),
                  st.integers(P.CTRL_BASE, P.CTRL_BASE + 7))
sizes = st.one_of(st.sampled_from([1, 2, 4]), st.integers(0, 255))
area_offs = st.one_of(st.integers(P.OFF_XSTAGING - 8, P.OFF_XSTAGING + P.XSTAGING_SIZE + 8),
                      st.integers(P.OFF_ENGINE_MEM - 8, P.OFF_ENGINE_MEM + P.ENGINE_MEM_SIZE + 8),
                      st.integers(0, (1 << P.SERVED_OFF_BITS) - 1))
dev_addrs = st.one_of(st.integers(0x7FF0, 0x8010), st.integers(0x4C00, 0x4C10), st.integers(0, 0x600),
                      st.integers(0, 0xFFFFFFFF))
counts = st.one_of(st.integers(0, 8), st.integers(0, 600), st.sampled_from([P.MAX_STRING_BYTES // 4,
                                                                          P.MAX_STRING_BYTES // 2 + 1, 0xFFFFFFFF]))
served = st.builds(lambda op, port, size, n, eng, addr, off: entry(op, port, size, n,
                                                                    P.served_gpa(eng, addr, off)),
                   st.sampled_from([Op.SERVED_IN, Op.SERVED_OUT]), ports, sizes, counts,
                   st.one_of(st.integers(0, 3), st.integers(0, 255)), dev_addrs, area_offs)
marks = st.builds(lambda port, line: entry(Op.IRQ_MARK, port, 1, line), ports,
                  st.one_of(st.sampled_from([NIC_LINE, ATA_LINE]), st.integers(0, 40)))
plain = st.builds(lambda op, port, size, value, gpa: entry(op, port, size, value, gpa),
                  st.sampled_from([Op.OUT, Op.IN, Op.IN_DISCARD, Op.OUTS, Op.INS, 0, 9, 255]), ports, sizes,
                  st.one_of(st.integers(0, 0xFF), st.integers(0, 64), st.integers(0, 0xFFFFFFFF)),
                  st.one_of(st.integers(0x80000, 0x90000), st.integers(RAM - 64, RAM + 64), st.integers(0, 1 << 64)))
# well formed: owned ports with a size that stays in the device's range, counts a run may have, served writes' data
# inside xstaging or the engine memory
good_sizes = st.sampled_from([1, 2, 2, 4])
owned = st.one_of(st.tuples(st.sampled_from([DP, DATA, DP, DATA, NIC + N.CR, NIC + N.ISR]), good_sizes),
                  st.tuples(st.integers(NIC, NIC + 0x1C), good_sizes), st.tuples(st.integers(CMD, CMD + 4), good_sizes),
                  st.tuples(st.sampled_from([CMD + 7, CTL]), st.just(1)))
good_offs = st.one_of(st.integers(P.OFF_XSTAGING, P.OFF_XSTAGING + P.XSTAGING_SIZE - 0x400),
                      st.integers(P.OFF_ENGINE_MEM, P.OFF_ENGINE_MEM + P.ENGINE_MEM_SIZE - 0x400))
good_served = st.builds(lambda op, ps, n, eng, addr, off: entry(op, *ps, n, P.served_gpa(eng, addr, off)),
                        st.sampled_from([Op.SERVED_IN, Op.SERVED_OUT]), owned, st.integers(1, 256),
                        st.integers(0, 3), dev_addrs, good_offs)
good_plain = st.one_of(
    st.builds(lambda ps, v: entry(Op.OUT, *ps, v & (1 << 8 * ps[1]) - 1), owned, st.integers(0, 0xFFFFFFFF)),
    st.builds(lambda op, ps: entry(op, *ps), st.sampled_from([Op.IN, Op.IN_DISCARD]), owned),
    st.builds(lambda op, ps, n, gpa: entry(op, *ps, n, gpa), st.sampled_from([Op.OUTS, Op.INS]), owned,
              st.integers(1, 300), st.integers(0x80000, 0x90000)))
good_marks = st.builds(lambda line: entry(Op.IRQ_MARK, 0, 1, line), st.sampled_from([NIC_LINE, ATA_LINE]))
entries_st = st.one_of(st.lists(st.one_of(good_served, good_served, good_marks, good_plain), max_size=12),
                       st.lists(st.one_of(served, served, marks, plain, good_served, good_plain), max_size=12))
scribble = st.lists(st.tuples(st.sampled_from(MODEL_REGIONS), st.integers(0, 1 << 20), st.binary(min_size=1,
                                                                                                    max_size=64)),
                    max_size=6)
nic_dmas = st.sampled_from(["idle", "read", "write"])
ata_xfers = st.sampled_from(["idle", "read", "write", "read1", "write1"])


def do_scribble(w: World, scribbles) -> None:
    for (off, size), at, data in scribbles:
        at %= size
        w.mem.write(AREA + off + at, data[: size - at])


# --- the direct equivalent of a replayed batch --------------------------------------------------------------------
def direct(bus, mem: bytearray, batch: list[tuple]) -> None:
    """What the batch's accesses do when made directly: OUT/IN/IN_DISCARD one access; OUTS/INS and served runs that
    many accesses (a served write's data from the area), a mark nothing.  `mem` is a copy of guest RAM that takes
    the INS data and IN results, as the monitor's replay does (a later OUTS may read them)."""
    for i, (port, size, op, value, gpa) in enumerate(batch):
        if op == Op.OUT:
            bus.write(port, size, value)
        elif op == Op.IN:
            v = bus.read(port, size)
            off = AREA + P.OFF_ENTRIES + i * P.ENTRY.size + 4
            mem[off:off + 4] = struct.pack("<I", v)
        elif op == Op.IN_DISCARD:
            bus.read(port, size)
        elif op in (Op.OUTS, Op.SERVED_OUT):
            src = gpa if op == Op.OUTS else AREA + (gpa & (1 << P.SERVED_OFF_BITS) - 1)
            for k in range(value):
                bus.write(port, size, int.from_bytes(mem[src + k * size:src + (k + 1) * size], "little"))
        elif op in (Op.INS, Op.SERVED_IN):
            got = b"".join(bus.read(port, size).to_bytes(size, "little") for _ in range(value))
            if op == Op.INS:
                mem[gpa:gpa + len(got)] = got


def decoded(raw_entries: list[bytes]) -> list[tuple]:
    return [P.ENTRY.fmt.unpack(r) for r in raw_entries]


# --- properties -----------------------------------------------------------------------------------------------------
@SETTINGS
@given(entries=entries_st, scribbles=scribble, nic_dma=nic_dmas, ata_xfer=ata_xfers, notify=st.booleans())
def test_hostile_batches_are_replayed_as_direct_accesses_or_rejected_whole(entries, scribbles, nic_dma, ata_xfer,
                                                                           notify):
    w = World(nic_dma, ata_xfer, notify=notify)
    do_scribble(w, scribbles)
    w.put(entries)
    twin_bus, twin_nic, twin_disk = devices()
    setup(twin_bus, nic_dma, ata_xfer)
    assert dev_state(twin_nic, twin_disk) == dev_state(w.nic, w.disk)
    twin_mem = bytearray(w.mem.buf)
    refills = w.mon.stats.fifo_refills
    w.flush()
    h = w.header()
    assert h["count"] == 0
    batch = decoded(entries)
    event(f"status {Status(h['status']).name}" + (", with served runs" if any(
        e[2] in (Op.SERVED_IN, Op.SERVED_OUT) for e in batch) and h["status"] == Status.OK else ""))
    if h["status"] != Status.OK:
        assert h["status"] in (Status.BAD_ENTRY, Status.BAD_ADDRESS) and w.mon.stats.rejected == 1
        assert dev_state(w.nic, w.disk) == dev_state(twin_nic, twin_disk), "a rejected batch reached a device"
        assert w.pic.edges == []
        return
    assert w.mon.stats.rejected == 0
    direct(twin_bus, twin_mem, batch)
    if w.mon.stats.fifo_refills > refills:       # the prefetch of the values the guest reads next
        port, size, _, count, _, _ = struct.unpack("<HBBIII", w.mem.read(AREA + P.OFF_FIFO, 16))
        for _ in range(count):
            twin_bus.read(port, size)
    assert dev_state(w.nic, w.disk) == dev_state(twin_nic, twin_disk)
    ins = [(gpa, value * size) for port, size, op, value, gpa in batch if op == Op.INS]
    for gpa, n in w.mem.writes:
        assert AREA <= gpa and gpa + n <= AREA + P.AREA_SIZE or any(lo <= gpa and gpa + n <= lo + k
                                                                     for lo, k in ins), \
            f"the monitor wrote {n:#x} bytes at {gpa:#x}, outside the area and the batch's INS targets"


@SETTINGS
@given(entries=entries_st, scribbles=scribble, nic_dma=nic_dmas, ata_xfer=ata_xfers,
       records=st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 255), st.sampled_from([1, 2, 3, 4, 5]),
                                  st.integers(0, 0xFFFFFFFF), st.integers(0, 16), st.integers(0, 0xFFFFFFFF)),
                        max_size=8),
       data_used=st.integers(0, 0xFFFFFFFF))
def test_a_hostile_audit_log_never_takes_the_monitor_down(entries, scribbles, nic_dma, ata_xfer, records, data_used):
    """An audit area (header.audit = 1) with random records (kinds, ports, sizes, positions, data offsets) and a
    random data count: the monitor checks what it can, counts mismatches, never raises or leaves guest RAM.  (Device
    state is not compared: a record makes the monitor read its port, test_an_audit_record_does_not_make_the_monitor_
    access_a_device.)"""
    w = World(nic_dma, ata_xfer, audit=True)
    do_scribble(w, scribbles)
    w.put(entries)
    raw = b"".join(P.AUDIT_REC.fmt.pack(port, size, kind, value, pos, data) for port, size, kind, value, pos, data
                   in records)
    w.mem.write(AREA + P.OFF_AUDIT_RECS, raw)
    w.mem.write(AREA + P.OFF_AUDIT, struct.pack("<IIII", len(records), P.AUDIT_CAPACITY, data_used,
                                                P.AUDIT_DATA_SIZE))
    w.flush()
    assert w.header()["count"] == 0


# --- claims the device contradicts are counted ---------------------------------------------------------------------
def one_claim(w: World, raw: bytes) -> int:
    before = w.models.stats.mismatches
    w.put([raw])
    w.flush()
    assert w.header()["status"] == Status.OK, w.mon.stats.errors
    return w.models.stats.mismatches - before


@SETTINGS
@given(addr=st.one_of(st.just(0x7FF0), st.integers(0x4000, 0x8000)), n=st.integers(1, 600),
       size=st.sampled_from([2, 4]), dma=nic_dmas)
def test_a_remote_dma_claim_is_checked_against_the_device(addr, n, size, dma):
    """A SERVED_IN on the NE2000 data port: no mismatch exactly when the device's remote read is at `addr` (the
    count saturates: a run past it is the device's own business, like reads past the count)."""
    w = World(nic_dma=dma)
    pos = w.nic.engine_position(0)
    got = one_claim(w, entry(Op.SERVED_IN, DP, size, n, P.served_gpa(1, addr)))
    assert got == (0 if pos is not None and pos[0] == EngineState.READ and pos[1] == addr else 1)


@SETTINGS
@given(at=st.one_of(st.just(0), st.integers(0, 600)), n=st.integers(1, 300), size=st.sampled_from([2, 4]),
       xfer=ata_xfers)
def test_a_window_claim_is_checked_against_the_device(at, n, size, xfer):
    """A SERVED_IN on the ATA data port, naming the window's bytes it served: no mismatch exactly when the device is
    in a data-in block at `at` with at least the claimed bytes left (a window does not saturate: more than it held
    is a contradiction) and the monitor published those bytes there."""
    w = World(ata_xfer=xfer)
    pos = w.disk.engine_position(0)
    mem_off = w.models.engines[0].mem_off
    published = dict(w.models.windows)
    got = one_claim(w, entry(Op.SERVED_IN, DATA, size, n, P.served_gpa(0, at, mem_off)))
    ok = (pos is not None and pos[0] == EngineState.READ and pos[1] == at and n * size <= pos[2]
          and n * size <= len(published.get(mem_off, b"")))
    assert got >= (0 if ok else 1) and (got == 0) == ok


def test_a_claim_on_an_engine_not_published_there_is_counted():
    w = World(nic_dma="read", ata_xfer="read")
    assert one_claim(w, entry(Op.SERVED_IN, DP, 2, 1, P.served_gpa(0, 0x7FF0))) == 1     # engine 0 is the ATA's
    assert one_claim(w, entry(Op.SERVED_IN, DP, 2, 1, P.served_gpa(7, 0x7FF2))) == 1


def test_an_interrupt_the_device_did_not_raise_is_counted():
    """The guest marks line 11 raised with nothing at the NE2000 raising it: the notifier reports the mark."""
    w = World()
    assert one_claim(w, entry(Op.IRQ_MARK, 0, 1, NIC_LINE)) == 1
    assert w.pic.edges == []


def test_served_bytes_other_than_the_devices_are_an_audit_mismatch():
    """An audit build's ENGINE record of bytes the device does not return (a guest that claims to have read other
    values) is counted; the true bytes are not."""
    for flip, want in ((False, 0), (True, 1)):
        w = World(nic_dma="read", audit=True)
        truth = bytes(w.nic.mem[0x7FF0:0x7FF8])
        given_ = bytes([truth[0] ^ 1]) + truth[1:] if flip else truth
        w.mem.write(AREA + P.OFF_AUDIT_DATA, given_)
        w.mem.write(AREA + P.OFF_AUDIT_RECS, P.AUDIT_REC.fmt.pack(DP, 2, int(P.AuditKind.ENGINE), 8, 0, 0))
        w.mem.write(AREA + P.OFF_AUDIT, struct.pack("<IIII", 1, P.AUDIT_CAPACITY, 8, P.AUDIT_DATA_SIZE))
        assert one_claim(w, entry(Op.SERVED_IN, DP, 2, 4, P.served_gpa(1, 0x7FF0))) == 0
        assert w.mon.audit.mismatches == want and w.mon.audit.served == 1


def test_more_than_a_window_held_is_a_mismatch():
    w = World(ata_xfer="read1")
    assert len(w.models.windows[w.models.engines[0].mem_off]) == 512      # the window published: one block
    assert one_claim(w, entry(Op.SERVED_IN, DATA, 2, 257, P.served_gpa(0, 0))) >= 1


# --- found by these tests: two claims the monitor acts on without checking them -----------------------------------
def test_a_forged_window_write_is_counted_without_a_failing_backend():
    """(The healthy half of the test below: with a backend that works, the forged run is plain writes.)"""
    w = World(ata_xfer="write")
    w.mem.write(AREA + P.OFF_XSTAGING, bytes(range(256)) * 2)
    w.put([entry(Op.SERVED_OUT, DATA, 2, 256, P.served_gpa(0, 0, P.OFF_XSTAGING))])
    w.flush()
    assert w.disk.backend.data[3 * 512:4 * 512] == bytes(range(256)) * 2


def write_cache_off_write_in_drq(w: World) -> None:
    """SET FEATURES write cache off, then WRITE SECTORS of one sector at LBA 5 (DRQ, waiting for its data)."""
    for port, v in ((CMD + 1, A.SETFEATURES_WC_OFF), (CMD + 7, A.ATA_CMD_SET_FEATURES), (CMD + 2, 1), (CMD + 3, 5),
                    (CMD + 6, 0xE0), (CMD + 7, A.ATA_CMD_PIO_WRITE)):
        w.bus.write(port, 1, v)
    w.mon.refresh()
    assert not w.disk.write_cache and w.disk.engine_state(0) is None     # no window published: a write exits


def test_a_served_write_the_monitor_did_not_window_is_replayed_as_plain_writes():
    def fail(lba: int, data: bytes) -> None:
        raise OSError(5, "injected write error")
    w = World()
    w.disk.backend.write = fail
    write_cache_off_write_in_drq(w)
    w.mem.write(AREA + P.OFF_XSTAGING, bytes(512))
    mismatches = one_claim(w, entry(Op.SERVED_OUT, DATA, 2, 256, P.served_gpa(0, 0, P.OFF_XSTAGING)))
    # what 256 data writes made directly do: the failing write aborts the command
    assert (w.disk.status & A.ATA_ERR, w.disk.error, w.disk.write_back_errors) == (A.ATA_ERR, A.ATA_ABORTED, [])
    assert mismatches == 1


def test_an_audit_record_does_not_make_the_monitor_access_a_device():
    w = World(nic_dma="read", audit=True)
    before = dev_state(w.nic, w.disk)
    recs = [(NIC + N.NE_RESET, 1), (DP, 2), (CMD + A.ATA_REG_STATUS, 1)]
    w.mem.write(AREA + P.OFF_AUDIT_RECS, b"".join(P.AUDIT_REC.fmt.pack(port, size, int(P.AuditKind.SHADOW), 0, 0, 0)
                                                  for port, size in recs))
    w.mem.write(AREA + P.OFF_AUDIT, struct.pack("<IIII", len(recs), P.AUDIT_CAPACITY, 0, P.AUDIT_DATA_SIZE))
    w.put([])
    w.flush()
    assert dev_state(w.nic, w.disk) == before
