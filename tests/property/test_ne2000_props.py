"""NE2000 invariants under random guests and random traffic: no exception, IRQ = ISR & IMR, shadows exact and
side-effect free on every page, bulk data-port paths equal single accesses, and the receive ring delivers every
accepted frame intact and in order."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from pvgen.devices import ne2000 as N

PROFILE = os.environ.get("PVGEN_HYPOTHESIS_PROFILE", "default")
EXAMPLES = {"long": 2000}.get(PROFILE, 80)
MAC = bytes.fromhex("525400abcdef")

access = st.tuples(st.sampled_from(["r", "w", "rx"]), st.integers(0, 0x1F), st.sampled_from([1, 1, 1, 2, 4]),
                   st.integers(0, 0xFFFF_FFFF), st.binary(min_size=0, max_size=200))


class Line:
    level = False

    def __call__(self, level: bool) -> None:
        self.level = level


def started_nic(line=None) -> N.Ne2000:
    nic = N.Ne2000(mac=MAC, irq=line or (lambda level: None))
    for off, v in [(N.CR, 0x21), (N.DCR, 0x49), (N.PSTART, 0x4C), (N.PSTOP, 0x80), (N.BNRY, 0x7F),
                   (N.TPSR, 0x40), (N.RCR, 0x1C), (N.TCR, 0), (N.ISR, 0xFF), (N.IMR, 0x3F), (N.CR, 0x61),
                   (N.CURR, 0x4C), (N.CR, 0x22)]:
        nic.io_write(off, 1, v)
    return nic


@settings(max_examples=EXAMPLES, deadline=None)
@given(ops=st.lists(access, max_size=60), start=st.booleans())
def test_random_guest_never_raises_and_irq_is_isr_and_imr(ops, start):
    line = Line()
    nic = started_nic(line) if start else N.Ne2000(mac=MAC, irq=line)
    for kind, off, size, value, frame in ops:
        if kind == "r":
            got = nic.io_read(off, size)
            assert 0 <= got < 1 << (8 * size)
        elif kind == "w":
            nic.io_write(off, size, value & ((1 << (8 * size)) - 1))
        else:
            nic.receive(MAC + frame)
        assert line.level == bool(nic.isr & nic.imr & 0x7F)
        for s_off in range(0x10):   # every register of the current page: exact, and side-effect free (page 2's
            shadow = nic.shadow_read(s_off)   # offset 3, which follows CRDA, has none: its reads exit)
            if shadow is None:
                assert nic.page == 2 and s_off == 3
                continue
            assert shadow == nic.shadow_read(s_off) == nic.io_read(s_off, 1)


def drain(nic: N.Ne2000) -> list[bytes]:
    """The lib8390 ei_receive loop, through remote DMA with 32-bit reads."""
    got = []
    while True:
        nic.io_write(N.CR, 1, 0x62)
        curr = nic.io_read(N.CURR, 1)
        nic.io_write(N.CR, 1, 0x22)
        this = nic.io_read(N.BNRY, 1) + 1
        if this >= 0x80:
            this = 0x4C
        if this == curr:
            return got

        def dma(addr: int, count: int) -> bytes:
            for o, v in [(N.RBCR0, count & 0xFF), (N.RBCR1, count >> 8), (N.RSAR0, addr & 0xFF),
                         (N.RSAR1, addr >> 8), (N.CR, 0x0A)]:
                nic.io_write(o, 1, v)
            words = nic.fifo_read(N.NE_DATAPORT, 4, 1 << 20)
            data = b"".join(w.to_bytes(4, "little") for w in words)
            while len(data) < count:   # the tail, as ne2k_pci_block_input reads it: inw
                data += nic.io_read(N.NE_DATAPORT, 2).to_bytes(2, "little")
            nic.io_write(N.ISR, 1, N.ISR_RDC)
            return data[:count]

        hdr = dma(this << 8, 4)
        count = hdr[2] | hdr[3] << 8
        expect = this + 1 + (count >> 8)                      # lib8390 ei_receive's next-page check
        assert hdr[1] in (expect, expect + 1, expect - 52, expect + 1 - 52)
        got.append(dma((this << 8) + 4, count - 4))
        nic.io_write(N.BNRY, 1, hdr[1] - 1)   # Linux writes next-1 even when that is PSTART-1


lengths = st.one_of(st.integers(6, 1514), st.sampled_from([252, 253, 508, 764, 1020, 1276, 1514]))  # page edges
frames = st.lists(st.tuples(lengths, st.integers(0, 255), st.booleans()), min_size=1, max_size=40)


@settings(max_examples=EXAMPLES, deadline=None)
@given(traffic=frames)
def test_ring_delivers_every_accepted_frame_in_order(traffic):
    nic = started_nic()
    sent, received = [], []
    for length, fill, drain_now in traffic:
        frame = (MAC + bytes([fill]) * length)[:max(length, 6)]
        fits = nic.rx_fits(len(frame))                       # what a pacing peer asks first
        assert nic.receive(frame) == fits
        if fits:
            sent.append(frame.ljust(N.MIN_FRAME, b"\0"))
        else:
            assert nic.isr & N.ISR_OVW                       # refused only for lack of room
        if drain_now:
            received += drain(nic)
    received += drain(nic)
    assert received == sent


def _state(nic: N.Ne2000) -> dict:
    """The device's state (_handout is the prefetch's bookkeeping for the monitor, not a register)."""
    return {k: v for k, v in vars(nic).items() if k not in ("irq", "metrics", "backend", "_handout")}


@settings(max_examples=EXAMPLES, deadline=None)
@given(ops=st.lists(access, max_size=30), addr=st.integers(0, 0xFFFF), count=st.integers(0, 300),
       size=st.sampled_from([1, 2, 4]), word=st.booleans(), n=st.integers(0, 200))
def test_fifo_read_equals_that_many_io_reads(ops, addr, count, size, word, n):
    import copy

    nic = started_nic()
    for kind, o, sz, v, frame in ops:
        if kind == "rx":
            nic.receive(MAC + frame)
    nic.io_write(N.DCR, 1, 0x49 if word else 0x48)
    for o, v in [(N.RBCR0, count & 0xFF), (N.RBCR1, count >> 8), (N.RSAR0, addr & 0xFF), (N.RSAR1, addr >> 8),
                 (N.CR, 0x0A)]:
        nic.io_write(o, 1, v)
    twin = copy.deepcopy(nic)
    got = nic.fifo_read(N.NE_DATAPORT, size, n)
    assert len(got) <= n
    assert got == [twin.io_read(N.NE_DATAPORT, size) for _ in got]
    assert _state(nic) == _state(twin)
    assert twin.metrics["dma_past_count"] == 0                 # never past the remote byte count


@settings(max_examples=EXAMPLES, deadline=None)
@given(addr=st.integers(0x3FF0, 0x8010), count=st.integers(0, 300), size=st.sampled_from([1, 2, 4]),
       word=st.booleans(), data=st.binary(max_size=400), pstop=st.sampled_from([0x60, 0x80, 0x90]))
def test_write_many_equals_that_many_io_writes(addr, count, size, word, data, pstop):
    import copy

    nic = started_nic()
    nic.io_write(N.PSTOP, 1, pstop)
    nic.io_write(N.DCR, 1, 0x49 if word else 0x48)
    for o, v in [(N.RBCR0, count & 0xFF), (N.RBCR1, count >> 8), (N.RSAR0, addr & 0xFF), (N.RSAR1, addr >> 8),
                 (N.CR, 0x12)]:
        nic.io_write(o, 1, v)
    twin = copy.deepcopy(nic)
    nic.write_many(N.NE_DATAPORT, size, data)
    for i in range(0, len(data) - len(data) % size, size):
        twin.io_write(N.NE_DATAPORT, size, int.from_bytes(data[i:i + size], "little"))
    assert _state(nic) == _state(twin)
    # and reading it back in bulk gives the same as reading it one access at a time
    for dev in (nic, twin):
        for o, v in [(N.RBCR0, count & 0xFF), (N.RBCR1, count >> 8), (N.RSAR0, addr & 0xFF),
                     (N.RSAR1, addr >> 8), (N.CR, 0x0A)]:
            dev.io_write(o, 1, v)
    got = nic.fifo_read(N.NE_DATAPORT, size, 1000)
    assert got == [twin.io_read(N.NE_DATAPORT, size) for _ in got]
    assert _state(nic) == _state(twin)
