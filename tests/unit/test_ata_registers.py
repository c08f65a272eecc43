"""ATA disk model, register level: IDENTIFY, PIO protocols, SRST signature, errors, guest mistakes (ATA/ATAPI-6)."""

from __future__ import annotations

import pytest

from pvgen.devices import ata as A
from pvgen.devices.ata_identify import ata_string
from pvgen.devices.bus import PortBus
from pvgen.devices.diskimage import DiskImage, MemoryDisk
from pvgen.protocol import PortClass

SECTORS = 70_000   # > 65536 so LBA28 and a 2-word capacity matter


class Irq:
    def __init__(self) -> None:
        self.level = False
        self.edges = 0

    def __call__(self, level: bool) -> None:
        if level and not self.level:
            self.edges += 1
        self.level = level


def make(sectors: int = SECTORS):
    irq = Irq()
    disk = MemoryDisk(sectors)
    dev = A.AtaDisk(disk, irq=irq)
    bus = PortBus()
    A.attach_primary(bus, dev)
    return bus, dev, disk, irq


def status(bus) -> int:
    return bus.read(0x1F7, 1)


def altstatus(bus) -> int:
    return bus.read(0x3F6, 1)


def taskfile(bus, *, lba: int, count: int, lba48: bool = False, feature: int = 0) -> None:
    if lba48:
        bus.write(0x1F1, 1, 0)
        bus.write(0x1F2, 1, count >> 8 & 0xFF)
        bus.write(0x1F3, 1, lba >> 24 & 0xFF)
        bus.write(0x1F4, 1, lba >> 32 & 0xFF)
        bus.write(0x1F5, 1, lba >> 40 & 0xFF)
        dev = A.ATA_LBA
    else:
        dev = A.ATA_LBA | (lba >> 24 & 0x0F)
    bus.write(0x1F1, 1, feature)
    bus.write(0x1F2, 1, count & 0xFF)
    bus.write(0x1F3, 1, lba & 0xFF)
    bus.write(0x1F4, 1, lba >> 8 & 0xFF)
    bus.write(0x1F5, 1, lba >> 16 & 0xFF)
    bus.write(0x1F6, 1, 0xA0 | dev)


def read_words(bus, n: int) -> bytes:
    return b"".join(bus.read(0x1F0, 2).to_bytes(2, "little") for _ in range(n))


def identify(bus) -> list[int]:
    bus.write(0x1F7, 1, A.ATA_CMD_ID_ATA)
    assert status(bus) & A.ATA_DRQ
    raw = read_words(bus, 256)
    return [int.from_bytes(raw[i:i + 2], "little") for i in range(0, 512, 2)]


def test_identify_capacity_lba48_multiple_checksum():
    bus, dev, _, irq = make()
    w = identify(bus)
    assert w[0] & 0x8000 == 0                       # ATA device
    assert w[49] & (1 << 9)                         # LBA supported
    assert w[60] | w[61] << 16 == SECTORS           # LBA28 capacity, words 60-61
    assert (w[83] & 0xC000) == 0x4000 and w[83] & (1 << 10)  # LBA48 supported, word 83 valid
    assert w[86] & (1 << 10) and w[83] & (1 << 12) and w[83] & (1 << 13)
    assert sum(w[100 + i] << (16 * i) for i in range(4)) == SECTORS
    assert w[47] >> 8 == 0x80 and w[47] & 0xFF == A.MAX_MULTIPLE
    assert w[59] & 0x100 and w[59] & 0xFF == A.MAX_MULTIPLE
    assert w[53] & 0x2 and w[64] & 0x3             # PIO 3/4 advertised in word 64 (valid per word 53)
    assert w[93] != 0                               # not mistaken for SATA by Linux
    assert w[255] & 0xFF == 0xA5
    assert sum((x & 0xFF) + (x >> 8) for x in w) % 256 == 0
    assert w[27:47] == ata_string("PVGEN ATA DISK", 20)
    assert status(bus) == A.ATA_DRDY | A.ATA_DSC    # no DRQ after the page


def test_identify_capacity_beyond_lba28_is_clamped(tmp_path):
    image = DiskImage(tmp_path / "big.img", create_sectors=0x1000_0000 + 5)   # sparse file, 128 GiB
    bus = PortBus()
    A.attach_primary(bus, A.AtaDisk(image))
    w = identify(bus)
    image.close()
    assert w[60] | w[61] << 16 == 0x0FFF_FFFF
    assert sum(w[100 + i] << (16 * i) for i in range(4)) == 0x1000_0005


def test_read_sectors_drq_blocks_and_interrupts():
    bus, dev, disk, irq = make()
    disk.data[5 * 512:8 * 512] = bytes(range(256)) * 6
    taskfile(bus, lba=5, count=3)
    bus.write(0x1F7, 1, A.ATA_CMD_PIO_READ)
    for sector in range(3):
        assert irq.level, "INTRQ pending for every data-in block"
        assert altstatus(bus) & A.ATA_DRQ and irq.level   # alternate status does not acknowledge
        st = status(bus)
        assert st == A.ATA_DRDY | A.ATA_DSC | A.ATA_DRQ and not irq.level  # status acknowledges
        assert read_words(bus, 256) == bytes(disk.data[(5 + sector) * 512:(6 + sector) * 512])
    assert status(bus) == A.ATA_DRDY | A.ATA_DSC
    assert not irq.level


def test_write_sectors_data_out_protocol():
    bus, dev, disk, irq = make()
    taskfile(bus, lba=10, count=2)
    bus.write(0x1F7, 1, A.ATA_CMD_PIO_WRITE)
    assert altstatus(bus) & A.ATA_DRQ and not irq.level   # first data-out block: no interrupt
    for i in range(256):
        bus.write(0x1F0, 2, 0x1100 + i)
    assert irq.level and status(bus) & A.ATA_DRQ          # second block requested with an interrupt
    for i in range(128):
        bus.write(0x1F0, 4, 0xAABBCCDD)                   # 32-bit PIO (ata_sff_data_xfer32)
    assert irq.level and status(bus) == A.ATA_DRDY | A.ATA_DSC
    assert disk.data[10 * 512:10 * 512 + 4] == bytes([0x00, 0x11, 0x01, 0x11])
    assert disk.data[11 * 512:12 * 512] == bytes.fromhex("ddccbbaa") * 128


def test_read_multiple_ext_blocks_of_multiple_count():
    bus, dev, disk, irq = make()
    bus.write(0x1F2, 1, 4)
    bus.write(0x1F7, 1, A.ATA_CMD_SET_MULTI)
    assert status(bus) == A.ATA_DRDY | A.ATA_DSC
    disk.data[:10 * 512] = bytes(i % 251 for i in range(10 * 512))
    taskfile(bus, lba=0, count=10, lba48=True)
    bus.write(0x1F7, 1, A.ATA_CMD_READ_MULTI_EXT)
    got = b""
    blocks = 0
    while status(bus) & A.ATA_DRQ:
        left = dev.words_left_in_block()
        assert left in (4 * 256, 2 * 256)
        assert dev.fifo_read(0, 4, 10_000) == []                  # no prefetch of a block not started
        got += bus.read(0x1F0, 4).to_bytes(4, "little")             # the guest starts it
        got += b"".join(v.to_bytes(4, "little") for v in dev.fifo_read(0, 4, 10_000))
        assert status(bus) & A.ATA_DRQ and dev.words_left_in_block() == 2   # all but the block's last read
        got += bus.read(0x1F0, 4).to_bytes(4, "little")             # which the guest makes itself
        blocks += 1
    assert blocks == 3 and got == bytes(disk.data[:10 * 512])


def test_lba48_address_and_count_use_hob_bytes(tmp_path):
    image = DiskImage(tmp_path / "big.img", create_sectors=1 << 25)   # sparse, 16 GiB
    dev = A.AtaDisk(image)
    bus = PortBus()
    A.attach_primary(bus, dev)
    lba = 0x1AB_CDEF
    taskfile(bus, lba=lba, count=0x0101, lba48=True)
    assert (dev.hob_nsect, dev.nsect) == (1, 1)
    bus.write(0x3F6, 1, A.ATA_HOB)
    assert bus.read(0x1F3, 1) == lba >> 24 & 0xFF and bus.read(0x1F2, 1) == 1
    bus.write(0x3F6, 1, 0)
    bus.write(0x1F7, 1, A.ATA_CMD_PIO_READ_EXT)
    assert dev.xfer_lba == lba and dev.xfer_remaining == 0x101


def test_lba_past_end_is_idnf_and_unknown_command_abrt():
    bus, dev, disk, irq = make(sectors=100)
    taskfile(bus, lba=99, count=2)
    bus.write(0x1F7, 1, A.ATA_CMD_PIO_READ)
    assert status(bus) == A.ATA_DRDY | A.ATA_DSC | A.ATA_ERR
    assert bus.read(0x1F1, 1) == A.ATA_IDNF
    bus.write(0x1F7, 1, 0x5A)
    assert status(bus) & A.ATA_ERR and bus.read(0x1F1, 1) == A.ATA_ABORTED
    assert dev.metrics["unknown_command"] == 1 and dev.metrics["lba_out_of_range"] == 1


def test_flush_setfeatures_and_power_commands():
    bus, dev, disk, irq = make()
    for cmd in (A.ATA_CMD_FLUSH, A.ATA_CMD_FLUSH_EXT):
        bus.write(0x1F7, 1, cmd)
        assert status(bus) == A.ATA_DRDY | A.ATA_DSC
    assert disk.flushes == 2
    taskfile(bus, lba=0, count=A.XFER_PIO_4, feature=A.SETFEATURES_XFER)
    bus.write(0x1F7, 1, A.ATA_CMD_SET_FEATURES)
    assert status(bus) == A.ATA_DRDY | A.ATA_DSC and dev.pio_mode == 4
    taskfile(bus, lba=0, count=0x45, feature=A.SETFEATURES_XFER)   # UDMA5: no DMA here
    bus.write(0x1F7, 1, A.ATA_CMD_SET_FEATURES)
    assert status(bus) & A.ATA_ERR
    bus.write(0x1F7, 1, A.ATA_CMD_IDLEIMMEDIATE)
    assert status(bus) == A.ATA_DRDY | A.ATA_DSC
    bus.write(0x1F7, 1, A.ATA_CMD_CHK_POWER)
    assert status(bus) == A.ATA_DRDY | A.ATA_DSC and bus.read(0x1F2, 1) == 0xFF


def test_srst_signature_and_busy_while_asserted():
    bus, dev, disk, irq = make()
    bus.write(0x1F6, 1, 0xA0)
    bus.write(0x1F2, 1, 0x55)
    bus.write(0x3F6, 1, A.ATA_SRST)
    assert status(bus) & A.ATA_BUSY and altstatus(bus) & A.ATA_BUSY
    bus.write(0x1F7, 1, A.ATA_CMD_ID_ATA)                 # a command while BSY: ignored, counted
    assert dev.metrics["write_while_busy"] == 1
    bus.write(0x3F6, 1, 0)
    assert status(bus) == A.ATA_DRDY | A.ATA_DSC
    # ATA signature: count 01h, LBA low 01h, mid 00h, high 00h; error 01h (diagnostics passed)
    assert [bus.read(0x1F0 + r, 1) for r in (1, 2, 3, 4, 5)] == [0x01, 0x01, 0x01, 0x00, 0x00]
    assert bus.read(0x1F6, 1) & A.ATA_DEV1 == 0


def test_device1_absent_reads_zero_status_and_ignores_commands():
    bus, dev, disk, irq = make()
    bus.write(0x1F6, 1, 0xA0 | A.ATA_DEV1)
    assert status(bus) == 0x00 and altstatus(bus) == 0x00   # 9.16: device 0 answers 00h for device 1
    bus.write(0x1F2, 1, 0x55)
    assert bus.read(0x1F2, 1) == 0x55                       # writes reach the shared task file
    bus.write(0x1F7, 1, A.ATA_CMD_ID_ATA)
    assert dev.metrics["command_to_absent_device"] == 1
    bus.write(0x1F6, 1, 0xA0)
    assert not status(bus) & A.ATA_DRQ


def test_nien_masks_intrq():
    bus, dev, disk, irq = make()
    bus.write(0x3F6, 1, A.ATA_NIEN)
    bus.write(0x1F7, 1, A.ATA_CMD_FLUSH)
    assert not irq.level and dev.intrq
    bus.write(0x3F6, 1, 0)
    assert irq.level
    status(bus)
    assert not irq.level


@pytest.mark.parametrize("port,size", [(0x1F7, 2), (0x1F2, 4), (0x1F0, 1), (0x3F6, 2)])
def test_wrong_access_size_counted_and_ignored(port, size):
    bus, dev, disk, irq = make()
    before = (dev.nsect, dev.status, dev.devctl)
    assert bus.read(port, size) == (1 << (8 * size)) - 1
    bus.write(port, size, 0x1234)
    assert (dev.nsect, dev.status, dev.devctl) == before
    assert dev.metrics["bad_size"] == 2


def test_data_without_drq_and_past_block_counted():
    bus, dev, disk, irq = make()
    assert bus.read(0x1F0, 2) == 0xFFFF
    bus.write(0x1F0, 2, 1)
    assert dev.metrics["data_read_without_drq"] == 1 and dev.metrics["data_write_without_drq"] == 1
    taskfile(bus, lba=0, count=0)   # count 0 means 256 sectors
    bus.write(0x1F7, 1, A.ATA_CMD_PIO_READ)
    assert dev.xfer_remaining == 256


def test_port_classes_and_shadow_fifo_contract():
    bus, dev, disk, irq = make()
    cls = bus.class_map()
    assert cls[0x1F7] == (PortClass.SHADOW, PortClass.DOORBELL)
    assert cls[0x3F6] == (PortClass.SHADOW, PortClass.DOORBELL)
    assert cls[0x1F0][0] == PortClass.FIFO
    for port in range(0x1F1, 0x1F7):
        assert cls[port][1] == PortClass.POSTED
    disk.data[:512] = bytes(range(256)) * 2
    taskfile(bus, lba=0, count=1)
    bus.write(0x1F7, 1, A.ATA_CMD_PIO_READ)
    assert dev.shadow_read(7) == status(bus) == dev.shadow_read(7)   # shadow_read has no side effect
    assert dev.read_side_effects(7) and not dev.control.read_side_effects(0)
    assert dev.fifo_read(0, 2, 10) == [] and dev.words_left_in_block() == 256   # the guest has not started
    assert bus.read(0x1F0, 2) == 0x0100
    first = dev.fifo_read(0, 2, 10)
    assert len(first) == 10 and dev.words_left_in_block() == 245
    rest = dev.fifo_read(0, 2, 1000)
    assert len(rest) == 244                                          # never the DRQ block's last word
    assert dev.fifo_read(0, 2, 10) == [] and dev.shadow_read(7) & A.ATA_DRQ   # so DRQ is still shown
    assert bus.read(0x1F0, 2) == 0xFFFE and not dev.shadow_read(7) & A.ATA_DRQ   # the guest's read ends it
    assert dev.shadow_read(7, 2) is None


def _devchk(bus, device: int) -> bool:
    """ata_devchk: select, write 55/aa patterns to nsect/lbal, read them back."""
    bus.write(0x1F6, 1, 0xA0 | (A.ATA_DEV1 if device else 0))
    altstatus(bus)
    for a, b in ((0x55, 0xAA), (0xAA, 0x55), (0x55, 0xAA)):
        bus.write(0x1F2, 1, a)
        bus.write(0x1F3, 1, b)
    return (bus.read(0x1F2, 1), bus.read(0x1F3, 1)) == (0x55, 0xAA)


def _classify(bus, device: int) -> tuple[str, int]:
    """ata_sff_dev_classify + ata_port_classify for an SFF port, as in libata 6.1."""
    bus.write(0x1F6, 1, 0xA0 | (A.ATA_DEV1 if device else 0))
    st_ = status(bus)
    err, nsect, lbal, lbam, lbah = (bus.read(0x1F0 + r, 1) for r in (1, 2, 3, 4, 5))
    if err not in (0, 1) and not (device == 0 and err == 0x81):
        return "none", err
    if (lbam, lbah) == (0, 0):
        return ("ata" if status(bus) != 0 else "none"), err
    return "unknown", err


def test_libata_softreset_probe_finds_one_ata_disk():
    bus, dev, disk, irq = make()
    devmask = _devchk(bus, 0) | _devchk(bus, 1) << 1
    bus.write(0x1F6, 1, 0xA0)
    ctl = 0x08
    bus.write(0x3F6, 1, ctl)
    bus.write(0x3F6, 1, ctl | A.ATA_SRST)
    bus.write(0x3F6, 1, ctl)
    assert not status(bus) & A.ATA_BUSY                       # ata_sff_wait_ready on the master
    if devmask & 2:
        bus.write(0x1F6, 1, 0xB0)
        assert (bus.read(0x1F2, 1), bus.read(0x1F3, 1)) == (1, 1)
        assert not status(bus) & A.ATA_BUSY                   # 00h: "ready" for an absent device 1
    cls0, err = _classify(bus, 0)
    assert cls0 == "ata" and err == 0x01
    cls1, _ = _classify(bus, 1)
    assert cls1 == "none"
