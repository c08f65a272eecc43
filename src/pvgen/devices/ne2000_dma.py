"""NE2000 data path: remote DMA through the data port, transmit and the receive ring in the 16 KiB buffer memory.

DP8390D "Remote DMA" and "Buffer memory ring"; the NE2000 ASIC decodes the station-address PROM below MEM_START.
`Ne2000Dma` is a mixin of `ne2000.Ne2000` (whose dataclass holds the registers these methods use): the methods are
found on the class as before, so the hot paths (`_data_read`, `read_many`, `write_many`, `fifo_read`, `receive`)
pay no extra indirection.
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter

from pvgen.devices.dp8390_regs import (
    CR_RD_READ, CR_RD_WRITE, DCR_WTS, ISR_CNT, ISR_OVW, ISR_PRX, ISR_PTX, ISR_RDC, ISR_TXE, MAX_FRAME, MEM_END,
    MEM_START, MIN_FRAME, NE_DATAPORT, PROM_SIZE, RCR_AB, RCR_AM, RCR_MON, RCR_PRO, RSR_MPA, RSR_PHY, RSR_PRX,
    RX_CRC, RX_HEADER, TCR_LB, TSR_ABT, TSR_PTX,
)

_FMT = {1: "B", 2: "H", 4: "I"}


def multicast_hash_index(mac: bytes) -> int:
    """The DP8390 multicast filter index: top 6 bits of the big-endian CRC-32 of the address (Linux make_mc_bits)."""
    crc_le = (~zlib.crc32(mac)) & 0xFFFF_FFFF          # CRC-32 register, no final inversion, reflected
    crc_be = int(f"{crc_le:032b}"[::-1], 2)            # bit-reversed: the value Linux's ether_crc returns
    return crc_be >> 26


class Ne2000Dma:
    """Remote DMA, transmit and receive of `ne2000.Ne2000`: methods only, the state is the device's."""

    # -- remote DMA through the data port ------------------------------------------------------------------------

    def _unit(self, size: int) -> int:
        """Bytes one data-port access moves: the DCR word mode moves 2 even on a byte access (RTL8029 PROM read)."""
        if size not in (1, 2, 4):
            return 0
        if self.dcr & DCR_WTS:
            return 4 if size == 4 else 2
        if size != 1:
            self.metrics["word_access_in_byte_mode"] += 1
        return size

    def _mem_read(self, addr: int) -> int:
        if addr < MEM_START:
            return self.prom[addr % PROM_SIZE]
        if addr < MEM_END:
            return self.mem[addr]
        self.metrics["dma_out_of_range"] += 1
        return 0xFF

    def _dirty(self, lo: int, hi: int) -> None:
        """Buffer memory [lo, hi) changed: the monitor copies it into the guest's mirror (mirror_take_dirty)."""
        if lo < self._mirror_lo:
            self._mirror_lo = lo
        if hi > self._mirror_hi:
            self._mirror_hi = hi

    def _mem_write(self, addr: int, v: int) -> None:
        if MEM_START <= addr < MEM_END:
            self.mem[addr] = v
            self._dirty(addr, addr + 1)
        else:
            self.metrics["dma_out_of_range"] += 1

    def _advance(self) -> None:
        self.crda = (self.crda + 1) & 0xFFFF
        if self.pstart < self.pstop and self.crda == self.pstop << 8:
            self.crda = self.pstart << 8   # remote DMA wraps at the end of the receive ring

    def _count(self, n: int) -> None:
        if self.rbcr == 0:
            self.metrics["dma_past_count"] += 1
            return
        self.rbcr = max(self.rbcr - n, 0)
        if self.rbcr == 0:
            self.isr |= ISR_RDC

    def _data_read(self, size: int) -> int:
        if self.rd == CR_RD_READ and self._bulk_span(size) >= size:   # fast path: one slice of buffer memory
            a = self.crda
            self._bulk_advance(size)
            if self.rbcr == 0:
                self.update_irq()
            return int.from_bytes(self.mem[a:a + size], "little")
        unit = self._unit(size)
        if unit == 0 or self.rd != CR_RD_READ:
            self.metrics["data_read_without_dma" if unit else "bad_size"] += 1
            return (1 << (8 * size)) - 1
        value = 0
        for i in range(unit):
            value |= self._mem_read(self.crda) << (8 * i)
            self._advance()
        self._count(unit)
        self.update_irq()
        return value & ((1 << (8 * size)) - 1)   # a byte access in word mode moves a word, returns its low byte

    def _data_write(self, size: int, value: int) -> None:
        if self.rd == CR_RD_WRITE and self._bulk_span(size) >= size:
            self.mem[self.crda:self.crda + size] = value.to_bytes(size, "little")
            self._dirty(self.crda, self.crda + size)
            self._bulk_advance(size)
            return
        unit = self._unit(size)
        if unit == 0 or self.rd != CR_RD_WRITE:
            self.metrics["data_write_without_dma" if unit else "bad_size"] += 1
            return
        for i in range(unit):
            self._mem_write(self.crda, value >> (8 * i) & 0xFF)
            self._advance()
        self._count(unit)

    def fifo_read(self, offset: int, size: int, max_count: int) -> list[int]:
        """Up to max_count data-port reads the guest is certain to make next, within the remote byte count, and
        never the one that completes the remote DMA: that read sets ISR.RDC (and CRDA reaches the end), which the
        guest must not see before it makes the read itself (docs/protocol.md, "FIFO values are prefetched")."""
        if offset != NE_DATAPORT or size not in (1, 2, 4) or self.rd != CR_RD_READ:
            return []
        unit = 4 if size == 4 and self.dcr & DCR_WTS else 2 if self.dcr & DCR_WTS else size
        n = min(max_count, max(self.rbcr - 1, 0) // unit)
        start, metrics = (self.crda, self.rbcr), Counter(self.metrics)
        values = self._hand(size, n)
        if values:
            # until the monitor says how many the guest read (fifo_rewind), CRDA is ahead of the guest: no shadow
            self._handout = (size, len(values), start, self.metrics - metrics, self.fifo_epoch)
        self.update_irq()
        return values

    def _hand(self, size: int, n: int) -> list[int]:
        """n data-port reads of `size`, in bulk where buffer memory is contiguous; else one access at a time."""
        values: list[int] = []
        while len(values) < n:
            k = min(n - len(values), self._bulk_span(size) // size)
            if k == 0:
                values.append(self._data_read(size))
                continue
            values.extend(struct.unpack_from(f"<{k}{_FMT[size]}", self.mem, self.crda))
            self._bulk_advance(k * size)
        return values

    def fifo_rewind(self, unread: int) -> None:
        """The monitor's word at the next flush: the guest did not read the last `unread` values fifo_read handed.
        The remote DMA goes back to where the guest is (the start of the hand-out plus the values it read, made
        again: the same position, count and metrics as if only those had been handed), so CRDA, a read of another
        size and an abort see the guest's position.  Nothing to give back when the transfer changed since (a new
        command or an abort: fifo_epoch)."""
        h, self._handout = self._handout, None
        if h is None or not unread:
            return
        size, handed, (crda, rbcr), delta, epoch = h
        if epoch != self.fifo_epoch or not 0 < unread <= handed:
            return
        self.crda, self.rbcr = crda, rbcr
        self.metrics.subtract(delta)
        for k in [k for k, v in self.metrics.items() if v <= 0]:
            del self.metrics[k]          # as if never counted
        self._hand(size, handed - unread)

    def write_many(self, offset: int, size: int, data: bytes) -> None:
        """len(data) // size data-port writes (an `outs`), in bulk: the same effects as that many io_writes."""
        i, n = 0, len(data) - len(data) % size
        while i < n:
            take = self._bulk_span(size) if offset == NE_DATAPORT and self.rd == CR_RD_WRITE else 0
            take = min(n - i, take - take % size)
            if take <= 0:
                self.io_write(offset, size, int.from_bytes(data[i:i + size], "little"))
                i += size
                continue
            self.mem[self.crda:self.crda + take] = data[i:i + take]
            self._dirty(self.crda, self.crda + take)
            self._bulk_advance(take)
            i += take
        self.update_irq()

    def read_many(self, offset: int, size: int, count: int) -> bytes:
        """count data-port reads (a replayed `ins`) as little-endian bytes: the same values and effects (the
        interrupt line included) as that many io_reads; contiguous runs of buffer memory as one slice."""
        out, want = bytearray(), count * size
        while len(out) < want:
            take = self._bulk_span(size) if offset == NE_DATAPORT and self.rd == CR_RD_READ else 0
            take = min(want - len(out), take - take % size)
            if take <= 0:
                out += self.io_read(offset, size).to_bytes(size, "little")
                continue
            out += self.mem[self.crda:self.crda + take]
            self._bulk_advance(take)
            if self.rbcr == 0:
                self.update_irq()   # where the last io_read of the run would have raised RDC
        return bytes(out)

    def _bulk_span(self, size: int) -> int:
        """Bytes the remote DMA can move from CRDA as one slice: accesses that move exactly `size` bytes, inside
        the buffer memory, before the PSTOP wrap, within the remaining count. 0 when that does not apply."""
        if not (size in (2, 4) and self.dcr & DCR_WTS or size == 1 and not self.dcr & DCR_WTS):
            return 0
        a, end = self.crda, MEM_END
        if not MEM_START <= a < MEM_END:
            return 0
        if self.pstart < self.pstop and a < self.pstop << 8:
            end = min(end, self.pstop << 8)
        return min(end - a, self.rbcr)

    def _bulk_advance(self, nbytes: int) -> None:
        self.crda += nbytes
        if self.pstart < self.pstop and self.crda == self.pstop << 8:
            self.crda = self.pstart << 8
        self.rbcr -= nbytes
        if self.rbcr == 0:
            self.isr |= ISR_RDC

    # -- transmit ----------------------------------------------------------------------------------------------

    def _transmit(self) -> None:
        if not self.started:
            self.metrics["tx_while_stopped"] += 1
            return
        start, n = self.tpsr << 8, self.tbcr
        if n == 0 or n > MAX_FRAME or start < MEM_START or start + n > MEM_END:
            self.metrics["tx_bad_buffer"] += 1
            self.tsr, self.txp = TSR_ABT, False
            self.isr |= ISR_TXE
            return
        frame = bytes(self.mem[start:start + n])
        if self.tcr & TCR_LB:
            self.metrics["tx_loopback"] += 1   # loopback: not put on the wire
        else:
            self.metrics["tx_frames"] += 1
            if self.backend is not None:
                self.backend.send(frame)
        self.tsr, self.ncr, self.txp = TSR_PTX, 0, False
        self.isr |= ISR_PTX

    # -- receive (asynchronous, called by the monitor) -----------------------------------------------------------

    def _accepts(self, frame: bytes) -> bool:
        dest = frame[:6]
        if dest == b"\xff" * 6:
            return bool(self.rcr & RCR_AB)
        if dest[0] & 1:
            if not self.rcr & RCR_AM:
                return False
            idx = multicast_hash_index(dest)
            return bool(self.mar[idx >> 3] >> (idx & 7) & 1)
        return bool(self.rcr & RCR_PRO) or dest == bytes(self.par)

    def _next_ring_page(self, page: int) -> int:
        page += 1
        return self.pstart if page >= self.pstop else page

    def _ring_valid(self) -> bool:
        return (MEM_START >> 8 <= self.pstart < self.pstop <= MEM_END >> 8
                and self.pstart <= self.curr < self.pstop)

    @staticmethod
    def _pages(length: int) -> int:
        """Ring pages a frame of length bytes takes: header, frame (padded to 60) and room for the CRC the DP8390
        stores after it (this model does not store it; lib8390's next-page check expects the room)."""
        return (RX_HEADER + max(length, MIN_FRAME) + RX_CRC + 255) >> 8

    def rx_fits(self, length: int) -> bool:
        """Whether a frame of length bytes fits between CURR and BNRY now (one page always stays free).
        A pacing peer asks this before offering a frame, so the ring never overflows."""
        if not self._ring_valid():
            return False
        ring = self.pstop - self.pstart
        # BNRY outside the ring (Linux writes PSTART-1 for "behind PSTART") is taken modulo the ring
        bnry = self.pstart + (self.bnry - self.pstart) % ring
        free = (bnry - self.curr) % ring or ring   # BNRY == CURR: nothing stored yet
        return self._pages(length) < free

    def receive(self, frame: bytes) -> bool:
        """A frame from the wire. True if it was stored in the ring (and ISR.PRX raised)."""
        accepted = self._receive(bytes(frame))
        self.update_irq()
        return accepted

    def _receive(self, frame: bytes) -> bool:
        if not self.started or self.rcr & RCR_MON or self.tcr & TCR_LB:
            self.metrics["rx_not_receiving"] += 1
            return False
        if len(frame) < 6 or len(frame) > MAX_FRAME:
            self.metrics["rx_bad_length"] += 1
            return False
        if not self._accepts(frame):
            self.metrics["rx_filtered"] += 1
            return False
        if not self._ring_valid():
            self.metrics["rx_bad_ring"] += 1
            return False
        if len(frame) < MIN_FRAME:
            frame += bytes(MIN_FRAME - len(frame))   # the sender's padding to the Ethernet minimum
        total = RX_HEADER + len(frame)
        pages = self._pages(len(frame))
        if not self.rx_fits(len(frame)):
            self.metrics["rx_overflow"] += 1
            self.isr |= ISR_OVW
            self.rsr = RSR_MPA
            self._tally(2)
            return False
        ring = self.pstop - self.pstart
        nxt = self.curr + pages
        if nxt >= self.pstop:
            nxt -= ring
        status = RSR_PRX | (RSR_PHY if frame[0] & 1 else 0)
        addr, data, end = self.curr << 8, bytes([status, nxt, total & 0xFF, total >> 8]) + frame, self.pstop << 8
        while data:   # byte after byte from CURR, wrapping from PSTOP to PSTART: as slices up to each wrap
            n = min(len(data), end - addr)
            self.mem[addr:addr + n], data = data[:n], data[n:]
            self._dirty(addr, addr + n)
            addr += n
            if addr == end:
                addr = self.pstart << 8
        self.rsr, self.curr, self.clda = status, nxt, addr
        self.isr |= ISR_PRX
        self.metrics["rx_frames"] += 1
        return True

    def _tally(self, which: int) -> None:
        """Tally counters saturate at 0xFF; ISR.CNT is set when one reaches 0x80 (its MSB)."""
        self.cntr[which] = min(self.cntr[which] + 1, 0xFF)
        if self.cntr[which] & 0x80:
            self.isr |= ISR_CNT
