"""NE2000 model, register level (DP8390D register descriptions): pages, CR, ISR/IMR, remote DMA, TX, RX ring."""

from __future__ import annotations

import pytest

from pvgen.devices import ne2000 as N
from pvgen.devices.bus import PortBus
from pvgen.devices.netpeer import PeerBackend
from pvgen.protocol import PortClass

BASE = 0xC000
MAC = bytes.fromhex("525400abcdef")


class Irq:
    def __init__(self) -> None:
        self.level = False

    def __call__(self, level: bool) -> None:
        self.level = level


def make():
    irq, peer = Irq(), PeerBackend()
    nic = N.Ne2000(mac=MAC, backend=peer, irq=irq)
    peer.attach(nic.receive)
    bus = PortBus()
    bus.register(BASE, N.NE_IO_EXTENT, nic)
    return bus, nic, peer, irq


def out(bus, reg, v):
    bus.write(BASE + reg, 1, v)


def inb(bus, reg):
    return bus.read(BASE + reg, 1)


def init_8390(bus, *, start=0x40, stop=0x80, tx_pages=12, rcr=0x04, imr=0x3F, mac=MAC):
    """NS8390_init(dev, startp=1) from lib8390.c, as register writes."""
    rx_start = start + tx_pages
    out(bus, N.CR, 0x21)
    out(bus, N.DCR, 0x49)
    out(bus, N.RBCR0, 0)
    out(bus, N.RBCR1, 0)
    out(bus, N.RCR, 0x20)
    out(bus, N.TCR, 0x02)
    out(bus, N.TPSR, start)
    out(bus, N.PSTART, rx_start)
    out(bus, N.BNRY, stop - 1)
    out(bus, N.PSTOP, stop)
    out(bus, N.ISR, 0xFF)
    out(bus, N.IMR, 0)
    out(bus, N.CR, 0x61)
    for i in range(6):
        out(bus, N.PAR0 + i, mac[i])
    out(bus, N.CURR, rx_start)
    out(bus, N.CR, 0x21)
    out(bus, N.ISR, 0xFF)
    out(bus, N.IMR, imr)
    out(bus, N.CR, 0x22)
    out(bus, N.TCR, 0x00)
    out(bus, N.RCR, rcr)


def remote(bus, cmd, addr, count):
    out(bus, N.CR, 0x22)
    out(bus, N.RBCR0, count & 0xFF)
    out(bus, N.RBCR1, count >> 8)
    out(bus, N.RSAR0, addr & 0xFF)
    out(bus, N.RSAR1, addr >> 8)
    out(bus, N.CR, cmd | 0x02)


def block_input(bus, addr, count) -> bytes:
    """ne2k_pci_block_input with 32-bit insl and the 16/8-bit tail."""
    remote(bus, 0x08, addr, count)
    data = b"".join(bus.read(BASE + N.NE_DATAPORT, 4).to_bytes(4, "little") for _ in range(count >> 2))
    if count & 2:
        data += bus.read(BASE + N.NE_DATAPORT, 2).to_bytes(2, "little")
    if count & 1:
        data += bytes([bus.read(BASE + N.NE_DATAPORT, 1)])
    out(bus, N.ISR, N.ISR_RDC)
    return data


def block_output(bus, page, data: bytes) -> None:
    """ne2k_pci_block_output for the RTL8029 (no ONLY_32BIT_IO): round up to even, outsl, outw tail, poll RDC."""
    count = len(data) + (len(data) & 1)
    data = data.ljust(count + 3, b"\0")
    out(bus, N.CR, 0x22)
    out(bus, N.ISR, N.ISR_RDC)
    remote(bus, 0x10, page << 8, count)
    for i in range(count >> 2):
        bus.write(BASE + N.NE_DATAPORT, 4, int.from_bytes(data[4 * i:4 * i + 4], "little"))
    if count & 2:
        bus.write(BASE + N.NE_DATAPORT, 2, int.from_bytes(data[count & ~3:(count & ~3) + 2], "little"))
    assert inb(bus, N.ISR) & N.ISR_RDC
    out(bus, N.ISR, N.ISR_RDC)


def test_ne2k_pci_probe_sequence():
    bus, nic, peer, irq = make()
    reg0 = inb(bus, N.CR)
    assert reg0 == 0x21 != 0xFF                               # stopped, remote DMA aborted
    out(bus, N.CR, 0x20 | 0x40 | 0x01)                        # page 1
    regd = inb(bus, 0x0D)
    out(bus, 0x0D, 0xFF)                                      # MAR5 on page 1
    out(bus, N.CR, 0x20)
    inb(bus, N.CNTR0)
    assert inb(bus, N.CNTR0) == 0                             # counters clear on read: it is an 8390
    out(bus, N.NE_RESET, inb(bus, N.NE_RESET))
    assert inb(bus, N.ISR) & N.ISR_RST
    out(bus, N.ISR, 0xFF)
    assert inb(bus, N.ISR) & N.ISR_RST                        # RST is status: writing 1 does not clear it
    for v, reg in [(0x21, N.CR), (0x49, N.DCR), (0, N.RBCR0), (0, N.RBCR1), (0, N.IMR), (0xFF, N.ISR),
                   (0x20, N.RCR), (0x02, N.TCR), (32, N.RBCR0), (0, N.RBCR1), (0, N.RSAR0), (0, N.RSAR1),
                   (0x0A, N.CR)]:
        out(bus, reg, v)
    prom = bytes(inb(bus, N.NE_DATAPORT) for _ in range(32))  # byte reads in word mode: one word each
    assert prom[:6] == MAC and prom[14:16] == b"\x57\x57"
    assert inb(bus, N.ISR) & N.ISR_RDC
    assert regd == 0


def test_prom_byte_mode_gives_doubled_bytes():
    bus, nic, peer, irq = make()
    out(bus, N.DCR, 0x48)
    remote(bus, 0x08, 0, 12)
    assert bytes(inb(bus, N.NE_DATAPORT) for _ in range(12)) == bytes(b for x in MAC for b in (x, x))


def test_page_dispatch_read_and_write_differ():
    bus, nic, peer, irq = make()
    init_8390(bus)
    out(bus, N.CR, 0x62)
    assert bytes(inb(bus, N.PAR0 + i) for i in range(6)) == MAC
    assert inb(bus, N.CURR) == 0x4C
    out(bus, N.CR, 0xA2)                                      # page 2 reads back the page-0 write registers
    assert (inb(bus, N.PSTART), inb(bus, N.PSTOP), inb(bus, N.TPSR)) == (0x4C, 0x80, 0x40)
    assert inb(bus, N.IMR) & 0x3F == 0x3F and inb(bus, N.DCR) & 0x7F == 0x49
    out(bus, N.CR, 0x22)
    assert (inb(bus, N.RTL8029_ID0), inb(bus, N.RTL8029_ID1)) == (0x50, 0x43)
    assert inb(bus, N.CR) == 0x22


def test_transmit_sets_ptx_and_sends_frame():
    bus, nic, peer, irq = make()
    init_8390(bus)
    frame = bytes(range(60)) + b"\x01"
    block_output(bus, 0x40, frame)
    out(bus, N.TBCR0, len(frame))
    out(bus, N.TBCR1, 0)
    out(bus, N.TPSR, 0x40)
    out(bus, N.CR, 0x26)                                      # NODMA + TXP + STA
    assert peer.sent == [frame]
    assert inb(bus, N.ISR) & N.ISR_PTX and inb(bus, N.TSR) & N.TSR_PTX
    assert not inb(bus, N.CR) & N.CR_TXP and irq.level
    out(bus, N.ISR, N.ISR_PTX)
    assert not irq.level


def receive_one(bus, rx_start=0x4C, stop=0x80):
    """ei_receive for one frame: CURR via page 1, BNRY, header, block_input, BNRY update."""
    out(bus, N.CR, 0x62)
    curr = inb(bus, N.CURR)
    out(bus, N.CR, 0x22)
    this = inb(bus, N.BNRY) + 1
    if this >= stop:
        this = rx_start
    if this == curr:
        return None
    hdr = block_input(bus, this << 8, 4)
    status, nxt, count = hdr[0], hdr[1], hdr[2] | hdr[3] << 8
    pkt_len = count - 4
    expect, ring = this + 1 + ((pkt_len + 4) >> 8), stop - rx_start
    assert nxt in (expect, expect + 1, expect - ring, expect + 1 - ring)   # lib8390 ei_receive's check
    data = block_input(bus, (this << 8) + 4, count - 4)
    out(bus, N.BNRY, nxt - 1)
    return status, data


def test_receive_header_isr_and_irq_per_imr():
    bus, nic, peer, irq = make()
    init_8390(bus, imr=0)
    frame = MAC + bytes.fromhex("020000000001") + b"\x08\x00" + bytes(range(80))
    assert peer.inject(frame)
    assert inb(bus, N.ISR) & N.ISR_PRX and not irq.level     # masked
    out(bus, N.IMR, N.ISR_PRX)
    assert irq.level
    status, data = receive_one(bus)
    assert status & N.RSR_PRX and data == frame
    out(bus, N.ISR, N.ISR_PRX | N.ISR_RXE)
    assert not irq.level and receive_one(bus) is None


def test_short_frames_padded_and_filters():
    bus, nic, peer, irq = make()
    init_8390(bus, rcr=0x04)
    assert not nic.receive(bytes.fromhex("020000000099") + bytes(20))      # other unicast: filtered
    assert nic.receive(b"\xff" * 6 + bytes(8))                            # broadcast with AB
    status, data = receive_one(bus)
    assert len(data) == 60 and status & N.RSR_PHY
    mc = bytes.fromhex("01005e000001")
    assert not nic.receive(mc + bytes(60))                                # AM off
    out(bus, N.RCR, 0x0C)
    assert not nic.receive(mc + bytes(60))                                # hash bit clear
    idx = N.multicast_hash_index(mc)
    out(bus, N.CR, 0x62)
    out(bus, N.MAR0 + (idx >> 3), 1 << (idx & 7))
    out(bus, N.CR, 0x22)
    assert nic.receive(mc + bytes(60))
    out(bus, N.RCR, 0x14)                                                 # promiscuous
    assert nic.receive(bytes.fromhex("020000000099") + bytes(60))


def test_multicast_hash_matches_bitwise_crc():
    def crc_be(data: bytes) -> int:   # ether_crc as in Linux crc32_be-style loop (QEMU net_crc32)
        crc = 0xFFFFFFFF
        for b in data:
            for _ in range(8):
                carry = (crc >> 31 & 1) ^ (b & 1)
                crc = (crc << 1) & 0xFFFFFFFF
                b >>= 1
                if carry:
                    crc = (crc ^ 0x04C11DB6) | carry
        return crc
    for mac in (bytes.fromhex("01005e000001"), bytes.fromhex("333300000001"), bytes(range(1, 7))):
        assert N.multicast_hash_index(mac) == crc_be(mac) >> 26


def test_ring_wraps_around_pstop():
    bus, nic, peer, irq = make()
    init_8390(bus)
    frames = [MAC + bytes([i]) * 5 + b"\x08\x00" + bytes([i]) * 1000 for i in range(20)]
    got = []
    for f in frames:
        assert nic.receive(f)
        got.append(receive_one(bus)[1])
    assert got == frames
    assert nic.metrics["rx_frames"] == 20
    assert nic.curr != 0x4C and 0x4C <= nic.curr < 0x80     # wrapped: 20 * 4 pages > 52-page ring


def test_overflow_sets_ovw_and_counts_missed():
    bus, nic, peer, irq = make()
    init_8390(bus)
    big = MAC + bytes(1508)
    n = 0
    while nic.receive(big):
        n += 1
    assert n == (0x80 - 0x4C - 1) // 6                       # (4+1508+4 CRC)/256 -> 6 pages; one kept free
    assert inb(bus, N.ISR) & N.ISR_OVW and nic.metrics["rx_overflow"] == 1
    assert inb(bus, N.CNTR2) == 1 and inb(bus, N.CNTR2) == 0
    for _ in range(n):                                        # draining BNRY makes room again
        assert receive_one(bus)[1] == big
    assert nic.receive(big)


def test_remote_dma_count_zero_and_past_buffer():
    bus, nic, peer, irq = make()
    init_8390(bus)
    out(bus, N.ISR, 0xFF)
    remote(bus, 0x08, 0x4000, 0)                             # count 0: RDC at once, counted
    assert inb(bus, N.ISR) & N.ISR_RDC and nic.metrics["dma_zero_count"] == 1
    remote(bus, 0x10, 0x7FFE, 4)                             # remote DMA wraps from PSTOP to PSTART
    bus.write(BASE + N.NE_DATAPORT, 4, 0x11223344)
    assert nic.mem[0x7FFE:0x8000] == b"\x44\x33" and nic.mem[0x4C00:0x4C02] == b"\x22\x11"
    remote(bus, 0x10, 0x8000, 2)                             # past the 16 KiB buffer: ignored, counted
    bus.write(BASE + N.NE_DATAPORT, 2, 0x5566)
    assert nic.metrics["dma_out_of_range"] == 2 and len(nic.mem) == N.MEM_END
    remote(bus, 0x08, 0xFFFE, 2)
    assert bus.read(BASE + N.NE_DATAPORT, 2) == 0xFFFF


@pytest.mark.parametrize("reg,size", [(N.ISR, 2), (N.CR, 4), (0x11, 1), (0x1E, 2)])
def test_wrong_sizes_and_offsets_counted(reg, size):
    bus, nic, peer, irq = make()
    before = nic.cr_value(), nic.isr
    assert bus.read(BASE + reg, size) == (1 << (8 * size)) - 1
    bus.write(BASE + reg, size, 0)
    assert (nic.cr_value(), nic.isr) == before
    assert nic.metrics["bad_size"] + nic.metrics["bad_offset"] == 2


def test_data_port_without_dma_counted():
    bus, nic, peer, irq = make()
    assert bus.read(BASE + N.NE_DATAPORT, 2) == 0xFFFF
    bus.write(BASE + N.NE_DATAPORT, 2, 5)
    assert nic.metrics["data_read_without_dma"] == 1 and nic.metrics["data_write_without_dma"] == 1


def test_port_classes_shadow_and_fifo():
    bus, nic, peer, irq = make()
    cls = bus.class_map()
    assert cls[BASE + N.CR] == (PortClass.SHADOW, PortClass.DOORBELL)
    assert cls[BASE + N.ISR] == (PortClass.SHADOW, PortClass.POSTED)
    assert cls[BASE + N.NE_DATAPORT] == (PortClass.FIFO, PortClass.POSTED)
    assert cls[BASE + N.RBCR0][1] == PortClass.POSTED and cls[BASE + N.IMR][1] == PortClass.POSTED
    assert BASE + N.NE_RESET not in cls                      # strict: a read resets the card
    init_8390(bus)
    nic.receive(MAC + bytes(100))
    assert nic.shadow_read(N.ISR) == inb(bus, N.ISR) and nic.shadow_read(N.ISR, 4) is None
    remote(bus, 0x08, 0x4C00, 10)
    assert len(nic.fifo_read(N.NE_DATAPORT, 4, 100)) == 2    # 8 of 10 bytes; the tail is read another way
    # the last word would complete the remote DMA (ISR.RDC): the guest reads it itself
    assert nic.fifo_read(N.NE_DATAPORT, 2, 100) == [] and not nic.isr & N.ISR_RDC
    assert bus.read(BASE + N.NE_DATAPORT, 2) == nic.mem[0x4C08] | nic.mem[0x4C09] << 8 and nic.isr & N.ISR_RDC


@pytest.mark.parametrize("length", [60, 251, 252, 253, 508, 1020, 1514])
def test_next_page_pointer_passes_lib8390_check_at_page_edges(length):
    bus, nic, peer, irq = make()
    init_8390(bus)
    frame = MAC + bytes([7]) * (length - 6)
    assert nic.receive(frame) and nic.receive(frame)
    assert receive_one(bus)[1] == frame and receive_one(bus)[1] == frame


def test_every_register_read_is_shadowed_and_cr_write_class_is_configurable():
    nic = N.Ne2000()
    cls = nic.port_classes()
    assert all(cls[off][0] == PortClass.SHADOW for off in range(0x10))
    assert [off for off in range(0x10) if nic.read_side_effects(off)] == [N.CNTR0, N.CNTR1, N.CNTR2]
    assert cls[N.CR][1] == PortClass.DOORBELL
    assert N.Ne2000(cr_write_class=PortClass.POSTED).port_classes()[N.CR] == (PortClass.SHADOW, PortClass.POSTED)
    assert N.Ne2000(cr_write_class=PortClass.DOORBELL_IF).port_classes()[N.CR][1] == PortClass.DOORBELL_IF
    assert nic.doorbell_masks() == {N.CR: N.CR_TXP}
    nic.io_write(N.CR, 1, 0x62)                          # the shadow follows the page
    nic.io_write(N.CURR, 1, 0x55)
    assert nic.shadow_read(N.CURR) == 0x55
    nic.io_write(N.CR, 1, 0x22)
    assert nic.shadow_read(N.ISR) == nic.isr


def test_page0_register_reads_match_the_datasheet_table():
    nic = N.Ne2000()
    nic.clda, nic.crda, nic.bnry, nic.tsr, nic.ncr = 0x4D2E, 0x4A07, 0x47, 1, 3
    nic.isr, nic.rsr, nic.cntr = 0x85, 0x21, [4, 5, 6]
    want = {N.CLDA0: 0x2E, N.CLDA1: 0x4D, N.BNRY: 0x47, N.TSR: 1, N.NCR: 3, N.FIFO: 0, N.ISR: 0x85, N.CRDA0: 0x07,
            N.CRDA1: 0x4A, N.RTL8029_ID0: 0x50, N.RTL8029_ID1: 0x43, N.RSR: 0x21, N.CNTR0: 4, N.CNTR1: 5, N.CNTR2: 6}
    assert {off: nic.shadow_read(off) for off in want} == want


@pytest.mark.parametrize("size,count", [(1, 32), (2, 32), (4, 64), (4, 66), (2, 7)])
def test_fifo_read_never_completes_the_remote_dma(size, count):
    """fifo_read hands only reads that leave the remote DMA running: the one that sets ISR.RDC (and moves CRDA to
    the end) is the guest's own, so no prefetch is visible in ISR or CRDA before the guest reads the data; the
    values are those plain reads give."""
    seqs = []
    for prefetch in (False, True):
        bus, nic, _, _ = make()
        init_8390(bus)
        nic.mem[0x4000:0x4000 + count] = bytes(range(1, count + 1))
        remote(bus, 0x08, 0x4000, count)
        vals = [bus.read(BASE + N.NE_DATAPORT, size)]
        if prefetch:
            got = nic.fifo_read(N.NE_DATAPORT, size, 1024)
            assert got and not inb(bus, N.ISR) & N.ISR_RDC, "a prefetch completed the remote DMA"
            vals += got
        while not inb(bus, N.ISR) & N.ISR_RDC:
            vals.append(bus.read(BASE + N.NE_DATAPORT, size))
        seqs.append(vals)
    assert seqs[0] == seqs[1]
