"""A Python mimic of what Linux 6.1's lib8390 + ne2k-pci do at the NE2000's ports (32-bit I/O, word mode): enough of
NS8390_init, ei_start_xmit, ne2k_pci_block_output/_input, ne2k_pci_get_8390_hdr, NS8390_trigger_send, ei_interrupt,
ei_tx_intr and ei_receive for property tests of the in-guest device models (protocol v5).  The access sequences
follow the C code step by step (read from the Debian linux-source-6.1 tree; no code is copied); the `io` object
decides how an access is made (at once on the device, or through the runtime)."""

from __future__ import annotations

from dataclasses import dataclass, field

# DP8390 names as lib8390 uses them (8390.h)
CMD, EN0_STARTPG, EN0_STOPPG, EN0_BOUNDARY, EN0_TSR, EN0_TPSR, EN0_TCNTLO, EN0_TCNTHI = 0, 1, 2, 3, 4, 4, 5, 6
EN0_ISR, EN0_RSARLO, EN0_RSARHI, EN0_RCNTLO, EN0_RCNTHI, EN0_RXCR, EN0_TXCR, EN0_DCFG, EN0_IMR = 7, 8, 9, 10, 11, 12, \
    13, 14, 15
EN1_PHYS, EN1_CURPAG = 1, 7
DATAPORT = 0x10
NODMA, PAGE0, PAGE1, START, STOP, TRANS, RREAD, RWRITE = 0x20, 0x00, 0x40, 0x02, 0x01, 0x04, 0x08, 0x10
ENISR_RX, ENISR_TX, ENISR_RX_ERR, ENISR_TX_ERR, ENISR_OVER, ENISR_COUNTERS, ENISR_RDC = 1, 2, 4, 8, 0x10, 0x20, 0x40
ENISR_ALL = 0x3F
TX_START, TX_PAGES, RX_START, STOP_PG = 0x40, 12, 0x4C, 0x80


class IO:
    """How the driver reaches the card: at `base` + offset.  Subclasses implement the six accesses; the driver
    calls `irq_disable`/`irq_enable` around its masked sections (disable_irq), and the IO runs the handler it is
    given when an interrupt arrives while enabled."""

    base = 0xC000

    def outb(self, v: int, off: int) -> None: raise NotImplementedError
    def outw(self, v: int, off: int) -> None: raise NotImplementedError
    def inb(self, off: int) -> int: raise NotImplementedError
    def inw(self, off: int) -> int: raise NotImplementedError
    def inl(self, off: int) -> int: raise NotImplementedError
    def outsl(self, off: int, data: bytes) -> None: raise NotImplementedError
    def insl(self, off: int, count: int) -> bytes: raise NotImplementedError
    def irq_disable(self) -> None: raise NotImplementedError
    def irq_enable(self) -> None: raise NotImplementedError


@dataclass
class Lib8390:
    io: IO
    mac: bytes
    tx1: int = 0
    tx2: int = 0
    txing: int = 0
    lasttx: int = 0
    txqueue: int = 0
    current_page: int = RX_START
    irqlock: int = 0
    stopped: bool = False
    tx_packets: int = 0
    tx_errors: int = 0
    rx_frames: list = field(default_factory=list)
    rx_errors: int = 0
    interrupts: int = 0

    # --- __NS8390_init(dev, 1) for a word-wide (DCR 0x49) card ------------------------------------------------
    def init(self) -> None:
        o = self.io.outb
        o(NODMA | PAGE0 | STOP, CMD)
        o(0x49, EN0_DCFG)
        o(0, EN0_RCNTLO)
        o(0, EN0_RCNTHI)
        o(0x20, EN0_RXCR)
        o(0x02, EN0_TXCR)
        o(TX_START, EN0_TPSR)
        o(RX_START, EN0_STARTPG)
        o(STOP_PG - 1, EN0_BOUNDARY)
        o(STOP_PG, EN0_STOPPG)
        o(0xFF, EN0_ISR)
        o(0x00, EN0_IMR)
        o(NODMA | PAGE1 | STOP, CMD)
        for i in range(6):
            o(self.mac[i], EN1_PHYS + i)
        o(RX_START, EN1_CURPAG)
        o(NODMA | PAGE0 | STOP, CMD)
        self.tx1 = self.tx2 = self.txing = self.txqueue = 0
        self.current_page = RX_START
        o(0xFF, EN0_ISR)
        o(ENISR_ALL, EN0_IMR)
        o(NODMA | PAGE0 | START, CMD)
        o(0x00, EN0_TXCR)
        o(0x04, EN0_RXCR)          # accept broadcast

    # --- transmit ---------------------------------------------------------------------------------------------
    def start_xmit(self, frame: bytes) -> bool:
        """ei_start_xmit; False: NETDEV_TX_BUSY (both slots full)."""
        io = self.io
        data = frame if len(frame) >= 60 else frame + bytes(60 - len(frame))
        io.outb(0x00, EN0_IMR)
        io.irq_disable()
        self.irqlock = 1
        if self.tx1 == 0:
            page, self.tx1 = TX_START, len(data)
        elif self.tx2 == 0:
            page, self.tx2 = TX_START + TX_PAGES // 2, len(data)
        else:
            self.irqlock = 0
            self.stopped = True
            io.outb(ENISR_ALL, EN0_IMR)
            io.irq_enable()
            self.tx_errors += 1
            return False
        self.block_output(data, page)
        if not self.txing:
            self.txing = 1
            self.trigger_send(len(data), page)
            if page == TX_START:
                self.tx1, self.lasttx = -1, -1
            else:
                self.tx2, self.lasttx = -1, -2
        else:
            self.txqueue += 1
        self.stopped = bool(self.tx1 and self.tx2)
        self.irqlock = 0
        io.outb(ENISR_ALL, EN0_IMR)
        io.irq_enable()
        return True

    def block_output(self, buf: bytes, start_page: int) -> None:
        io, count = self.io, len(buf) + (len(buf) & 1)
        buf = buf + bytes(count - len(buf))
        io.outb(PAGE0 | START | NODMA, CMD)
        io.outb(ENISR_RDC, EN0_ISR)
        io.outb(count & 0xFF, EN0_RCNTLO)
        io.outb(count >> 8, EN0_RCNTHI)
        io.outb(0x00, EN0_RSARLO)
        io.outb(start_page, EN0_RSARHI)
        io.outb(RWRITE | START, CMD)
        io.outsl(DATAPORT, buf[: count & ~3])
        if count & 2:
            io.outw(int.from_bytes(buf[count & ~3: (count & ~3) + 2], "little"), DATAPORT)
        for _ in range(1000):
            if io.inb(EN0_ISR) & ENISR_RDC:
                break
        else:
            raise AssertionError("timeout waiting for Tx RDC")
        io.outb(ENISR_RDC, EN0_ISR)

    def trigger_send(self, length: int, start_page: int) -> None:
        io = self.io
        io.outb(NODMA | PAGE0, CMD)
        if io.inb(CMD) & TRANS:
            return
        io.outb(length & 0xFF, EN0_TCNTLO)
        io.outb(length >> 8, EN0_TCNTHI)
        io.outb(start_page, EN0_TPSR)
        self.sending(length, start_page)
        io.outb(NODMA | TRANS | START, CMD)

    def sending(self, length: int, start_page: int) -> None:
        """Called right before the TXP write (not lib8390's: a test's record of what the driver started)."""

    # --- the interrupt handler --------------------------------------------------------------------------------
    def interrupt(self) -> None:
        """ei_interrupt (page lock held, the line's handler)."""
        io = self.io
        self.interrupts += 1
        if self.irqlock:
            io.inb(EN0_ISR)
            io.inb(EN0_IMR)
            return
        io.outb(NODMA | PAGE0, CMD)
        serviced = 0
        while True:
            interrupts = io.inb(EN0_ISR)
            serviced += 1
            if not interrupts or serviced >= 12:
                break
            if interrupts & ENISR_OVER:
                raise AssertionError("receive overrun")
            if interrupts & (ENISR_RX | ENISR_RX_ERR):
                self.receive()
            if interrupts & ENISR_TX:
                self.tx_intr()
            elif interrupts & ENISR_TX_ERR:
                raise AssertionError("transmit error")
            if interrupts & ENISR_COUNTERS:
                for off in (13, 14, 15):
                    io.inb(off)
                io.outb(ENISR_COUNTERS, EN0_ISR)
            if interrupts & ENISR_RDC:
                io.outb(ENISR_RDC, EN0_ISR)
            io.outb(NODMA | PAGE0 | START, CMD)

    def tx_intr(self) -> None:
        io = self.io
        status = io.inb(EN0_TSR)
        io.outb(ENISR_TX, EN0_ISR)
        self.txqueue -= 1
        if self.tx1 < 0:
            self.tx1 = 0
            if self.tx2 > 0:
                self.txing = 1
                self.trigger_send(self.tx2, TX_START + 6)
                self.tx2, self.lasttx = -1, 2
            else:
                self.lasttx, self.txing = 20, 0
        elif self.tx2 < 0:
            self.tx2 = 0
            if self.tx1 > 0:
                self.txing = 1
                self.trigger_send(self.tx1, TX_START)
                self.tx1, self.lasttx = -1, 1
            else:
                self.lasttx, self.txing = 10, 0
        if status & 0x01:
            self.tx_packets += 1
        else:
            self.tx_errors += 1
        self.stopped = False

    def receive(self) -> None:
        io = self.io
        for _ in range(9):
            io.outb(NODMA | PAGE1, CMD)
            rxing_page = io.inb(EN1_CURPAG)
            io.outb(NODMA | PAGE0, CMD)
            this_frame = io.inb(EN0_BOUNDARY) + 1
            if this_frame >= STOP_PG:
                this_frame = RX_START
            if this_frame == rxing_page:
                break
            hdr = self.get_8390_hdr(this_frame)
            status, nxt, count = hdr & 0xFF, hdr >> 8 & 0xFF, hdr >> 16
            pkt_len = count - 4
            next_frame = this_frame + 1 + ((pkt_len + 4) >> 8)
            ring = STOP_PG - RX_START
            if nxt not in (next_frame, next_frame + 1, next_frame - ring, next_frame + 1 - ring):
                self.current_page = rxing_page
                io.outb((self.current_page - 1) & 0xFF, EN0_BOUNDARY)
                self.rx_errors += 1
                continue
            if pkt_len < 60 or pkt_len > 1518 or status & 0x0F != 0x01:
                self.rx_errors += 1
            else:
                self.rx_frames.append(self.block_input(pkt_len, (this_frame << 8) + 4))
            if nxt >= STOP_PG:
                nxt = RX_START
            self.current_page = nxt
            io.outb(nxt - 1, EN0_BOUNDARY)
        io.outb(ENISR_RX | ENISR_RX_ERR, EN0_ISR)

    def get_8390_hdr(self, ring_page: int) -> int:
        io = self.io
        io.outb(NODMA | PAGE0 | START, CMD)
        io.outb(4, EN0_RCNTLO)
        io.outb(0, EN0_RCNTHI)
        io.outb(0, EN0_RSARLO)
        io.outb(ring_page, EN0_RSARHI)
        io.outb(RREAD | START, CMD)
        hdr = io.inl(DATAPORT)
        io.outb(ENISR_RDC, EN0_ISR)
        return hdr

    def block_input(self, count: int, ring_offset: int) -> bytes:
        io = self.io
        io.outb(NODMA | PAGE0 | START, CMD)
        io.outb(count & 0xFF, EN0_RCNTLO)
        io.outb(count >> 8, EN0_RCNTHI)
        io.outb(ring_offset & 0xFF, EN0_RSARLO)
        io.outb(ring_offset >> 8, EN0_RSARHI)
        io.outb(RREAD | START, CMD)
        out = bytearray(io.insl(DATAPORT, count >> 2))
        if count & 2:
            out += io.inw(DATAPORT).to_bytes(2, "little")
        if count & 1:
            out += bytes((io.inb(DATAPORT),))
        io.outb(ENISR_RDC, EN0_ISR)
        return bytes(out)
