"""ATA PIO disk on the primary channel: command block 0x1F0..+8, control block 0x3F6, IRQ 14.

Behaviour follows ATA/ATAPI-6 (T13/1410D): register descriptions in section 7, the PIO data-in and data-out
protocols in 9.5/9.6, the software reset protocol and signature in 9.2/9.12, and the single-device
configuration rules in 9.16 (device 1 absent: Status and Alternate Status read 00h when it is selected).
The register and opcode names are declared in ata_regs.py, the command set (dispatch, the non-data commands, the
setup of PIO data commands) is in ata_commands.py, the in-guest models (protocol v5) in ata_models.py, and the
IDENTIFY DEVICE page is built in ata_identify.py. This
file is the device: task file, Status and Device Control, shadows and write rules, and the PIO data path. The
model runs synchronously: a command completes, or its first DRQ block is ready, before the command write returns;
BSY is visible only while SRST is asserted.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from pvgen.devices.ata_commands import AtaCommands
from pvgen.devices.ata_models import AtaModels
from pvgen.devices.ata_regs import (   # every name, re-exported: tests and drivers of the model use ata.NAME
    ATA_REG_DATA, ATA_REG_ERR, ATA_REG_FEATURE, ATA_REG_NSECT, ATA_REG_LBAL, ATA_REG_LBAM, ATA_REG_LBAH,
    ATA_REG_DEVICE, ATA_REG_STATUS, ATA_REG_CMD, ATA_REG_ALTSTATUS, ATA_REG_CTL,
    ATA_BUSY, ATA_DRDY, ATA_DF, ATA_DSC, ATA_DRQ, ATA_ERR, ATA_IDNF, ATA_ABORTED,   # Status, Error
    ATA_NIEN, ATA_SRST, ATA_HOB, ATA_LBA, ATA_DEV1,                                 # Device Control, Device
    ATA_CMD_RESTORE, ATA_CMD_PIO_READ, ATA_CMD_PIO_READ_EXT, ATA_CMD_READ_NATIVE_MAX_EXT, ATA_CMD_READ_MULTI_EXT,
    ATA_CMD_PIO_WRITE, ATA_CMD_PIO_WRITE_EXT, ATA_CMD_WRITE_MULTI_EXT, ATA_CMD_VERIFY, ATA_CMD_VERIFY_EXT,
    ATA_CMD_EDD, ATA_CMD_INIT_DEV_PARAMS, ATA_CMD_READ_MULTI, ATA_CMD_WRITE_MULTI, ATA_CMD_SET_MULTI,
    ATA_CMD_WRITE_MULTI_FUA_EXT, ATA_CMD_STANDBYNOW1, ATA_CMD_IDLEIMMEDIATE, ATA_CMD_STANDBY, ATA_CMD_IDLE,
    ATA_CMD_CHK_POWER, ATA_CMD_FLUSH, ATA_CMD_FLUSH_EXT, ATA_CMD_ID_ATA, ATA_CMD_SET_FEATURES,
    ATA_CMD_READ_NATIVE_MAX,
    SETFEATURES_WC_ON, SETFEATURES_XFER, SETFEATURES_RA_OFF, SETFEATURES_DEFAULTS_OFF, SETFEATURES_WC_OFF,
    SETFEATURES_RA_ON, SETFEATURES_DEFAULTS_ON, XFER_PIO_0, XFER_PIO_4, MAX_MULTIPLE,
)
from pvgen.devices.diskimage import SECTOR_SIZE, DiskBackend
from pvgen.protocol import Neutral, PortClass, WriteRule


@dataclass
class AtaDisk(AtaCommands, AtaModels):
    """Device 0 of an ATA channel (device 1 absent). Host storage is the backend passed in."""

    backend: DiskBackend
    irq: Callable[[bool], None] = lambda level: None
    model: str = "PVGEN ATA DISK"
    serial: str = "PVGEN0001"
    firmware: str = "1.0"
    name: str = "ata0"
    # Task file: each of these registers is a two-deep FIFO (current, previous) for 48-bit commands.
    feature: int = 0
    hob_feature: int = 0
    nsect: int = 0
    hob_nsect: int = 0
    lbal: int = 0
    hob_lbal: int = 0
    lbam: int = 0
    hob_lbam: int = 0
    lbah: int = 0
    hob_lbah: int = 0
    device: int = 0
    status: int = 0
    error: int = 0
    devctl: int = 0
    intrq: bool = False
    multiple_count: int = MAX_MULTIPLE
    write_cache: bool = True
    pio_mode: int = 4
    # The current PIO transfer: the DRQ block buffer and what remains after it.
    buf: bytearray = field(default_factory=bytearray)
    pos: int = 0
    data_in: bool = False          # direction of the current DRQ block
    xfer_lba: int = 0              # first sector of the current block
    xfer_remaining: int = 0        # sectors left, including the current block
    xfer_block: int = 1            # sectors per DRQ block
    # Write-back (docs/devices.md, "Write-back completion"): a block the guest saw complete before it reached the
    # backend (an in-guest write window) that then failed is reported by the next FLUSH CACHE, with its address.
    fifo_epoch: int = 0            # changes whenever a DRQ block starts or a transfer ends (prefetched values die)
    readahead: tuple[int, int] | None = None   # (LBA, sectors) after the last READ MULTIPLE: read-ahead candidate
    _seq_next: int | None = None   # the LBA a READ MULTIPLE continuing the last one starts at (a sequential stream)
    _writes: int = 0               # backend writes so far (the read-ahead's bytes are read again after one)
    _ra_cache: tuple = (None, None)
    # LBAs of acknowledged write-back blocks the backend failed to write, oldest first: each FLUSH CACHE reports one
    # (8.13: the command stops at the first sector it cannot write; the next FLUSH CACHE continues)
    write_back_errors: list[int] = field(default_factory=list)
    _handout: tuple | None = None   # the last fifo_read (size, values, fifo_epoch) until the monitor's fifo_rewind
    _acknowledged: bool = False    # the block being written was acknowledged to the guest already
    metrics: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.control = AtaControl(self)
        self.reset()

    # -- reset and signature ------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Power-on: every register at its reset value, device 0 selected, the ATA signature loaded."""
        self.devctl = 0
        self.multiple_count = MAX_MULTIPLE
        self.write_cache = True
        self.pio_mode = 4
        self._signature()
        self.intrq = False
        self.update_irq()

    def _signature(self) -> None:
        """The ATA device signature after reset or EXECUTE DEVICE DIAGNOSTIC (9.12): 01h 01h 00h 00h, error 01h."""
        self._end_transfer()
        self.feature = self.hob_feature = self.hob_nsect = self.hob_lbal = self.hob_lbam = self.hob_lbah = 0
        self.nsect, self.lbal, self.lbam, self.lbah = 1, 1, 0, 0
        self.device = 0
        self.error = 0x01   # diagnostic code: device 0 passed, device 1 absent
        self.status = ATA_DRDY | ATA_DSC

    def _end_transfer(self) -> None:
        self.buf, self.pos, self.xfer_remaining = bytearray(), 0, 0
        self.fifo_epoch += 1

    # -- interrupt line ----------------------------------------------------------------------------------------

    def _dev1_selected(self) -> bool:
        return bool(self.device & ATA_DEV1)

    def update_irq(self) -> None:
        """INTRQ is driven by the selected device when nIEN is clear (7.8, 5.2.9)."""
        self.irq(self.intrq and not self.devctl & ATA_NIEN and not self._dev1_selected())

    # -- register reads ----------------------------------------------------------------------------------------

    def _status_value(self) -> int:
        return 0x00 if self._dev1_selected() else self.status

    def _peek(self, offset: int) -> int | None:
        """Task file register at offset 1..7, without side effects (None for other offsets)."""
        if offset == ATA_REG_STATUS:
            return self._status_value()
        if self.status & ATA_BUSY and 1 <= offset <= 6:
            return self.status   # while BSY, every command block register reads as Status (7.1)
        hob = bool(self.devctl & ATA_HOB)
        if offset == ATA_REG_ERR:
            return self.hob_feature if hob else self.error
        if offset == ATA_REG_NSECT:
            return self.hob_nsect if hob else self.nsect
        if offset == ATA_REG_LBAL:
            return self.hob_lbal if hob else self.lbal
        if offset == ATA_REG_LBAM:
            return self.hob_lbam if hob else self.lbam
        if offset == ATA_REG_LBAH:
            return self.hob_lbah if hob else self.lbah
        if offset == ATA_REG_DEVICE:
            return self.device
        return None

    def shadow_read(self, offset: int, size: int = 1) -> int | None:
        """A task file register without side effects (the value a SHADOW read serves); None where there is none.
        Offsets 1-6 have none while BSY (they read as Status and ignore writes) and 1-5 none while HOB is set (a
        task-file write clears HOB): then a neutral write (write_rules) can never hide a change of them."""
        if size != 1:
            return None
        if 1 <= offset <= 6 and (self.status & ATA_BUSY or offset <= 5 and self.devctl & ATA_HOB):
            return None
        return self._peek(offset)

    shadow_sizes = (1,)   # pvbatch: shadow_read has a value for byte reads only (a full refresh asks no other size)

    def shadow_block(self, bank: int | None, first: int, count: int) -> bytes | None:
        """Bulk shadow_read for pvbatch's refresh: byte i is `shadow_read(first + i, 1)`, None when one has none."""
        if bank is not None or first < 1 or count < 0 or first + count > 8:
            return None
        if count and first <= 6 and (self.status & ATA_BUSY or first <= 5 and self.devctl & ATA_HOB):
            return None
        return bytes((self.error, self.nsect, self.lbal, self.lbam, self.lbah, self.device,
                      self._status_value()))[first - 1:first - 1 + count]

    def write_rules(self) -> dict[int, WriteRule]:
        """Neutral task-file writes (docs/protocol.md, protocol v2): a runtime keeps serving shadows behind them.
        Features: no readback changes (offset 1 reads Error; with HOB set or BSY offsets 1-5 publish no shadow).
        Count, LBA low/mid/high: read back as written (their shadows exist only with BSY and HOB clear).
        Device: read back as written when the write keeps device 0 selected and device 0 is selected (so Status,
        Alternate Status and INTRQ stay as they are). Commands and Device Control are never neutral."""
        rules = {ATA_REG_FEATURE: WriteRule(Neutral.KEEP)}
        for off in (ATA_REG_NSECT, ATA_REG_LBAL, ATA_REG_LBAM, ATA_REG_LBAH):
            rules[off] = WriteRule(Neutral.SET_VALUE)
        rules[ATA_REG_DEVICE] = WriteRule(Neutral.SET_VALUE, cond_offset=ATA_REG_DEVICE, cond_mask=ATA_DEV1,
                                          cond_want=0, value_mask=ATA_DEV1, value_want=0)
        return rules

    def read_side_effects(self, offset: int) -> bool:
        """Whether a read has side effects the monitor must replay: Status acknowledges INTRQ."""
        return offset in (ATA_REG_DATA, ATA_REG_STATUS)

    def neutral_read_effects(self) -> frozenset[int]:
        """Reads whose side effect changes no shadowed register (docs/protocol.md, protocol v4): Status. Reading it
        clears the pending interrupt (7.15; only with device 0 selected, 9.16) and nothing else; INTRQ is a signal,
        not a bit of any register (Status, Alternate Status and the task file read the same before and after). The
        data port is not neutral: its reads advance the DRQ block and the last one changes Status."""
        return frozenset({ATA_REG_STATUS})

    def io_read(self, offset: int, size: int) -> int:
        if offset == ATA_REG_DATA:
            return self._data_read(size)
        ones = (1 << (8 * size)) - 1
        if size != 1:
            self.metrics["bad_size"] += 1
            return ones
        value = self._peek(offset)
        if value is None:
            self.metrics["bad_offset"] += 1
            return ones
        if offset == ATA_REG_STATUS and not self._dev1_selected():
            self.intrq = False   # reading Status acknowledges the interrupt (7.15)
            self.update_irq()
        return value

    def read_altstatus(self) -> int:
        return self._status_value()

    # -- register writes ---------------------------------------------------------------------------------------

    def io_write(self, offset: int, size: int, value: int) -> None:
        if offset == ATA_REG_DATA:
            self._data_write(size, value)
        elif size != 1:
            self.metrics["bad_size"] += 1
        elif self.status & ATA_BUSY:
            self.metrics["write_while_busy"] += 1   # ignored while BSY=1 (7.1)
        elif 1 <= offset <= 7:
            self.devctl &= ~ATA_HOB   # a write to any command block register clears HOB (7.8)
            value &= 0xFF
            if offset == ATA_REG_FEATURE:
                self.hob_feature, self.feature = self.feature, value
            elif offset == ATA_REG_NSECT:
                self.hob_nsect, self.nsect = self.nsect, value
            elif offset == ATA_REG_LBAL:
                self.hob_lbal, self.lbal = self.lbal, value
            elif offset == ATA_REG_LBAM:
                self.hob_lbam, self.lbam = self.lbam, value
            elif offset == ATA_REG_LBAH:
                self.hob_lbah, self.lbah = self.lbah, value
            elif offset == ATA_REG_DEVICE:
                self.device = value
            else:
                self._command(value)
        else:
            self.metrics["bad_offset"] += 1
        self.update_irq()

    def write_devctl(self, value: int) -> None:
        """Device Control (7.8): nIEN, SRST (reset on the 1 -> 0 edge), HOB."""
        old = self.devctl
        self.devctl = value & (ATA_HOB | ATA_SRST | ATA_NIEN)
        if value & ATA_SRST and not old & ATA_SRST:
            self._end_transfer()
            self.status = ATA_BUSY
            self.intrq = False
        elif old & ATA_SRST and not value & ATA_SRST:
            self._signature()   # also selects device 0
            self.intrq = False
        self.update_irq()

    # -- data port ---------------------------------------------------------------------------------------------

    def _data_read(self, size: int) -> int:
        pos = self.pos
        if (size == 2 or size == 4) and self.data_in and self.status & ATA_DRQ and not self.device & ATA_DEV1 \
                and pos + size < len(self.buf):
            self.pos = pos + size   # fast path inside a block: nothing but the position changes
            return int.from_bytes(self.buf[pos:pos + size], "little")
        ones = (1 << (8 * size)) - 1
        if size not in (2, 4):
            self.metrics["bad_size"] += 1
            return ones
        if self._dev1_selected() or not (self.status & ATA_DRQ and self.data_in):
            self.metrics["data_read_without_drq"] += 1
            return ones
        take = min(size, len(self.buf) - self.pos)
        if take < size:
            self.metrics["data_past_block"] += 1
        value = int.from_bytes(self.buf[self.pos:self.pos + take], "little") | (ones & ~((1 << (8 * take)) - 1))
        self.pos += take
        if self.pos >= len(self.buf):
            self._block_done()
        self.update_irq()
        return value

    def _data_write(self, size: int, value: int) -> None:
        pos = self.pos
        if (size == 2 or size == 4) and not self.data_in and self.status & ATA_DRQ and not self.device & ATA_DEV1 \
                and pos + size < len(self.buf):
            self.buf[pos:pos + size] = value.to_bytes(size, "little")   # fast path inside a block
            self.pos = pos + size
            return
        if size not in (2, 4):
            self.metrics["bad_size"] += 1
            return
        if self._dev1_selected() or not (self.status & ATA_DRQ and not self.data_in):
            self.metrics["data_write_without_drq"] += 1
            return
        take = min(size, len(self.buf) - self.pos)
        if take < size:
            self.metrics["data_past_block"] += 1
        self.buf[self.pos:self.pos + take] = value.to_bytes(size, "little")[:take]
        self.pos += take
        if self.pos >= len(self.buf):
            self._block_done()
        self.update_irq()

    def fifo_read(self, offset: int, size: int, max_count: int) -> list[int]:
        """Up to max_count data reads the guest is certain to make next (the monitor's prefetch): never from a block
        the guest has not started reading (the guest may check Status before a block, docs/protocol.md) and never
        the block's last element, whose read ends the block (DRQ clears, the next block raises INTRQ): Status
        and INTRQ change when the guest makes that read, not before. read_many serves an `ins`."""
        if offset != ATA_REG_DATA or size not in (2, 4) or self._dev1_selected() or self.pos == 0 \
                or not (self.status & ATA_DRQ and self.data_in):
            return []
        n = min(max_count, (len(self.buf) - self.pos - 1) // size)   # pos stays inside the block
        if n <= 0:
            return []
        # in bulk: the same values and side effects as n io_reads inside the block (only the position moves)
        values = list(struct.unpack_from(f"<{n}{'H' if size == 2 else 'I'}", self.buf, self.pos))
        self.pos += n * size
        self._handout = (size, n, self.fifo_epoch)
        return values

    def fifo_rewind(self, unread: int) -> None:
        """The monitor's word at the next flush: the guest did not read the last `unread` values fifo_read handed;
        the block position goes back to the guest's (a read of another size, or with device 1 selected, then sees
        what the device holds there).  Nothing to give back when the transfer changed since (fifo_epoch)."""
        h, self._handout = self._handout, None
        if h is not None and 0 < unread <= h[1] and h[2] == self.fifo_epoch:
            self.pos -= unread * h[0]

    def read_many(self, offset: int, size: int, count: int) -> bytes:
        """count data-port reads (an `ins` the guest executes), in bulk, as little-endian bytes: the same values and
        effects as that many io_reads. Unlike fifo_read it crosses DRQ blocks: the guest asked for every value."""
        out = bytearray()
        want = count * size
        while len(out) < want:
            room = len(self.buf) - self.pos
            if (offset != ATA_REG_DATA or size not in (2, 4) or self._dev1_selected() or room < size
                    or not (self.status & ATA_DRQ and self.data_in)):
                out += (self.io_read(offset, size) & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
                continue
            take = min(room - room % size, want - len(out))
            out += self.buf[self.pos:self.pos + take]
            self.pos += take
            if self.pos >= len(self.buf):
                self._block_done()
        self.update_irq()
        return bytes(out)

    def write_many(self, offset: int, size: int, data: bytes) -> None:
        """len(data) // size data-port writes (an `outs`), in bulk: the same effects as that many io_writes."""
        i, n = 0, len(data) - len(data) % size
        while i < n:
            room = len(self.buf) - self.pos
            if (offset != ATA_REG_DATA or size not in (2, 4) or self._dev1_selected() or room < size
                    or not (self.status & ATA_DRQ and not self.data_in)):
                self.io_write(offset, size, int.from_bytes(data[i:i + size], "little"))
                i += size
                continue
            take = min(room - room % size, n - i)
            self.buf[self.pos:self.pos + take] = data[i:i + take]
            self.pos += take
            i += take
            if self.pos >= len(self.buf):
                self._block_done()
        self.update_irq()

    def words_left_in_block(self) -> int:
        """16-bit words that remain in the current DRQ block (0 when no data transfer is pending)."""
        return (len(self.buf) - self.pos) // 2 if self.status & ATA_DRQ else 0

    # -- DRQ blocks (the commands that start them are in ata_commands.py) ------------------------------------

    def _start_block(self, page: bytearray | None, *, data_in: bool, lba: int, remaining: int,
                     block: int) -> None:
        """Enter the DRQ state for the first block: data-in raises INTRQ now, data-out waits for the data."""
        self.data_in, self.xfer_lba, self.xfer_remaining, self.xfer_block = data_in, lba, remaining, block
        self.error = 0
        if page is not None:
            self.buf, self.pos = page, 0
            self.fifo_epoch += 1
            self.status = ATA_DRDY | ATA_DSC | ATA_DRQ
            self.intrq = True
            return
        self._load_block()
        if data_in:
            self.intrq = True

    def _load_block(self) -> None:
        n = min(self.xfer_block, self.xfer_remaining)
        self.pos = 0
        self.fifo_epoch += 1
        if self.data_in:
            try:
                self.buf = bytearray(self.backend.read(self.xfer_lba, n))
            except OSError:
                self._abort("backend_error")
                return
        else:
            self.buf = bytearray(n * SECTOR_SIZE)
        self.status = ATA_DRDY | ATA_DSC | ATA_DRQ

    def _block_done(self) -> None:
        """The guest moved the last byte of a DRQ block (9.5 / 9.6)."""
        n = len(self.buf) // SECTOR_SIZE or 1
        if not self.data_in:
            self._writes += 1
            try:
                self.backend.write(self.xfer_lba, bytes(self.buf))
            except OSError:
                if not self._acknowledged:
                    self._abort("backend_error")
                    return
                # the guest saw this block complete (write-back): it completes as it did, and the next FLUSH CACHE
                # reports the first failed sector, as a drive's write cache does
                self.metrics["write_back_error"] += 1
                self.write_back_errors.append(self.xfer_lba)
        self.xfer_lba += n
        self.xfer_remaining -= n
        if self.xfer_remaining > 0:
            self._load_block()
            self.intrq = True
        elif self.data_in:
            self._end_transfer()
            self.status = ATA_DRDY | ATA_DSC   # data-in: no interrupt after the last block
        else:
            self._complete()

    # -- port classes (DESIGN.md batch protocol; docs/devices.md explains each choice) ----------------------

    def port_classes(self) -> dict[int, tuple[PortClass, PortClass]]:
        classes = {ATA_REG_DATA: (PortClass.FIFO, PortClass.POSTED)}
        for off in (ATA_REG_FEATURE, ATA_REG_NSECT, ATA_REG_LBAL, ATA_REG_LBAM, ATA_REG_LBAH, ATA_REG_DEVICE):
            classes[off] = (PortClass.SHADOW, PortClass.POSTED)   # side-effect-free reads: shadowed too
        classes[ATA_REG_STATUS] = (PortClass.SHADOW, PortClass.DOORBELL)
        return classes


@dataclass
class AtaControl:
    """The control block port (0x3F6) of a channel: Alternate Status / Device Control."""

    disk: AtaDisk
    name: str = "ata0-ctl"

    def reset(self) -> None:
        self.disk.reset()

    def update_irq(self) -> None:
        self.disk.update_irq()

    def io_read(self, offset: int, size: int) -> int:
        if offset != ATA_REG_ALTSTATUS or size != 1:
            self.disk.metrics["bad_size" if offset == 0 else "bad_offset"] += 1
            return (1 << (8 * size)) - 1
        return self.disk.read_altstatus()   # does not acknowledge the interrupt

    def io_write(self, offset: int, size: int, value: int) -> None:
        if offset != ATA_REG_CTL or size != 1:
            self.disk.metrics["bad_size" if offset == 0 else "bad_offset"] += 1
            self.update_irq()
            return
        self.disk.write_devctl(value)

    def shadow_read(self, offset: int, size: int = 1) -> int | None:
        if offset == ATA_REG_ALTSTATUS and size == 1:
            return self.disk.read_altstatus()
        return None

    def read_side_effects(self, offset: int) -> bool:
        return False   # Alternate Status never acknowledges the interrupt

    def latches(self) -> dict[int, int]:
        """Device Control (write-only, 7.8) for the disk's command rules (nIEN); its writes are doorbells, so the
        guest's copy is the device's between two flushes."""
        return {ATA_REG_CTL: self.disk.devctl}

    def port_classes(self) -> dict[int, tuple[PortClass, PortClass]]:
        return {ATA_REG_ALTSTATUS: (PortClass.SHADOW, PortClass.DOORBELL)}


ATA_PRIMARY_CMD = 0x1F0
ATA_PRIMARY_CTL = 0x3F6
ATA_PRIMARY_IRQ = 14


def attach_primary(bus, disk: AtaDisk) -> None:
    """Register disk on the legacy primary channel: 0x1F0..+8 and 0x3F6..+1."""
    bus.register(ATA_PRIMARY_CMD, 8, disk)
    bus.register(ATA_PRIMARY_CTL, 1, disk.control)
