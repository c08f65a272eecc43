"""DP8390D register offsets and bits, the NE2000 port window and buffer-memory layout: the datasheet's names, once."""

# Offsets in the NE2000's 32-port window.
CR = 0x00            # command register, every page
NE_DATAPORT = 0x10   # ASIC remote-DMA data port (8/16/32-bit)
NE_RESET = 0x1F      # ASIC reset port: a read resets the card
NE_IO_EXTENT = 0x20

# Page 0, read.
CLDA0, CLDA1, BNRY, TSR, NCR, FIFO, ISR, CRDA0, CRDA1 = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09
RTL8029_ID0, RTL8029_ID1, RSR, CNTR0, CNTR1, CNTR2 = 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F
# Page 0, write.
PSTART, PSTOP, TPSR, TBCR0, TBCR1 = 0x01, 0x02, 0x04, 0x05, 0x06
RSAR0, RSAR1, RBCR0, RBCR1, RCR, TCR, DCR, IMR = 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F
# Page 1, read/write.
PAR0, CURR, MAR0 = 0x01, 0x07, 0x08

# CR bits.
CR_STP, CR_STA, CR_TXP = 0x01, 0x02, 0x04
CR_RD_READ, CR_RD_WRITE, CR_RD_SEND, CR_RD_ABORT = 1, 2, 3, 4   # RD2..RD0 field values
# ISR/IMR bits.
ISR_PRX, ISR_PTX, ISR_RXE, ISR_TXE, ISR_OVW, ISR_CNT, ISR_RDC, ISR_RST = 1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80
# DCR, RCR, TCR, TSR, RSR bits.
DCR_WTS = 0x01
RCR_AR, RCR_AB, RCR_AM, RCR_PRO, RCR_MON = 0x02, 0x04, 0x08, 0x10, 0x20
TCR_LB = 0x06
TSR_PTX, TSR_ABT = 0x01, 0x08
RSR_PRX, RSR_MPA, RSR_PHY = 0x01, 0x10, 0x20

# NE2000 buffer memory and station-address PROM (the PROM is decoded, repeated, below MEM_START).
MEM_START, MEM_END = 0x4000, 0x8000
PROM_SIZE = 32
MIN_FRAME, MAX_FRAME = 60, 1518
RX_HEADER = 4
RX_CRC = 4
