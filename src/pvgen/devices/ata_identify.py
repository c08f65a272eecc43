"""The IDENTIFY DEVICE page of the ATA disk model (ATA/ATAPI-6 section 8.15, table 27), as 256 words.

Word numbers are the ones Linux reads through include/linux/ata.h (ATA_ID_*): the page is built to pass
ata_dev_read_id/ata_dev_configure with LBA, LBA48, FLUSH CACHE (EXT), READ/WRITE MULTIPLE and PIO 0-4, no DMA.
"""

from __future__ import annotations

HEADS = 16
SECTORS_PER_TRACK = 63
MAX_CYLINDERS = 16383

# Word indices (ATA/ATAPI-6 table 27; Linux ATA_ID_* names in comments).
ID_CONFIG = 0           # ATA_ID_CONFIG
ID_CYLS = 1             # ATA_ID_CYLS
ID_HEADS = 3            # ATA_ID_HEADS
ID_SECTORS = 6          # ATA_ID_SECTORS
ID_SERNO = 10           # ATA_ID_SERNO, 10 words
ID_FW_REV = 23          # ATA_ID_FW_REV, 4 words
ID_PROD = 27            # ATA_ID_PROD, 20 words
ID_MAX_MULTSECT = 47    # ATA_ID_MAX_MULTSECT
ID_CAPABILITY = 49      # ATA_ID_CAPABILITY
ID_CAPABILITY_2 = 50
ID_OLD_PIO_MODES = 51   # ATA_ID_OLD_PIO_MODES
ID_FIELD_VALID = 53     # ATA_ID_FIELD_VALID
ID_CUR_CYLS = 54
ID_CUR_HEADS = 55
ID_CUR_SECTORS = 56
ID_CUR_CAPACITY = 57    # 2 words
ID_MULTSECT = 59        # ATA_ID_MULTSECT
ID_LBA_CAPACITY = 60    # ATA_ID_LBA_CAPACITY, 2 words
ID_MWDMA_MODES = 63
ID_PIO_MODES = 64       # ATA_ID_PIO_MODES
ID_EIDE_DMA_MIN = 65
ID_EIDE_DMA_TIME = 66
ID_EIDE_PIO = 67
ID_EIDE_PIO_IORDY = 68
ID_MAJOR_VER = 80       # ATA_ID_MAJOR_VER
ID_MINOR_VER = 81
ID_COMMAND_SET_1 = 82   # ATA_ID_COMMAND_SET_1
ID_COMMAND_SET_2 = 83   # ATA_ID_COMMAND_SET_2
ID_CFSSE = 84
ID_CFS_ENABLE_1 = 85
ID_CFS_ENABLE_2 = 86
ID_CSF_DEFAULT = 87
ID_UDMA_MODES = 88
ID_HW_CONFIG = 93       # ATA_ID_HW_CONFIG: non-zero, else Linux's ata_id_is_sata() takes us for SATA
ID_LBA_CAPACITY_2 = 100  # ATA_ID_LBA_CAPACITY_2, 4 words
ID_CHECKSUM = 255

CAP_LBA = 1 << 9
CAP_IORDY = 1 << 11
CAP_IORDY_DISABLE = 1 << 10
CMDSET_WCACHE = 1 << 5          # word 82/85
CMDSET2_VALID = 0x4000          # words 83/84/86/87: bits 15:14 = 01b
CMDSET2_LBA48 = 1 << 10
CMDSET2_FLUSH = 1 << 12
CMDSET2_FLUSH_EXT = 1 << 13
SIGNATURE = 0xA5                # word 255 low byte (8.15.65)


def ata_string(text: str, words: int) -> list[int]:
    """An ATA string: space padded, two characters per word, first character in the high byte."""
    raw = text.encode("ascii", "replace")[: 2 * words].ljust(2 * words, b" ")
    return [raw[2 * i] << 8 | raw[2 * i + 1] for i in range(words)]


def chs_geometry(sectors: int) -> tuple[int, int, int]:
    """Default CHS translation (cylinders, heads, sectors per track) for a disk of this many sectors."""
    return min(MAX_CYLINDERS, sectors // (HEADS * SECTORS_PER_TRACK)), HEADS, SECTORS_PER_TRACK


def identify_words(sectors: int, *, model: str, serial: str, firmware: str, multiple_count: int,
                   write_cache: bool, pio_mode: int = 4, max_multiple: int = 16) -> list[int]:
    w = [0] * 256
    cyls, heads, spt = chs_geometry(sectors)
    chs_capacity = cyls * heads * spt
    lba28 = min(sectors, 0x0FFF_FFFF)
    w[ID_CONFIG] = 0x0040                       # fixed device, bit 15 = 0: ATA
    w[ID_CYLS], w[ID_HEADS], w[ID_SECTORS] = cyls, heads, spt
    w[ID_SERNO:ID_SERNO + 10] = ata_string(serial, 10)
    w[ID_FW_REV:ID_FW_REV + 4] = ata_string(firmware, 4)
    w[ID_PROD:ID_PROD + 20] = ata_string(model, 20)
    w[ID_MAX_MULTSECT] = 0x8000 | max_multiple  # bits 15:8 = 80h
    w[ID_CAPABILITY] = CAP_LBA | CAP_IORDY | CAP_IORDY_DISABLE
    w[ID_CAPABILITY_2] = 0x4000
    w[ID_OLD_PIO_MODES] = 2 << 8
    w[ID_FIELD_VALID] = 0x0007                  # words 54-58, 64-70 and 88 are valid
    w[ID_CUR_CYLS], w[ID_CUR_HEADS], w[ID_CUR_SECTORS] = cyls, heads, spt
    w[ID_CUR_CAPACITY], w[ID_CUR_CAPACITY + 1] = chs_capacity & 0xFFFF, chs_capacity >> 16
    w[ID_MULTSECT] = (0x0100 | multiple_count) if multiple_count else 0
    w[ID_LBA_CAPACITY], w[ID_LBA_CAPACITY + 1] = lba28 & 0xFFFF, lba28 >> 16
    w[ID_MWDMA_MODES] = 0
    w[ID_PIO_MODES] = 0x0003                    # PIO 3 and 4
    w[ID_EIDE_DMA_MIN] = w[ID_EIDE_DMA_TIME] = 120
    w[ID_EIDE_PIO] = w[ID_EIDE_PIO_IORDY] = 120
    w[ID_MAJOR_VER] = 0x00F0                    # ATA-4 .. ATA/ATAPI-7
    w[ID_MINOR_VER] = 0
    w[ID_COMMAND_SET_1] = CMDSET_WCACHE
    w[ID_COMMAND_SET_2] = CMDSET2_VALID | CMDSET2_LBA48 | CMDSET2_FLUSH | CMDSET2_FLUSH_EXT
    w[ID_CFSSE] = CMDSET2_VALID
    w[ID_CFS_ENABLE_1] = CMDSET_WCACHE if write_cache else 0
    w[ID_CFS_ENABLE_2] = CMDSET2_LBA48 | CMDSET2_FLUSH | CMDSET2_FLUSH_EXT
    w[ID_CSF_DEFAULT] = CMDSET2_VALID
    w[ID_UDMA_MODES] = 0
    w[ID_HW_CONFIG] = 0x400B                    # device 0, jumper, passed diagnostics; bit 14 = 1
    for i in range(4):
        w[ID_LBA_CAPACITY_2 + i] = sectors >> (16 * i) & 0xFFFF
    # word 255: signature A5h in the low byte, and a checksum byte making all 512 bytes sum to 0 mod 256
    w[ID_CHECKSUM] = SIGNATURE
    total = sum((x & 0xFF) + (x >> 8) for x in w)
    w[ID_CHECKSUM] |= ((-total) & 0xFF) << 8
    return w


def identify_page(sectors: int, **kw) -> bytes:
    """The 512-byte page as the data port delivers it (each word little-endian)."""
    return b"".join(x.to_bytes(2, "little") for x in identify_words(sectors, **kw))
