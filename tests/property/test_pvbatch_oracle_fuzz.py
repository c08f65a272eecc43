"""The batch monitor against an oracle: what the devices saw must be exactly what the accepted batch's entries say.

Recording devices log every access (port, size, value, in order); a twin set of the same devices executes the same
entries at once, in order (the meaning of a batch, docs/protocol.md).  For every batch hypothesis builds — with the
hostile values: counts near 2^31 and 2^32, addresses near 2^64 and at the edge of RAM, strings of 0 and 1 MiB ± 1
bytes, an INS aimed at the batch area, devices with and without bulk access, a device that re-enters the monitor
during the replay — the monitor must:
- accept it exactly when an independent statement of the rules (`valid`) accepts it;
- if accepted: give the devices the twin's accesses, in order, with its values; write each IN's value into its
  entry, each INS's values at its address, and nothing else outside the area;
- if rejected: touch no device and no memory outside the area.
One 8 MiB batch (the largest a batch may move) is replayed within a documented bound (docs/protocol.md).
"""

from __future__ import annotations

import os
import random
import struct
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_pvbatch_fuzz import StrictMemory, activate  # noqa: E402
from test_pvbatch_models_fuzz import WatchedMemory  # noqa: E402

from pvgen import protocol as P  # noqa: E402
from pvgen.devices.bus import PortBus  # noqa: E402
from pvgen.devices.pvbatch import MAX_BATCH_STRING_BYTES, PvBatch  # noqa: E402
from pvgen.protocol import Op, PortClass, Status  # noqa: E402
from tests.conftest import ON_CI  # noqa: E402

LONG = os.environ.get("PVGEN_HYPOTHESIS_PROFILE") == "long"
SETTINGS = settings(max_examples=2000 if LONG else 100, deadline=None, derandomize=ON_CI,
                    database=None if ON_CI else settings.default.database,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

RAM = 4 << 20
AREA = 0x10000                       # the area: AREA .. AREA + P.AREA_SIZE
DATA = 0x100000                      # string buffers: DATA .. RAM
BULK, PLAIN, REENTER = 0x200, 0x300, 0x400   # 16 ports each
MIB = 1 << 20
STREAM = random.Random(7).randbytes(9 * MIB)    # what the devices' reads return, in order
_OFF_COUNT = P.HEADER.field("count")[0]
_FLUSH, _REGISTER = P.CTRL_FLUSH - P.CTRL_BASE, P.CTRL_REGISTER - P.CTRL_BASE


class Rec:
    """A device that logs every access as runs: (kind, port, size, bytes), consecutive accesses of one kind, port
    and size merged, so a bulk call and the same accesses one by one log the same.  Reads return the next bytes of
    STREAM.  `bulk`: it also takes read_many/write_many (as the ATA and NE2000 models do)."""

    name = "rec"

    def __init__(self, base: int, log: list, bulk: bool):
        self.base, self.log, self.pos = base, log, 0
        if bulk:
            self.read_many, self.write_many = self._read_many, self._write_many

    def port_classes(self) -> dict[int, tuple[PortClass, PortClass]]:
        return {o: (PortClass.STRICT, PortClass.POSTED) for o in range(16)}

    def _note(self, kind: str, off: int, size: int, data: bytes) -> None:
        last = self.log[-1] if self.log else None
        if last is not None and last[:3] == (kind, self.base + off, size):
            last[3].extend(data)
        else:
            self.log.append((kind, self.base + off, size, bytearray(data)))

    def _take(self, n: int) -> bytes:
        p = self.pos % len(STREAM)
        self.pos += n
        return STREAM[p:p + n] if p + n <= len(STREAM) else (STREAM[p:] + STREAM)[:n]

    def io_read(self, off: int, size: int) -> int:
        data = self._take(size)
        self._note("r", off, size, data)
        return int.from_bytes(data, "little")

    def io_write(self, off: int, size: int, value: int) -> None:
        self._note("w", off, size, value.to_bytes(size, "little"))

    def _read_many(self, off: int, size: int, count: int) -> bytes:
        data = self._take(size * count)
        self._note("r", off, size, data)
        return data

    def _write_many(self, off: int, size: int, data: bytes) -> None:
        self._note("w", off, size, data)


class Reenter(Rec):
    """A device whose callbacks re-enter the monitor during a replay: a write to offset 0 flushes the area again,
    to offset 1 registers it again, to offset 2 asks for a shadow refresh (what an asynchronous source does)."""

    mon: PvBatch | None = None

    def io_write(self, off: int, size: int, value: int) -> None:
        super().io_write(off, size, value)
        if self.mon is not None:
            if off == 0:
                self.mon.io_write(_FLUSH, 4, 0)
            elif off == 1:
                self.mon.io_write(_REGISTER, 4, AREA >> 12)
            elif off == 2:
                self.mon.refresh()


def devices(log: list, mon_hook: bool):
    bus = PortBus()
    reenter = Reenter(REENTER, log, bulk=False)
    for dev in (Rec(BULK, log, bulk=True), Rec(PLAIN, log, bulk=False), reenter):
        bus.register(dev.base, 16, dev)
    return bus, reenter if mon_hook else None


def machine():
    log: list = []
    bus, reenter = devices(log, True)
    mem = WatchedMemory(RAM)
    mem.buf[DATA:] = random.Random(3).randbytes(RAM - DATA)
    mon = activate(bus, mem, AREA)
    reenter.mon = mon
    mem.writes.clear()
    return mem, mon, bus, log


# --- the rules, stated independently of pvbatch.py ---------------------------------------------------------------
def owner(port: int, size: int) -> int | None:
    for base in (BULK, PLAIN, REENTER):
        if base <= port and port + size <= base + 16:
            return base
    return None


def valid(entries: list[tuple], count: int) -> bool:
    """docs/protocol.md: count within capacity; every entry a known op of size 1, 2 or 4 on ports one device owns;
    an OUT's value fits its size; a string moves 1 byte .. 1 MiB inside guest RAM, an INS not into a batch area; a
    served run 1 .. 1 MiB (a served write's data inside xstaging or the engine memory); an interrupt mark only of
    a line the area takes (none here); all strings and served runs of a batch at most 8 MiB together."""
    if count > P.ENTRY_CAPACITY:
        return False
    total = 0
    for port, size, op, value, gpa in entries[:count]:
        if op == Op.IRQ_MARK or op not in set(Op) or size not in (1, 2, 4) or owner(port, size) is None:
            return False
        n = value * size
        if op == Op.OUT and value >> 8 * size:
            return False
        if op in (Op.OUTS, Op.INS):
            if not 0 < n <= MIB or gpa + n > RAM:
                return False
            if op == Op.INS and gpa < AREA + P.AREA_SIZE and AREA < gpa + n:
                return False
            total += n
        if op in (Op.SERVED_IN, Op.SERVED_OUT):
            if not 0 < n <= MIB:
                return False
            off = gpa & (1 << P.SERVED_OFF_BITS) - 1
            if op == Op.SERVED_OUT and not any(lo <= off and off + n <= lo + ln for lo, ln in (
                    (P.OFF_XSTAGING, P.XSTAGING_SIZE), (P.OFF_ENGINE_MEM, P.ENGINE_MEM_SIZE))):
                return False
            total += n
    return total <= MAX_BATCH_STRING_BYTES


def immediate(entries: list[tuple], mem: bytearray) -> tuple[list, list[int]]:
    """The twin: each entry executed at once, in order, on fresh devices; returns their log and the IN values
    (mem gets the INS values)."""
    log: list = []
    bus, _ = devices(log, False)
    ins = []
    for port, size, op, value, gpa in entries:
        dev, off = bus.find(port)
        n = value * size
        if op == Op.OUT:
            dev.io_write(off, size, value)
        elif op in (Op.IN, Op.IN_DISCARD):
            v = dev.io_read(off, size)
            if op == Op.IN:
                ins.append(v)
        elif op in (Op.OUTS, Op.SERVED_OUT):      # (a bulk call logs what the accesses one by one log)
            src = gpa if op == Op.OUTS else AREA + (gpa & (1 << P.SERVED_OFF_BITS) - 1)
            if hasattr(dev, "write_many"):
                dev.write_many(off, size, bytes(mem[src:src + n]))
            else:
                for k in range(0, n, size):
                    dev.io_write(off, size, int.from_bytes(mem[src + k:src + k + size], "little"))
        else:   # INS, SERVED_IN
            data = dev.read_many(off, size, value) if hasattr(dev, "read_many") else \
                b"".join(dev.io_read(off, size).to_bytes(size, "little") for _ in range(value))
            if op == Op.INS:
                mem[gpa:gpa + n] = data
    return log, ins


# --- hostile batches ---------------------------------------------------------------------------------------------
NEAR_2_31 = [(1 << 31) + d for d in (-1, 0, 1)]
NEAR_2_32 = [(1 << 32) + d for d in (-2, -1)]


@st.composite
def entry_st(draw) -> tuple:
    op = draw(st.sampled_from([Op.OUT, Op.IN, Op.IN_DISCARD, Op.OUTS, Op.INS]) | st.sampled_from(
        [Op.SERVED_IN, Op.SERVED_OUT, Op.IRQ_MARK, 0, 9, 255]))
    size = draw(st.sampled_from([1, 2, 4]) | st.sampled_from([0, 3, 8]))
    port = draw(st.sampled_from([BULK, PLAIN, REENTER + 3]) | st.integers(BULK, REENTER + 15)
                | st.sampled_from([BULK + 15, REENTER + 14, 0xFFFF, 0xFFFE, 0x900, P.CTRL_FLUSH]))
    big = draw(st.booleans()) and op in (Op.OUTS, Op.INS, Op.SERVED_IN)
    if big:         # 1 MiB ± 1 byte (or element): only on the device with bulk access (speed)
        port = BULK + draw(st.integers(0, 3))
        unit = size if size in (1, 2, 4) else 1
        value = draw(st.sampled_from([MIB // unit - 1, MIB // unit, MIB // unit + 1]))
    elif op in (Op.OUTS, Op.INS, Op.SERVED_IN, Op.SERVED_OUT):
        value = draw(st.integers(1, 40) | st.sampled_from([0] + NEAR_2_31 + NEAR_2_32))
    else:
        value = draw(st.integers(0, 0xFF) | st.integers(0, 0xFFFFFFFF) | st.sampled_from(NEAR_2_31 + NEAR_2_32))
    n = value * max(size, 1)
    where = draw(st.sampled_from(["data", "data", "edge", "high", "area", "zero"]))
    gpa = {"data": DATA + draw(st.integers(0, 0x1000)),
           "edge": RAM - n + draw(st.integers(-1, 1)),
           "high": (1 << 64) - draw(st.integers(1, 1 << 21)),
           "area": AREA + draw(st.sampled_from([0, P.OFF_ENTRIES, P.OFF_FIFO, P.OFF_STAGING, P.AREA_SIZE - 2,
                                                P.OFF_XSTAGING, P.OFF_ENGINE_MEM])),
           "zero": 0}[where]
    if op in (Op.SERVED_IN, Op.SERVED_OUT):
        gpa = draw(st.sampled_from([P.OFF_XSTAGING, P.OFF_ENGINE_MEM, P.OFF_XSTAGING + P.XSTAGING_SIZE - 4, 0,
                                    P.AREA_SIZE]))
    return port, size, int(op), value & 0xFFFFFFFF, max(0, min(gpa, (1 << 64) - 1))


def put(mem: WatchedMemory, entries: list[tuple], count: int | None = None) -> None:
    for i, e in enumerate(entries):
        mem.buf[AREA + P.OFF_ENTRIES + i * P.ENTRY.size:AREA + P.OFF_ENTRIES + (i + 1) * P.ENTRY.size] = \
            P.ENTRY.fmt.pack(*e)
    mem.buf[AREA + _OFF_COUNT:AREA + _OFF_COUNT + 4] = struct.pack("<I", len(entries) if count is None else count)


def outside_area(buf) -> bytes:
    return bytes(buf[:AREA]) + bytes(buf[AREA + P.AREA_SIZE:])


def check(entries: list[tuple], count: int | None = None) -> bool:
    """Flush the batch and hold the monitor to the oracle; True when it was accepted."""
    mem, mon, bus, log = machine()
    put(mem, entries, count)
    before = bytearray(mem.buf)
    bus.write(P.CTRL_FLUSH, 4, 0)
    status = P.decode_header(mem.read(AREA, P.HEADER.size))["status"]
    n = len(entries) if count is None else count
    assert (status == Status.OK) == valid(entries, n), (status, mon.stats.errors[-1:])
    if status != Status.OK:
        assert log == [], "a rejected batch reached a device"
        assert outside_area(mem.buf) == outside_area(before), "a rejected batch wrote guest memory"
        return False
    want_log, want_ins = immediate(entries, before)
    assert log == want_log, "the devices saw other accesses than the entries say"
    got_ins = [struct.unpack_from("<I", mem.buf, AREA + P.OFF_ENTRIES + i * P.ENTRY.size + 4)[0]
               for i, e in enumerate(entries) if e[2] == Op.IN]
    assert got_ins == want_ins, "an IN's value is not the one the device returned"
    assert outside_area(mem.buf) == outside_area(before), "the monitor wrote outside the area what no INS read"
    assert all(AREA <= g and g + k <= AREA + P.AREA_SIZE or any(
        e[2] == Op.INS and e[4] <= g and g + k <= e[4] + e[3] * e[1] for e in entries) for g, k in mem.writes)
    return True


@SETTINGS
@given(st.lists(entry_st(), max_size=12))
@example([(BULK, 1, int(Op.OUTS), MIB, DATA), (BULK + 2, 2, int(Op.INS), MIB // 2, RAM - MIB)])
@example([(BULK, 1, int(Op.OUTS), MIB + 1, DATA)])
@example([(PLAIN, 4, int(Op.INS), 4, AREA + P.OFF_ENTRIES)])
@example([(REENTER, 1, int(Op.OUT), 7, 0), (PLAIN, 2, int(Op.IN), 0, 0), (REENTER + 1, 1, int(Op.OUT), 1, 0),
          (REENTER + 2, 1, int(Op.OUT), 2, 0), (PLAIN + 1, 1, int(Op.IN), 0, 0)])
def test_accepted_batches_do_exactly_what_their_entries_say(entries):
    check(entries)


def test_hostile_counts_addresses_and_lengths():
    out1, in2 = int(Op.OUTS), int(Op.INS)
    assert not check([(PLAIN, 1, int(Op.OUT), 1, 0)], count=(1 << 32) - 1)       # header count near 2^32
    assert not check([(PLAIN, 1, int(Op.OUT), 1, 0)], count=1 << 31)
    assert not check([(PLAIN, 1, int(Op.OUT), 1, 0)], count=P.ENTRY_CAPACITY + 1)
    assert check([(PLAIN, 4, int(Op.OUT), (1 << 32) - 1, 0), (PLAIN, 4, int(Op.IN), (1 << 31) + 1, 0)])
    assert not check([(PLAIN, 2, int(Op.OUT), 1 << 16, 0)])                        # wider than its size
    assert not check([(BULK, 4, out1, (1 << 30), DATA)])                           # 4 GiB: count * size > 2^32
    assert not check([(BULK, 2, in2, (1 << 31), DATA)])
    assert not check([(BULK, 1, out1, 0, DATA)])                                  # 0 bytes
    assert check([(BULK, 1, out1, MIB - 1, DATA)]) and check([(BULK, 1, in2, MIB, RAM - MIB)])
    assert not check([(BULK, 1, in2, MIB + 1, DATA)])
    assert check([(PLAIN, 2, in2, 8, RAM - 16)])                                  # ends at the edge of RAM
    assert not check([(PLAIN, 2, in2, 8, RAM - 15)])
    assert not check([(PLAIN, 1, out1, 1, RAM)])
    for gpa in ((1 << 64) - 1, (1 << 64) - 16, 1 << 63):                           # near 2^64: no wrap-around
        assert not check([(PLAIN, 1, in2, 16, gpa)]) and not check([(PLAIN, 1, out1, 16, gpa)])
    assert not check([(PLAIN, 1, in2, 4, AREA + P.AREA_SIZE - 2)])                # an INS into the area
    assert not check([(PLAIN, 4, in2, 1, AREA)])
    assert check([(PLAIN, 4, in2, 1, AREA + P.AREA_SIZE)])                        # just after it
    assert check([(PLAIN, 1, out1, 16, AREA + P.OFF_STAGING)])                    # an OUTS from it (staging)
    assert not check([(0xFFFF, 2, int(Op.IN), 0, 0)]) and not check([(BULK + 15, 2, int(Op.OUT), 0, 0)])


def test_a_device_that_reenters_the_monitor_during_a_replay():
    """A nested flush or registration from inside a replay is refused (counted); the batch runs to its end as if
    the device had not called; a refresh during the replay is allowed (the pacer's case)."""
    mem, mon, bus, log = machine()
    entries = [(REENTER, 1, int(Op.OUT), 7, 0), (REENTER + 1, 1, int(Op.OUT), 1, 0),
               (REENTER + 2, 1, int(Op.OUT), 2, 0), (PLAIN, 1, int(Op.IN), 0, 0)]
    put(mem, entries)
    bus.write(P.CTRL_FLUSH, 4, 0)
    assert P.decode_header(mem.read(AREA, P.HEADER.size))["status"] == Status.OK
    assert mon.stats.rejected == 2 and all("during a replay" in e for e in mon.stats.errors[-2:]), mon.stats.errors
    assert log == immediate(entries, bytearray(RAM))[0]
    assert mon.stats.flushes == 1 and mon.stats.registrations == 1


def test_an_8_mib_batch_is_replayed_within_its_bound():
    """The largest batch (8 MiB of strings, MAX_BATCH_STRING_BYTES): through a device's bulk access it is a few
    calls; one more element is rejected.  docs/protocol.md gives the bound for a device without bulk access."""
    assert MAX_BATCH_STRING_BYTES == 8 * MIB
    entries = [(BULK, 4, int(Op.OUTS) if k % 2 else int(Op.INS), MIB // 4, DATA + (k % 2) * MIB) for k in range(8)]
    t0 = time.monotonic()
    assert check(entries)
    assert time.monotonic() - t0 < 20          # oracle included; the replay alone: docs/protocol.md
    assert not check(entries + [(BULK, 1, int(Op.OUTS), 1, DATA)])
    assert not check(entries + [(BULK, 1, int(Op.SERVED_IN), 1, P.OFF_XSTAGING)])   # served runs count too


class Counter:
    """A device without bulk access that only counts: the monitor's own cost per string element."""

    name = "counter"
    calls = 0

    def port_classes(self) -> dict[int, tuple[PortClass, PortClass]]:
        return {0: (PortClass.STRICT, PortClass.POSTED)}

    def io_read(self, off: int, size: int) -> int:
        self.calls += 1
        return 0x5A

    def io_write(self, off: int, size: int, value: int) -> None:
        self.calls += 1


def test_an_8_mib_batch_without_bulk_access_stays_within_its_bound():
    """The worst case: 8 MiB of byte strings (4 MiB out, 4 MiB in) on a device without read_many/write_many is
    8 Mi device calls in one flush.  docs/protocol.md gives the time measured here (about 1 s); the bound checked is
    loose (a loaded shared machine), but an accidental quadratic path or a per-element bus lookup would cross it."""
    mem = StrictMemory(16 * MIB)
    bus = PortBus()
    dev = Counter()
    bus.register(0x600, 1, dev)
    mon = activate(bus, mem, AREA)
    entries = [(0x600, 1, int(Op.OUTS if k < 4 else Op.INS), MIB, (k + 1) * MIB) for k in range(8)]
    for i, e in enumerate(entries):
        mem.write(AREA + P.OFF_ENTRIES + i * P.ENTRY.size, P.ENTRY.fmt.pack(*e))
    mem.write(AREA + _OFF_COUNT, struct.pack("<I", len(entries)))
    t0 = time.monotonic()
    bus.write(P.CTRL_FLUSH, 4, 0)
    elapsed = time.monotonic() - t0
    assert P.decode_header(mem.read(AREA, P.HEADER.size))["status"] == Status.OK, mon.stats.errors
    assert dev.calls == 8 * MIB and mem.read(8 * MIB - 16, 16) == b"\x5a" * 16
    assert elapsed < 15, f"8 MiB batch: {elapsed:.1f} s"
