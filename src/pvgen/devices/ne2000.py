"""NE2000 NIC: a DP8390D core with 16 KiB of buffer memory behind the NE2000 ASIC (data port 0x10, reset 0x1F).

Register names and bits follow the National DP8390D datasheet ("Register descriptions", pages 0-2, and
"Remote DMA", "Buffer memory ring"); the RTL8029AS additions are its page-0 ID bytes. The page is folded into the
dispatch once, with separate read and write tables, because one offset names different registers per page and
direction. The model is synchronous: a transmit or a remote-DMA start completes inside the CR write.
This file is the register model and the bus interface; the data path (remote DMA, transmit, receive ring) is the
`Ne2000Dma` mixin in ne2000_dma.py, and the register names live in dp8390_regs.py (re-exported here).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from pvgen.devices.dp8390_regs import (  # noqa: F401  (the register names are this module's API too)
    CR, NE_DATAPORT, NE_RESET, NE_IO_EXTENT, CLDA0, CLDA1, BNRY, TSR, NCR, FIFO, ISR, CRDA0, CRDA1, RTL8029_ID0,
    RTL8029_ID1, RSR, CNTR0, CNTR1, CNTR2, PSTART, PSTOP, TPSR, TBCR0, TBCR1, RSAR0, RSAR1, RBCR0, RBCR1, RCR, TCR,
    DCR, IMR, PAR0, CURR, MAR0, CR_STP, CR_STA, CR_TXP, CR_RD_READ, CR_RD_WRITE, CR_RD_SEND, CR_RD_ABORT, ISR_PRX,
    ISR_PTX, ISR_RXE, ISR_TXE, ISR_OVW, ISR_CNT, ISR_RDC, ISR_RST, DCR_WTS, RCR_AR, RCR_AB, RCR_AM, RCR_PRO,
    RCR_MON, TCR_LB, TSR_PTX, TSR_ABT, RSR_PRX, RSR_MPA, RSR_PHY, MEM_START, MEM_END, PROM_SIZE, MIN_FRAME,
    MAX_FRAME, RX_HEADER, RX_CRC,
)
from pvgen.devices.ne2000_dma import Ne2000Dma, multicast_hash_index  # noqa: F401
from pvgen.modeldecl import CommandRule, Cond, Effect, EngineDecl, EngineNow, IrqRule
from pvgen.protocol import EngineKind, EngineState, Neutral, PortClass, WriteRule


# Page 2 reads back PSTART, PSTOP, TPSR, RCR, TCR, DCR and IMR, which page-0 writes set; those writes are neutral
# (write_rules), so the page-2 bank, saved before them, would serve the old values: the bank leaves them out (their
# page-2 reads exit), and offset 3 too (it follows CRDA, which the guest's remote-DMA engine advances).
_PAGE2_UNBANKED = frozenset({PSTART, PSTOP, 0x03, TPSR, RCR, TCR, DCR, IMR})


@dataclass
class Ne2000(Ne2000Dma):
    """DP8390 registers (one field per register) plus the NE2000 buffer memory; the packet backend is passed in."""

    mac: bytes = bytes.fromhex("525400123456")
    backend: object | None = None            # has send(frame); see netpeer.py
    irq: Callable[[bool], None] = lambda level: None
    name: str = "ne2000"
    page: int = 0
    rd: int = CR_RD_ABORT          # remote DMA command as written (RD2..RD0)
    started: bool = False          # STA/STP state
    txp: bool = False
    pstart: int = 0
    pstop: int = 0
    bnry: int = 0
    tpsr: int = 0
    tbcr: int = 0
    isr: int = ISR_RST
    imr: int = 0
    rsar: int = 0
    crda: int = 0
    rbcr: int = 0
    rcr: int = 0
    tcr: int = 0
    dcr: int = 0
    tsr: int = 0
    ncr: int = 0
    rsr: int = 0
    cntr: list[int] = field(default_factory=lambda: [0, 0, 0])
    par: bytearray = field(default_factory=lambda: bytearray(6))
    curr: int = 0
    mar: bytearray = field(default_factory=lambda: bytearray(8))
    clda: int = 0
    mem: bytearray = field(default_factory=lambda: bytearray(MEM_END))
    prom: bytes = b""
    metrics: Counter = field(default_factory=Counter)
    # The CR write class: DOORBELL flushes at every CR write; DOORBELL_IF (with doorbell_masks(): only a write with
    # TXP) lets page selects and remote-DMA starts wait in the queue and sends a TX start at once; POSTED lets a
    # TX start wait for the next flush. docs/devices.md has the measured difference.
    cr_write_class: PortClass = PortClass.DOORBELL
    # In-guest models (protocol v5): the platform's line for the interrupt output and whether it reaches it now
    # (set by the wiring, pci.ne2000_function); a TXP the guest completes itself (posted_tx) needs both.
    irq_line_number: int | None = None
    irq_gate: Callable[[], bool] = lambda: True
    posted_tx: bool = True
    _irq_level: bool | None = None  # the level update_irq drove last (None: not driven yet)
    fifo_epoch: int = 0             # changes when the remote DMA is (re)started, aborted or its address/count written
    prx_acks: int = 0               # ISR writes acknowledging PRX (a paced peer sends on: bench/linuxkit.py)
    _handout: tuple | None = None   # the last fifo_read until the monitor's fifo_rewind (CRDA is then ahead)
    _mirror_lo: int = MEM_END       # device memory changed since the monitor last took it: [lo, hi)
    _mirror_hi: int = MEM_START

    # The shadow values change only through port accesses and receive(), whose caller refreshes the shadows
    # (pvbatch skips this device's shadows after a batch that did not touch it).
    synchronous_shadows = True
    shadow_sizes = (1,)            # shadow_read and bank_shadow_read have a value for byte reads only

    def __post_init__(self) -> None:
        # Station address PROM: 16 bytes (MAC, then 0x57 0x57 at 14-15: "word-wide NE2000"), each byte doubled.
        raw = bytearray(16)
        raw[0:6] = self.mac
        raw[14] = raw[15] = 0x57
        self.prom = bytes(b for x in raw for b in (x, x))
        self.reset()

    def reset(self) -> None:
        """Hardware reset (power-on or a read of the reset port): DP8390 "Initialization procedures"."""
        self.page, self.rd, self.started, self.txp = 0, CR_RD_ABORT, False, False
        self.fifo_epoch += 1
        self.isr, self.imr = ISR_RST, 0
        self.dcr, self.tcr, self.rcr = 0, 0, 0
        self.rbcr, self.rsar, self.crda = 0, 0, 0
        self.update_irq()

    def update_irq(self) -> None:
        """IRQ = ISR & IMR (bit 7, RST, is status, not an interrupt); the line is driven only when it changes."""
        level = bool(self.isr & self.imr & 0x7F)
        if level is not self._irq_level:
            self._irq_level = level
            self.irq(level)

    # -- command register --------------------------------------------------------------------------------------

    def cr_value(self) -> int:
        return (self.page << 6 | self.rd << 3 | (CR_TXP if self.txp else 0)
                | (CR_STA if self.started else CR_STP))

    def _write_cr(self, v: int) -> None:
        self.page = v >> 6 & 3
        if v & CR_STP:
            self.started = False
            self.isr |= ISR_RST
        elif v & CR_STA:
            self.started = True
            self.isr &= ~ISR_RST
        rd = v >> 3 & 7
        if rd:
            self.fifo_epoch += 1   # values prefetched for the transfer so far are not what the guest reads next
        if rd == 0:
            self.metrics["cr_rd_zero"] += 1   # "not allowed" by the datasheet; keeps the current DMA state
        elif rd & CR_RD_ABORT:
            self.rd = CR_RD_ABORT
        elif rd in (CR_RD_READ, CR_RD_WRITE):
            self.rd, self.crda = rd, self.rsar
            if self.rbcr == 0:
                self.metrics["dma_zero_count"] += 1
                self.isr |= ISR_RDC
        else:
            self.metrics["send_packet_unsupported"] += 1
            self.rd = CR_RD_ABORT
        if v & CR_TXP:
            self._transmit()

    # -- register dispatch: separate read and write tables per page -----------------------------------------------

    def _peek(self, off: int) -> int:
        """The register at off on the current page, without side effects."""
        p = self.page
        if off == CR:
            return self.cr_value()
        if p == 0:
            if off == ISR:
                return self.isr
            if off == BNRY:
                return self.bnry
            if off == TSR:
                return self.tsr
            if off <= CLDA1:
                return self.clda & 0xFF if off == CLDA0 else self.clda >> 8
            if off == NCR:
                return self.ncr
            if off == FIFO:
                return 0
            if off <= CRDA1:
                return self.crda & 0xFF if off == CRDA0 else self.crda >> 8 & 0xFF
            if off <= RTL8029_ID1:
                return 0x50 if off == RTL8029_ID0 else 0x43
            return self.rsr if off == RSR else self.cntr[off - CNTR0]
        if p == 1:
            if off < CURR:
                return self.par[off - PAR0]
            return self.curr if off == CURR else self.mar[off - MAR0]
        if p == 2:
            return {PSTART: self.pstart, PSTOP: self.pstop, 0x03: self._next_ring_page(self.crda >> 8),
                    TPSR: self.tpsr, 0x05: self.curr, 0x06: self.clda >> 8, 0x07: self.clda & 0xFF,
                    RCR: self.rcr | 0xC0, TCR: self.tcr | 0xE0, DCR: self.dcr | 0x80,
                    IMR: self.imr | 0x80}.get(off, 0xFF)
        return 0   # page 3 (RTL8029 configuration): not modelled, reads as zero

    def _read_reg(self, off: int) -> int:
        value = self._peek(off)
        if self.page == 0 and CNTR0 <= off <= CNTR2:
            self.cntr[off - CNTR0] = 0   # tally counters clear on read
        return value

    def _write_reg(self, off: int, v: int) -> None:
        p = self.page
        if p == 0:
            if off == PSTART:
                self.pstart = v
            elif off == PSTOP:
                self.pstop = v
            elif off == BNRY:
                self.bnry = v
            elif off == TPSR:
                self.tpsr = v
            elif off == TBCR0:
                self.tbcr = (self.tbcr & 0xFF00) | v
            elif off == TBCR1:
                self.tbcr = (self.tbcr & 0xFF) | v << 8
            elif off == ISR:
                self.isr &= ~(v & 0x7F)   # write 1 to clear; RST cannot be cleared this way
                if v & ISR_PRX:
                    self.prx_acks += 1
            elif off == RSAR0:
                self.rsar = (self.rsar & 0xFF00) | v
            elif off == RSAR1:
                self.rsar = (self.rsar & 0xFF) | v << 8
            elif off == RBCR0:
                self.rbcr = (self.rbcr & 0xFF00) | v
                self.fifo_epoch += 1
            elif off == RBCR1:
                self.rbcr = (self.rbcr & 0xFF) | v << 8
                self.fifo_epoch += 1
            elif off == RCR:
                self.rcr = v & 0x3F
            elif off == TCR:
                self.tcr = v & 0x1F
            elif off == DCR:
                self.dcr = v & 0x7F
            elif off == IMR:
                self.imr = v & 0x7F
        elif p == 1:
            if off < CURR:
                self.par[off - PAR0] = v
            elif off == CURR:
                self.curr = v
            else:
                self.mar[off - MAR0] = v
        else:
            self.metrics[f"page{p}_write"] += 1   # page 2 is read-only; page 3 is not modelled

    # -- bus interface -------------------------------------------------------------------------------------------

    def io_read(self, offset: int, size: int) -> int:
        ones = (1 << (8 * size)) - 1
        if offset == NE_DATAPORT:
            value = self._data_read(size)
        elif offset == NE_RESET:
            self.reset()
            value = 0
        elif offset <= 0x0F and size == 1:
            value = self._read_reg(offset)
        else:
            self.metrics["bad_size" if offset <= 0x0F else "bad_offset"] += 1
            value = ones
        return value & ones

    def io_write(self, offset: int, size: int, value: int) -> None:
        if offset == NE_DATAPORT:
            self._data_write(size, value)
        elif offset == NE_RESET:
            pass   # the reset happens on the read; the write that follows it in every driver is harmless
        elif offset <= 0x0F and size == 1:
            if offset == CR:
                self._write_cr(value & 0xFF)
            else:
                self._write_reg(offset, value & 0xFF)
                if not (offset == ISR or offset == IMR) or self.page != 0:
                    return      # no other register write changes ISR or IMR: the line stays where it is
        else:
            self.metrics["bad_size" if offset <= 0x0F else "bad_offset"] += 1
        self.update_irq()

    def shadow_read(self, offset: int, size: int = 1) -> int | None:
        """The register at offset on the current page, without side effects (the SHADOW value).  Page 2's remote
        next-packet pointer (offset 3) is derived from CRDA, which the guest's remote-DMA engine advances: it
        has no shadow (its reads exit)."""
        if 0 <= offset <= 0x0F and size == 1 and not (self.page == 2 and offset == 3) and \
                not (self._handout is not None and self.page == 0 and offset in (CRDA0, CRDA1)):
            return self._peek(offset)
        return None

    def bank_shadow_read(self, bank: int, offset: int, size: int = 1) -> int | None:
        """The register at offset 1-15 on page `bank` (0-2), without side effects: the CR BANK rule's banks.
        Page 3 (not modelled) has none: its reads exit."""
        if not (0 <= bank <= 2 and 1 <= offset <= 0x0F and size == 1) or (bank == 2 and offset in _PAGE2_UNBANKED) \
                or (bank == 0 and offset in (CRDA0, CRDA1) and self._handout is not None):
            return None     # page 2 offset 3 follows CRDA (shadow_read); the others, neutral page-0 writes change
        page, self.page = self.page, bank
        try:
            return self._peek(offset)
        finally:
            self.page = page

    def _page_bytes(self, p: int) -> bytes:
        """Offsets 0-15 on page p as _peek reads them (CR, then the page's registers), computed in one go."""
        if p == 0:
            clda, crda = self.clda, self.crda
            v = (self.cr_value(), clda & 0xFF, clda >> 8, self.bnry, self.tsr, self.ncr, 0, self.isr,
                 crda & 0xFF, crda >> 8 & 0xFF, 0x50, 0x43, self.rsr, *self.cntr)
        elif p == 1:
            v = (self.cr_value(), *self.par, self.curr, *self.mar)
        elif p == 2:
            clda = self.clda
            v = (self.cr_value(), self.pstart, self.pstop, self._next_ring_page(self.crda >> 8), self.tpsr,
                 self.curr, clda >> 8, clda & 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, self.rcr | 0xC0, self.tcr | 0xE0,
                 self.dcr | 0x80, self.imr | 0x80)
        else:
            return bytes((self.cr_value(),)) + bytes(15)   # page 3 (RTL8029 configuration) reads as zero
        try:
            return bytes(v)
        except ValueError:          # a field set out of byte range from outside: the value the shadow path masks
            return bytes(x & 0xFF for x in v)

    def shadow_block(self, bank: int | None, first: int, count: int) -> bytes | None:
        """Bulk form of the shadow reads for pvbatch's refresh: byte i is `shadow_read(first + i, 1) & 0xFF` (bank
        None) or `bank_shadow_read(bank, first + i, 1) & 0xFF`; None when one of those reads has no value.
        One page computed from the state, without switching pages (tests/property/test_shadow_bulk.py)."""
        lo = 0 if bank is None else 1
        if not (lo <= first and count >= 0 and first + count <= 0x10) or bank is not None and not 0 <= bank <= 2:
            return None
        page = self.page if bank is None else bank
        if page == 2 and first <= 3 < first + count:
            return None     # page 2 offset 3 has no shadow (shadow_read)
        if bank == 2 and any(first <= off < first + count for off in _PAGE2_UNBANKED):
            return None     # not in the page-2 bank (bank_shadow_read)
        if page == 0 and self._handout is not None and first <= CRDA1 and CRDA0 < first + count:
            return None     # CRDA while FIFO values are handed out (shadow_read)
        return self._page_bytes(page)[first:first + count]

    def read_side_effects(self, offset: int) -> bool:
        """Reads with side effects: the data port, the reset port, and (page 0) the tally counters."""
        return offset in (NE_DATAPORT, NE_RESET) or CNTR0 <= offset <= CNTR2

    # -- port classes (docs/devices.md) ------------------------------------------------------------------------

    def port_classes(self) -> dict[int, tuple[PortClass, PortClass]]:
        """Reads of every DP8390 register are SHADOW (the runtime serves a shadow only while its queue is empty, and
        the page changes only through CR, so the monitor's refresh after each flush computes the value for the
        current page; the tally counters' clear-on-read is replayed). Writes are POSTED but CR's (a TX start
        needs the device now: DOORBELL_IF with doorbell_masks()); ISR and IMR writes may wait too: the device
        changes only when a batch is replayed, and the replay keeps their order (docs/devices.md)."""
        classes = {off: (PortClass.SHADOW, PortClass.POSTED) for off in range(0x01, 0x10)}
        classes[CR] = (PortClass.SHADOW, self.cr_write_class)
        classes[NE_DATAPORT] = (PortClass.FIFO, PortClass.POSTED)
        return classes

    # -- in-guest models (protocol v5, pvgen/modeldecl.py; docs/devices.md "NE2000 in the guest") ---------------

    _LATCHED = (PSTART, PSTOP, TPSR, TBCR0, TBCR1, RSAR0, RSAR1, RBCR0, RBCR1, DCR, IMR)

    def latches(self) -> dict[int, int]:
        """The page-0 write-only registers the guest's models need, as the device holds them now."""
        return {PSTART: self.pstart, PSTOP: self.pstop, TPSR: self.tpsr, TBCR0: self.tbcr & 0xFF,
                TBCR1: self.tbcr >> 8 & 0xFF, RSAR0: self.rsar & 0xFF, RSAR1: self.rsar >> 8 & 0xFF,
                RBCR0: self.rbcr & 0xFF, RBCR1: self.rbcr >> 8 & 0xFF, DCR: self.dcr, IMR: self.imr}

    def engines(self) -> list[EngineDecl]:
        """Remote DMA ("Remote DMA"): armed by a CR write of RREAD or RWRITE with STA (command_rules) from RSAR
        and RBCR, over a mirror of the 16 KiB buffer memory; word mode only (DCR.WTS: a byte or word access moves
        two bytes, a dword access four), the count saturating at zero; CRDA follows the address, which wraps
        from PSTOP to PSTART, and RBCR counts down; at zero ISR.RDC is set.  An access outside the buffer memory
        (the PROM below it) exits.  The completing access exits when IMR enables RDC (its interrupt is not
        modelled)."""
        return [EngineDecl(NE_DATAPORT, EngineKind.DMA, (2, 2, 4), MEM_END - MEM_START, mem_base=MEM_START,
                           addr_mask=0xFFFF, saturate=True, cmd_offset=CR, addr_latches=(RSAR0, RSAR1),
                           count_latches=(RBCR0, RBCR1), wrap_latches=(PSTART, PSTOP), wrap_shift=8,
                           dep_latches=(DCR,), addr_regs=(CRDA0, CRDA1), done=(Effect.set_bits(ISR, ISR_RDC),),
                           serve_cond=Cond.latch(DCR, DCR_WTS, DCR_WTS), done_cond=Cond.latch(IMR, ISR_RDC, 0))]

    def engine_state(self, index: int) -> EngineNow | None:
        if index != 0 or self.rd not in (CR_RD_READ, CR_RD_WRITE) or not self.dcr & DCR_WTS:
            return None
        wrap = self.pstart < self.pstop
        return EngineNow(EngineState.READ if self.rd == CR_RD_READ else EngineState.WRITE, self.crda, self.rbcr,
                         wrap_to=self.pstart << 8 if wrap else 0, wrap_at=self.pstop << 8 if wrap else 0)

    def engine_position(self, index: int) -> tuple[int, int, int] | None:
        """engine_state's (state, address, count), for the monitor's check of every served run."""
        rd = self.rd
        if rd == CR_RD_READ:
            return (1, self.crda, self.rbcr) if index == 0 and self.dcr & DCR_WTS else None
        if rd == CR_RD_WRITE:
            return (2, self.crda, self.rbcr) if index == 0 and self.dcr & DCR_WTS else None
        return None

    def mirror_take_dirty(self, index: int) -> tuple[int, int] | None:
        lo, hi = self._mirror_lo, self._mirror_hi
        self._mirror_lo, self._mirror_hi = MEM_END, MEM_START
        return (lo, hi) if lo < hi else None

    def mirror_bytes(self, index: int, lo: int, hi: int) -> bytes:
        return bytes(self.mem[lo:hi])

    def command_rules(self) -> list[CommandRule]:
        """CR writes the guest applies itself, with the NIC started, idle (no TXP) and page 0 selected: "remote
        read" and "remote write" with STA arm the remote-DMA engine (CR reads back as written, CRDA = RSAR); and,
        with the interrupt rule published, a transmit start (NODMA, TXP, STA) of a frame whose length (TBCR, 1 to
        1518) and page (TPSR 0x40-0x79) the model always sends: the transmission completes as the model's does
        (TSR = PTX, NCR = 0, ISR.PTX, CR reads 0x22), and the frame leaves at the next flush."""
        idle_p0 = Cond.shadow(CR, 0xC7, CR_STA)
        arm = [CommandRule(CR, 0xFF, CR_RD_READ << 3 | CR_STA, (idle_p0,), engine=0, engine_state=EngineState.READ),
               CommandRule(CR, 0xFF, CR_RD_WRITE << 3 | CR_STA, (idle_p0,), engine=0,
                           engine_state=EngineState.WRITE)]
        if not self.posted_tx:
            return arm
        tx = CommandRule(CR, 0xFF, CR_RD_ABORT << 3 | CR_TXP | CR_STA,
                         (idle_p0, Cond.range(TBCR0, TBCR1, 1, MAX_FRAME), Cond.range(TPSR, None, MEM_START >> 8,
                                                                                      (MEM_END - MAX_FRAME - 1) >> 8)),
                         own_and=0xFF & ~CR_TXP,
                         effects=(Effect.set(TSR, TSR_PTX), Effect.set(NCR, 0), Effect.set_bits(ISR, ISR_PTX)),
                         needs_irq_rules=True)
        return arm + [tx]

    def irq_rules(self) -> list[IrqRule]:
        """IRQ = ISR & IMR & 0x7F (update_irq), computable with page 0 selected."""
        return [IrqRule(ISR, IMR, 0x7F, Cond.shadow(CR, 0xC0, 0x00))]

    def irq_rule_state(self, index: int) -> tuple[int, bool] | None:
        if index != 0 or self.irq_line_number is None or not self.irq_gate():
            return None
        return self.irq_line_number, bool(self.isr & self.imr & 0x7F)

    def doorbell_masks(self) -> dict[int, int]:
        """For a DOORBELL_IF CR: the write flushes the queue only when it sets TXP (start transmission)."""
        return {CR: CR_TXP}

    def write_rules(self) -> dict[int, WriteRule]:
        """Neutral writes (docs/protocol.md): page-0 register writes that change no other page-0 register's
        readback, so the runtime keeps serving shadows behind them; with page 0 selected (CR shadow, bits 7-6):
        ISR is write-1-to-clear, BNRY reads back what was written, every other page-0 write register reads back
        as a different register that the write does not change (PSTART/CLDA0, TPSR/TSR, RSAR/CRDA, RBCR/ID, ...).
        CR (bank select, Neutral.BANK): with the NIC started and idle (no TXP), a write of abort DMA (STA or
        nothing) and any page only sets the DMA field to abort and selects the page: CR then reads 0x22 | page,
        and offsets 1-15 read as that page's registers (bank_shadow_read), which the write does not change."""
        N, page0 = Neutral, dict(cond_offset=CR, cond_mask=0xC0, cond_want=0x00)
        rules = {off: WriteRule(N.KEEP, **page0) for off in range(0x01, 0x10)}
        rules[BNRY] = WriteRule(N.SET_VALUE, **page0)
        rules[ISR] = WriteRule(N.CLEAR_BITS, operand=0x7F, **page0)
        rules[CR] = WriteRule(N.BANK, operand=0xC0, cond_offset=CR, cond_mask=0x07, cond_want=CR_STA,
                              value_mask=0x3D, value_want=CR_RD_ABORT << 3, banked=0x0F)
        return rules
