"""16550A UART (console): registers per the TI/NS PC16550D datasheet, 16-byte FIFOs, one update_irq()."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from pvgen.protocol import PortClass

# Register offsets (PC16550D table II). DLAB=1 turns offsets 0 and 1 into the divisor latch.
RBR = THR = DLL = 0
IER = DLM = 1
IIR = FCR = 2
LCR, MCR, LSR, MSR, SCR = 3, 4, 5, 6, 7

IER_RDI, IER_THRI, IER_RLSI, IER_MSI = 0x01, 0x02, 0x04, 0x08
IIR_NO_INT, IIR_MSI, IIR_THRI, IIR_RDI, IIR_RLSI, IIR_CTI = 0x01, 0x00, 0x02, 0x04, 0x06, 0x0C
IIR_FIFO_ENABLED = 0xC0
FCR_ENABLE, FCR_CLEAR_RX, FCR_CLEAR_TX = 0x01, 0x02, 0x04
LCR_DLAB = 0x80
MCR_DTR, MCR_RTS, MCR_OUT1, MCR_OUT2, MCR_LOOP = 0x01, 0x02, 0x04, 0x08, 0x10
LSR_DR, LSR_OE, LSR_PE, LSR_FE, LSR_BI, LSR_THRE, LSR_TEMT, LSR_FIFOE = 1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80
MSR_DCTS, MSR_DDSR, MSR_TERI, MSR_DDCD, MSR_CTS, MSR_DSR, MSR_RI, MSR_DCD = 1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80
FIFO_DEPTH = 16


@dataclass
class Uart16550:
    """A 16550A whose transmitter is always ready: bytes written to THR go to `output` at once."""

    name: str = "uart16550"
    output: Callable[[bytes], None] = lambda data: None
    irq: Callable[[bool], None] = lambda level: None
    # Registers; reset values in reset().
    ier: int = 0
    lcr: int = 0
    mcr: int = 0
    lsr: int = 0
    msr: int = 0
    scr: int = 0
    dll: int = 0
    dlm: int = 0
    fcr: int = 0
    rx: deque = field(default_factory=deque)
    thr_ipending: bool = False   # a THRE interrupt is owed until IIR is read or THR written
    irq_level: bool = False
    bad_accesses: int = 0        # wrong-size accesses, counted and ignored (Firecracker's serial does the same)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.ier = 0
        self.lcr = 0x03                  # 8N1
        self.mcr = MCR_OUT2
        self.lsr = LSR_THRE | LSR_TEMT
        self.msr = MSR_DCD | MSR_DSR | MSR_CTS
        self.scr = 0
        self.dll, self.dlm = 12, 0       # 9600 baud from 1.8432 MHz
        self.fcr = 0
        self.rx.clear()
        self.thr_ipending = False
        self.irq_level = False

    # --- the one place the interrupt line is computed -------------------------------------------------------
    def iir(self) -> int:
        fifo = IIR_FIFO_ENABLED if self.fcr & FCR_ENABLE else 0
        if self.ier & IER_RLSI and self.lsr & (LSR_OE | LSR_PE | LSR_FE | LSR_BI):
            return IIR_RLSI | fifo
        if self.ier & IER_RDI and self.lsr & LSR_DR:
            return IIR_RDI | fifo
        if self.ier & IER_THRI and self.thr_ipending:
            return IIR_THRI | fifo
        if self.ier & IER_MSI and self.msr & (MSR_DCTS | MSR_DDSR | MSR_TERI | MSR_DDCD):
            return IIR_MSI | fifo
        return IIR_NO_INT | fifo

    def update_irq(self) -> None:
        # OUT2 gates the interrupt line onto the ISA bus on PC serial ports.
        level = not (self.iir() & IIR_NO_INT) and bool(self.mcr & MCR_OUT2)
        if level != self.irq_level:
            self.irq_level = level
            self.irq(level)

    # --- host side --------------------------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        """Bytes arriving on the line; past the FIFO depth they are lost and LSR.OE is set."""
        for b in data:
            if len(self.rx) >= (FIFO_DEPTH if self.fcr & FCR_ENABLE else 1):
                self.lsr |= LSR_OE
                continue
            self.rx.append(b)
        if self.rx:
            self.lsr |= LSR_DR
        self.update_irq()

    def _transmit(self, value: int) -> None:
        if self.mcr & MCR_LOOP:
            self.receive(bytes([value]))
        else:
            self.output(bytes([value]))
        self.thr_ipending = True         # the transmitter is empty again at once

    # --- bus --------------------------------------------------------------------------------------------------
    def port_classes(self) -> dict[int, tuple[PortClass, PortClass]]:
        """Every write may wait in a batch (the register effects are ordered); every read is strict."""
        return {off: (PortClass.STRICT, PortClass.POSTED) for off in range(8)}

    def io_read(self, offset: int, size: int) -> int:
        if size != 1:
            self.bad_accesses += 1
            return 0xFF
        dlab = self.lcr & LCR_DLAB
        if offset == RBR:
            if dlab:
                return self.dll
            value = self.rx.popleft() if self.rx else 0
            if not self.rx:
                self.lsr &= ~LSR_DR
            self.update_irq()
            return value
        if offset == IER:
            return self.dlm if dlab else self.ier
        if offset == IIR:
            value = self.iir()
            if value & 0x0F == IIR_THRI:
                self.thr_ipending = False
                self.update_irq()
            return value
        if offset == LCR:
            return self.lcr
        if offset == MCR:
            return self.mcr
        if offset == LSR:
            value = self.lsr
            self.lsr &= ~(LSR_OE | LSR_PE | LSR_FE | LSR_BI)
            self.update_irq()
            return value
        if offset == MSR:
            if self.mcr & MCR_LOOP:   # loopback: modem outputs feed the inputs (datasheet §8.6)
                m = self.mcr
                value = ((m & MCR_RTS) << 3) | ((m & MCR_DTR) << 5) | ((m & MCR_OUT1) << 4) | ((m & MCR_OUT2) << 4)
                return value | (self.msr & 0x0F)
            value = self.msr
            self.msr &= 0xF0
            self.update_irq()
            return value
        if offset == SCR:
            return self.scr
        self.bad_accesses += 1
        return 0xFF

    def io_write(self, offset: int, size: int, value: int) -> None:
        if size != 1:
            self.bad_accesses += 1
            return
        value &= 0xFF
        dlab = self.lcr & LCR_DLAB
        if offset == THR:
            if dlab:
                self.dll = value
            else:
                self.thr_ipending = False
                self._transmit(value)
        elif offset == IER:
            if dlab:
                self.dlm = value
            else:
                if value & IER_THRI and not self.ier & IER_THRI:
                    self.thr_ipending = True   # enabling THRI with an empty THR raises it at once
                self.ier = value & 0x0F
        elif offset == FCR:
            self.fcr = value & 0xC9
            if value & FCR_CLEAR_RX:
                self.rx.clear()
                self.lsr &= ~LSR_DR
        elif offset == LCR:
            self.lcr = value
        elif offset == MCR:
            self.mcr = value & 0x1F
        elif offset == SCR:
            self.scr = value
        else:
            self.bad_accesses += 1   # LSR and MSR are read-only
        self.update_irq()
