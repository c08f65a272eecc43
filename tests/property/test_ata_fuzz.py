"""ATA invariants under a random guest: no exception, INTRQ rule, exact side-effect-free shadows (none for the task
file while BSY, nor for offsets 1-5 while HOB is set), task-file writes leave Status alone, FIFO reads and bulk
writes equal single accesses and never cross a DRQ block."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from pvgen.devices import ata as A
from pvgen.devices.diskimage import MemoryDisk

PROFILE = os.environ.get("PVGEN_HYPOTHESIS_PROFILE", "default")
EXAMPLES = {"long": 2000}.get(PROFILE, 80)

COMMANDS = [A.ATA_CMD_ID_ATA, A.ATA_CMD_PIO_READ, A.ATA_CMD_PIO_WRITE, A.ATA_CMD_READ_MULTI, A.ATA_CMD_WRITE_MULTI,
            A.ATA_CMD_PIO_READ_EXT, A.ATA_CMD_SET_MULTI, A.ATA_CMD_SET_FEATURES, A.ATA_CMD_FLUSH, 0x00, 0xFF,
            A.ATA_CMD_READ_NATIVE_MAX_EXT, A.ATA_CMD_EDD, A.ATA_CMD_CHK_POWER]
# (target, offset, size, value): target 0 = command block, 1 = control block, 2 = a FIFO read burst
access = st.one_of(
    st.tuples(st.just("w"), st.just(0), st.integers(1, 6), st.just(1), st.integers(0, 0xFF)),
    st.tuples(st.just("w"), st.just(0), st.just(7), st.just(1), st.sampled_from(COMMANDS)),
    st.tuples(st.just("w"), st.just(1), st.just(0), st.just(1), st.sampled_from([0, 2, 4, 0x80, 0x06])),
    st.tuples(st.sampled_from(["r", "w"]), st.just(0), st.just(0), st.sampled_from([1, 2, 4]),
              st.integers(0, 0xFFFF_FFFF)),
    st.tuples(st.just("r"), st.sampled_from([0, 1]), st.integers(0, 7), st.sampled_from([1, 1, 2]), st.just(0)),
    st.tuples(st.just("fifo"), st.just(0), st.just(0), st.sampled_from([2, 4]), st.integers(0, 600)),
)


class Line:
    level = False

    def __call__(self, level: bool) -> None:
        self.level = level


def apply(dev: A.AtaDisk, op) -> None:
    kind, target, off, size, value = op
    port = dev.control if target else dev
    if kind == "r":
        got = port.io_read(off, size)
        assert 0 <= got < 1 << (8 * size)
    elif kind == "w":
        port.io_write(off, size, value & ((1 << (8 * size)) - 1))
    else:
        left = dev.words_left_in_block() * 2 // size
        got = dev.fifo_read(0, size, value)
        assert len(got) <= min(value, left)


@settings(max_examples=EXAMPLES, deadline=None)
@given(ops=st.lists(access, max_size=80))
def test_random_guest_never_raises_and_shadows_are_exact(ops):
    line = Line()
    dev = A.AtaDisk(MemoryDisk(64), irq=line)
    for op in ops:
        apply(dev, op)
        selected = not dev.device & A.ATA_DEV1
        assert line.level == (dev.intrq and not dev.devctl & A.ATA_NIEN and selected)
        alt = dev.control.shadow_read(0)
        assert alt == dev.control.io_read(0, 1) == dev.shadow_read(7)
        for off in range(1, 7):   # side-effect-free task file registers: shadow == read, or no shadow
            hidden = dev.status & A.ATA_BUSY or off <= 5 and dev.devctl & A.ATA_HOB
            assert dev.shadow_read(off) == dev.shadow_read(off) == (None if hidden else dev.io_read(off, 1))
        pending = dev.intrq
        assert dev.shadow_read(7) == dev.io_read(7, 1)
        assert dev.intrq == (pending and not selected)     # the status read acknowledged INTRQ
        dev.intrq = pending
        dev.update_irq()


@settings(max_examples=EXAMPLES, deadline=None)
@given(ops=st.lists(access, max_size=40), off=st.integers(1, 5), value=st.integers(0, 0xFF))
def test_taskfile_writes_never_change_status(ops, off, value):
    """Features, count and LBA writes latch until a command: Status and Alternate Status do not move."""
    dev = A.AtaDisk(MemoryDisk(64))
    for op in ops:
        apply(dev, op)
    before = (dev.shadow_read(7), dev.control.shadow_read(0), dev.intrq)
    dev.io_write(off, 1, value)
    assert (dev.shadow_read(7), dev.control.shadow_read(0), dev.intrq) == before


@settings(max_examples=EXAMPLES, deadline=None)
@given(ops=st.lists(access, max_size=40), size=st.sampled_from([2, 4]), n=st.integers(0, 3000))
def test_fifo_read_equals_that_many_io_reads(ops, size, n):
    import copy

    dev = A.AtaDisk(MemoryDisk(64))
    dev.backend.data[:] = bytes(i * 7 % 256 for i in range(64 * 512))
    for op in ops:
        apply(dev, op)
    twin = copy.deepcopy(dev)
    left = dev.words_left_in_block() * 2 // size
    before = (dev.status, dev.intrq, dev.xfer_remaining)
    got = dev.fifo_read(0, size, n)
    assert len(got) <= min(n, left)
    assert (dev.status, dev.intrq, dev.xfer_remaining) == before   # never the read that ends the DRQ block
    assert twin.pos or not got                  # nothing from a block the guest has not started
    assert not got or (dev.status & A.ATA_DRQ and dev.words_left_in_block())   # never the read ending the block
    assert got == [twin.io_read(0, size) for _ in got]
    skip = ("irq", "metrics", "backend", "control", "_handout")   # _handout: the prefetch's note for fifo_rewind
    assert {k: v for k, v in vars(dev).items() if k not in skip} == \
        {k: v for k, v in vars(twin).items() if k not in skip}
    assert twin.metrics["data_past_block"] == 0
    if got:     # giving back what the guest did not read puts the block position where it read up to
        pos = dev.pos
        dev.fifo_rewind(len(got) - 1)
        assert dev.pos == pos - (len(got) - 1) * size and dev.fifo_rewind(1) is None and dev.pos == pos - \
            (len(got) - 1) * size       # once: a second word from the monitor gives nothing back


@settings(max_examples=EXAMPLES, deadline=None)
@given(ops=st.lists(access, max_size=40), size=st.sampled_from([2, 4]), data=st.binary(max_size=3000))
def test_write_many_equals_that_many_io_writes(ops, size, data):
    import copy

    dev = A.AtaDisk(MemoryDisk(64))
    for op in ops:
        apply(dev, op)
    twin = copy.deepcopy(dev)
    dev.write_many(0, size, data)
    for i in range(0, len(data) - len(data) % size, size):
        twin.io_write(0, size, int.from_bytes(data[i:i + size], "little"))
    skip = ("irq", "metrics", "control")
    state = {k: v for k, v in vars(dev).items() if k not in skip}
    assert state == {k: v for k, v in vars(twin).items() if k not in skip}
    assert dev.metrics == twin.metrics


@settings(max_examples=EXAMPLES, deadline=None)
@given(ops=st.lists(access, max_size=20), size=st.sampled_from([1, 2, 4, 4]), n=st.integers(0, 5000),
       reading=st.one_of(st.none(), st.tuples(st.sampled_from([0, 2, 4]), st.integers(1, 8), st.integers(0, 60),
                                               st.integers(0, 600))))
def test_read_many_equals_that_many_io_reads(ops, size, n, reading):
    """An `ins` in bulk (across DRQ blocks, past the transfer's end, to device 1, byte-sized): the same bytes, state
    and metrics as n single reads."""
    import copy

    dev = A.AtaDisk(MemoryDisk(64))
    dev.backend.data[:] = bytes(i * 13 % 251 for i in range(64 * 512))
    for op in ops:
        apply(dev, op)
    if reading is not None:   # a data-in transfer in progress, `skip` words into it
        multiple, count, lba, skip = reading
        dev.control.io_write(0, 1, 0)
        if multiple:
            dev.io_write(2, 1, multiple)
            dev.io_write(7, 1, A.ATA_CMD_SET_MULTI)
        for off, v in ((2, count), (3, lba), (4, 0), (5, 0), (6, A.ATA_LBA)):
            dev.io_write(off, 1, v)
        dev.io_write(7, 1, A.ATA_CMD_READ_MULTI if multiple else A.ATA_CMD_PIO_READ)
        for _ in range(skip):
            dev.io_read(0, 2)
    twin = copy.deepcopy(dev)
    got = dev.read_many(0, size, n)
    assert got == b"".join(twin.io_read(0, size).to_bytes(size, "little") for _ in range(n))
    skip = ("irq", "metrics", "backend", "control")
    assert {k: v for k, v in vars(dev).items() if k not in skip} == \
        {k: v for k, v in vars(twin).items() if k not in skip}
    assert dev.metrics == twin.metrics
