"""libata's polled PIO request (wl_disk.c: ata_sff_tf_load, ata_sff_exec_command, ata_sff_busy_wait,
ata_sff_data_xfer) through the C runtime (host build) on the real AtaDisk: with Status's read effect neutral
(protocol v4) a 4 KiB request costs two exits (the command, the data string), the device sees the same register
accesses in the same order as immediate execution, and every byte read and written is the same."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pvgen import protocol as P
from pvgen.devices import ata as A
from pvgen.devices.bus import PortBus
from pvgen.devices.diskimage import MemoryDisk
from pvgen.devices.pvbatch import PvBatch
from pvgen.protocol import Op
from pvgen.runtime.hostlib import HostMemory, HostOp, HostRuntime, Hop, Strict
from pvgen.runtime.refmodel import RefRuntime
from tests.property.test_runtime_batch import SETTINGS, host_lib  # noqa: F401

CMD, CTL = A.ATA_PRIMARY_CMD, A.ATA_PRIMARY_CTL
STATUS, ALT, DATA = CMD + A.ATA_REG_STATUS, CTL + A.ATA_REG_ALTSTATUS, CMD + A.ATA_REG_DATA
RAM, AREA, BUFS, SECTORS = 2 << 20, 0x10000, 0x80000, 64
WORDS = 4096 // 2


class Recorder:
    """A device on the bus that records every register access it sees, except reads without side effects (the
    runtime serves those with no trace: Alternate Status) and the data port (its values are checked as bytes)."""

    def __init__(self, dev, base: int, trace: list, hide_neutral_reads: bool = False):
        self._dev, self._base, self._trace, self._hide = dev, base, trace, hide_neutral_reads

    def __getattr__(self, name):
        if name == "neutral_read_effects" and self._hide:
            raise AttributeError(name)
        return getattr(self._dev, name)

    def io_read(self, off: int, size: int) -> int:
        v = self._dev.io_read(off, size)
        if self._base + off != DATA and self._dev.read_side_effects(off):
            self._trace.append(("r", self._base + off, v))
        return v

    def io_write(self, off: int, size: int, value: int) -> None:
        if self._base + off != DATA:
            self._trace.append(("w", self._base + off, value))
        self._dev.io_write(off, size, value)


@dataclass
class Disk:
    disk: A.AtaDisk
    bus: PortBus
    trace: list


def make_disk(hide: bool = False) -> Disk:
    disk = A.AtaDisk(MemoryDisk(SECTORS))
    trace: list = []
    bus = PortBus()
    bus.register(CMD, 8, Recorder(disk, CMD, trace, hide))
    bus.register(CTL, 1, Recorder(disk.control, CTL, trace, hide))
    return Disk(disk, bus, trace)


def issue(tf: list[tuple[int, int]], command: int) -> list[tuple]:
    """ata_sff_tf_load (task file writes, then ata_wait_idle's Status read) and ata_sff_exec_command (the command,
    then ata_sff_pause's Alternate Status read)."""
    return [("out", CMD + off, v) for off, v in tf] + [("in", STATUS, 0), ("out", STATUS, command), ("in", ALT, 0)]


def program(requests: list[tuple[bool, int, int]]) -> list[tuple]:
    """nIEN, SET MULTIPLE MODE 8, then each (write, lba, extra polls) as wl_disk.c's transfer() does it."""
    ops: list[tuple] = [("out", CTL, A.ATA_NIEN | 0x08)]
    ops += issue([(2, 8), (6, 0xA0)], A.ATA_CMD_SET_MULTI) + [("in", STATUS, 0)]
    for i, (write, lba, polls) in enumerate(requests):
        tf = [(1, 0), (2, 8), (3, lba & 0xFF), (4, lba >> 8 & 0xFF), (5, lba >> 16 & 0xFF), (6, A.ATA_LBA)]
        ops += issue(tf, A.ATA_CMD_WRITE_MULTI if write else A.ATA_CMD_READ_MULTI)
        ops += [("in", STATUS, 0)] * (1 + polls)                       # ata_sff_busy_wait: DRQ
        ops += [("outs" if write else "ins", DATA, i)]
        ops += [("in", STATUS, 0)]                                      # ata_sff_busy_wait: done
    return ops


@functools.lru_cache(maxsize=None)
def data(i: int) -> bytes:
    return bytes((i * 37 + k * 11 + (k >> 8)) & 0xFF for k in range(4096))


def immediate(ops) -> tuple[list, list, bytes]:
    d = make_disk()
    reads, results = [], []
    for kind, port, v in ops:
        if kind == "out":
            d.bus.write(port, 1, v)
        elif kind == "in":
            results.append(d.bus.read(port, 1))
        elif kind == "outs":
            block = data(v)
            for k in range(0, 4096, 2):
                d.bus.write(port, 2, int.from_bytes(block[k:k + 2], "little"))
        else:
            reads.append(b"".join(d.bus.read(port, 2).to_bytes(2, "little") for _ in range(WORDS)))
    return d.trace, results + reads, bytes(d.disk.backend.data)


def batched_c(lib: str, ops, hide: bool = False, models: bool = True) -> tuple[list, list, bytes, int]:
    d = make_disk(hide)
    mem = HostMemory(RAM)
    mon = PvBatch(d.bus, mem, models=models)
    d.bus.register(P.CTRL_BASE, P.CTRL_LEN, mon)
    rt = HostRuntime(lib, mem, lambda port, value: d.bus.write(port, 4, value),
                     Strict(lambda p, s: d.bus.read(p, s), lambda p, s, v: d.bus.write(p, s, v)))
    rt.lib.pvio_fini()
    assert rt.init(AREA) == 0
    hops = []
    for kind, port, v in ops:
        if kind in ("outs", "ins"):
            gpa = BUFS + v * 4096
            if kind == "outs":
                mem.write(gpa, data(v))
            hops.append(HostOp(Hop.OUTS if kind == "outs" else Hop.INS, port, 2, WORDS, mem.base + gpa))
        else:
            hops.append(HostOp(Hop.OUT if kind == "out" else Hop.IN, port, 1, v, 0))
    res = rt.run(hops)
    rt.lib.pvio_flush()
    rt.lib.pvio_fini()
    results = [r for r, (kind, _, _) in zip(res, ops) if kind == "in"]
    results += [mem.read(BUFS + v * 4096, 4096) for kind, _, v in ops if kind == "ins"]
    ms = mon.areas[0].models
    assert ms is None or ms.stats.mismatches == 0, ms.stats.errors
    assert mon.stats.rejected == 0, mon.stats.errors
    return d.trace, results, bytes(d.disk.backend.data), rt.exits


def batched_ref(ops) -> int:
    d = make_disk()
    mem = HostMemory(RAM)
    mon = PvBatch.attach(d.bus, mem)
    ref = RefRuntime(mem, AREA, mon, lambda p, s: d.bus.read(p, s), lambda p, s, v: d.bus.write(p, s, v))
    assert ref.init() == 0
    for kind, port, v in ops:
        if kind == "out":
            ref.out(port, 1, v)
        elif kind == "in":
            ref.inp(port, 1)
        else:
            if kind == "outs":
                mem.write(BUFS + v * 4096, data(v))
            ref.string(Op.OUTS if kind == "outs" else Op.INS, port, 2, BUFS + v * 4096, WORDS)
    ref.flush()
    return ref.exits


FEW = settings(SETTINGS, max_examples=SETTINGS.max_examples // 3)   # 4 KiB strings: a third of the examples
requests_st = st.lists(st.tuples(st.booleans(), st.one_of(st.integers(0, SECTORS - 8), st.sampled_from([0, 8, 16, 24])),
                                 st.integers(0, 2)), min_size=1, max_size=8)


SEQUENTIAL = [(False, 0, 0), (False, 8, 0), (False, 16, 0), (False, 24, 0), (False, 32, 0)]


def test_a_sequential_stream_reads_ahead_in_the_guest():
    """The model the exit count is held to is not vacuous: the first read starts the stream, the second is
    sequential and publishes the next four blocks, which the guest reads itself, in order."""
    assert A.AtaDisk.readahead_depth == 4
    assert expected_read_exits(SEQUENTIAL) == 2
    assert expected_read_exits(SEQUENTIAL + [(False, 40, 0), (False, 48, 0)]) == 3      # the sixth block exits
    assert expected_read_exits([(False, 0, 0), (False, 40, 0), (False, 8, 0)]) == 3     # random: no read-ahead
    assert expected_read_exits([(False, 0, 0), (False, 8, 0), (False, 24, 0)]) == 3     # out of order: exits


@FEW
@given(requests_st)
@example(SEQUENTIAL)
def test_libata_requests_with_in_guest_commands_and_windows_keep_every_access(host_lib, requests):
    ops = program(requests)
    want = immediate(ops)
    trace, results, image, exits = batched_c(host_lib, ops)
    assert (trace, results, image) == want
    assert trace.count(("r", STATUS, A.ATA_DRDY | A.ATA_DSC | A.ATA_DRQ)) == sum(1 + p for _, _, p in requests)
    # registration, nIEN (Device Control is a doorbell), SET MULTIPLE, then (protocol v5): a write is accepted in
    # the guest (its block staged, no exit); a read exits for its command (the block then moves through the
    # transfer window) unless it is the read-ahead block a previous read's flush published, and no accepted write
    # came between (a hit is not itself followed by a published read-ahead: that needs a flush); the final flush
    assert exits == 1 + 1 + 1 + expected_read_exits(requests) + 1


def expected_read_exits(requests, depth: int = A.AtaDisk.readahead_depth) -> int:
    """Reads that exit: all but those at the published read-ahead blocks, taken in order.  The device publishes
    `depth` blocks (as many as fit) at the flush of a READ MULTIPLE continuing the previous one (a sequential
    stream: AtaDisk._seq_next; a read the guest accepted counts, since the device sees it, in order, at that
    flush); a write withdraws them."""
    exits, ahead, seq_next = 0, [], None
    for write, lba, _ in requests:
        if write:
            ahead, seq_next = [], None
        elif ahead and lba == ahead[0]:
            ahead, seq_next = ahead[1:], lba + 8
        else:
            exits += 1
            ahead = [lba + 8 * (j + 1) for j in range(depth) if lba + 8 * (j + 2) <= SECTORS] \
                if seq_next == lba else []
            seq_next = lba + 8
    return exits


@FEW
@given(requests_st)
def test_libata_requests_cost_two_exits_without_models(host_lib, requests):
    ops = program(requests)
    trace, results, image, exits = batched_c(host_lib, ops, models=False)
    assert (trace, results, image) == immediate(ops)
    # registration, nIEN (Device Control is a doorbell), SET MULTIPLE, two per request, the final flush of the
    # last Status read's IN_DISCARD
    assert exits == 1 + 1 + 1 + 2 * len(requests) + 1
    assert batched_ref(ops) + 1 == exits


@pytest.mark.parametrize("hide", [False, True])
def test_without_the_declaration_the_status_read_behind_the_task_file_exits(host_lib, hide):
    ops = program([(True, 8, 0), (False, 8, 1), (False, 16, 0)])
    trace, results, image, exits = batched_c(host_lib, ops, hide, models=False)
    assert (trace, results, image) == immediate(ops)
    # without it, ata_wait_idle's Status read exits in each request (it is behind the previous request's last
    # Status read's IN_DISCARD), and so does the second DRQ poll of the second request
    assert exits == 1 + 1 + 1 + 2 * 3 + 1 + (3 + 1 if hide else 0)
