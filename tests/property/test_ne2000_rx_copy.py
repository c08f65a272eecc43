"""The NE2000's bulk receive paths: a frame stored into the ring as slices (one per wrap) is byte for byte what
storing it one byte at a time from CURR, wrapping from PSTOP to PSTART, stores; read_many is that many io_reads."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from pvgen.devices import ne2000 as N

PROFILE = os.environ.get("PVGEN_HYPOTHESIS_PROFILE", "default")
EXAMPLES = {"long": 2000}.get(PROFILE, 150)
MAC = bytes.fromhex("525400abcdef")


def byte_by_byte(nic: N.Ne2000, data: bytes) -> tuple[bytearray, int]:
    """The reference: the ring memory and the address after the last byte."""
    mem, addr = bytearray(nic.mem), nic.curr << 8
    for b in data:
        mem[addr] = b
        addr += 1
        if addr == nic.pstop << 8:
            addr = nic.pstart << 8
    return mem, addr


@settings(max_examples=EXAMPLES, deadline=None)
@given(pstart=st.integers(0x40, 0x7E), pages=st.integers(1, 0x3F), back=st.integers(0, 0x3F),
       length=st.one_of(st.integers(0, 300), st.integers(0, N.MAX_FRAME - 6)), seed=st.integers(0, 0xFF),
       fill=st.integers(0, 0xFF))
def test_a_received_frame_lands_as_byte_by_byte_storing_puts_it(pstart, pages, back, length, seed, fill):
    pstop = min(pstart + pages, 0x80)
    pos = pstop - pstart - 1 - back      # counted from the end of the ring, where a frame wraps
    payload = bytes((seed + 7 * i) & 0xFF for i in range(length))
    nic = N.Ne2000(mac=MAC)
    for off, v in [(N.CR, 0x21), (N.PSTART, pstart), (N.PSTOP, pstop), (N.RCR, N.RCR_PRO), (N.CR, 0x61)]:
        nic.io_write(off, 1, v)
    nic.curr = pstart + pos % (pstop - pstart)
    nic.bnry = nic.curr                       # an empty ring: the frame fits if it is smaller than the ring
    nic.mem[N.MEM_START:] = bytes([fill]) * (N.MEM_END - N.MEM_START)
    nic.io_write(N.CR, 1, 0x22)
    frame = MAC + payload
    padded = frame + bytes(max(0, N.MIN_FRAME - len(frame)))
    fits = nic.rx_fits(len(frame))
    curr = nic.curr
    pages_used = (N.RX_HEADER + len(padded) + N.RX_CRC + 255) >> 8
    nxt = curr + pages_used - (pstop - pstart if curr + pages_used >= pstop else 0)
    total = N.RX_HEADER + len(padded)
    header = bytes([N.RSR_PRX | (N.RSR_PHY if frame[0] & 1 else 0), nxt, total & 0xFF, total >> 8])
    want_mem, want_addr = byte_by_byte(nic, header + padded)
    assert nic.receive(frame) == fits
    if fits:
        assert nic.mem == want_mem and nic.clda == want_addr and nic.curr == nxt


@settings(max_examples=EXAMPLES, deadline=None)
@given(addr=st.integers(0x3FF0, 0x8010), rbcr=st.integers(0, 2000), size=st.sampled_from([1, 2, 4]),
       word=st.booleans(), count=st.integers(0, 600), pstop=st.sampled_from([0x60, 0x80, 0x90]),
       imr=st.sampled_from([0, N.ISR_RDC]), off=st.sampled_from([N.NE_DATAPORT, N.NE_DATAPORT, N.ISR]),
       read=st.booleans())
def test_read_many_equals_that_many_io_reads(addr, rbcr, size, word, count, pstop, imr, off, read):
    """A replayed `ins` (pvbatch uses read_many when the device has it): values, state and the interrupt line's
    calls, in order, as `count` single reads; across the ring wrap, the end of the count and without a DMA."""
    import copy

    levels: list[bool] = []
    nic = N.Ne2000(mac=MAC, irq=levels.append)
    for o, v in [(N.CR, 0x21), (N.PSTART, 0x46), (N.PSTOP, pstop), (N.DCR, 0x49 if word else 0x48),
                 (N.IMR, imr), (N.CR, 0x22)]:
        nic.io_write(o, 1, v)
    nic.mem[N.MEM_START:] = bytes((i * 13 + 5) & 0xFF for i in range(N.MEM_END - N.MEM_START))
    for o, v in [(N.RBCR0, rbcr & 0xFF), (N.RBCR1, rbcr >> 8), (N.RSAR0, addr & 0xFF), (N.RSAR1, addr >> 8),
                 (N.CR, 0x0A if read else 0x22)]:
        nic.io_write(o, 1, v)
    twin = copy.deepcopy(nic)
    twin_levels: list[bool] = []
    twin.irq = twin_levels.append
    del levels[:]
    got = nic.read_many(off, size, count)
    want = b"".join(twin.io_read(off, size).to_bytes(size, "little") for _ in range(count))
    assert got == want
    assert {k: v for k, v in vars(nic).items() if k != "irq"} == {k: v for k, v in vars(twin).items() if k != "irq"}
    assert levels == twin_levels
