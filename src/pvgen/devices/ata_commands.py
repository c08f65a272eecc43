"""The ATA command set of AtaDisk: command dispatch, the non-data commands, PIO data command setup, errors."""

from __future__ import annotations

from pvgen.devices.ata_identify import HEADS, SECTORS_PER_TRACK, identify_page
from pvgen.devices.ata_regs import (
    ATA_DRDY, ATA_DSC, ATA_DRQ, ATA_ERR, ATA_IDNF, ATA_ABORTED, ATA_LBA, ATA_CMD_RESTORE, ATA_CMD_PIO_READ,
    ATA_CMD_PIO_READ_EXT, ATA_CMD_READ_NATIVE_MAX_EXT, ATA_CMD_READ_MULTI_EXT, ATA_CMD_PIO_WRITE,
    ATA_CMD_PIO_WRITE_EXT, ATA_CMD_WRITE_MULTI_EXT, ATA_CMD_VERIFY, ATA_CMD_VERIFY_EXT, ATA_CMD_EDD,
    ATA_CMD_INIT_DEV_PARAMS, ATA_CMD_READ_MULTI, ATA_CMD_WRITE_MULTI, ATA_CMD_SET_MULTI, ATA_CMD_WRITE_MULTI_FUA_EXT,
    ATA_CMD_STANDBYNOW1, ATA_CMD_IDLEIMMEDIATE, ATA_CMD_STANDBY, ATA_CMD_IDLE, ATA_CMD_CHK_POWER, ATA_CMD_FLUSH,
    ATA_CMD_FLUSH_EXT, ATA_CMD_ID_ATA, ATA_CMD_SET_FEATURES, ATA_CMD_READ_NATIVE_MAX, SETFEATURES_WC_ON,
    SETFEATURES_XFER, SETFEATURES_RA_OFF, SETFEATURES_DEFAULTS_OFF, SETFEATURES_WC_OFF, SETFEATURES_RA_ON,
    SETFEATURES_DEFAULTS_ON, XFER_PIO_0, XFER_PIO_4, MAX_MULTIPLE,
)

# (read?, 48-bit?, multiple?) for each PIO data command
_RW_COMMANDS = {
    ATA_CMD_PIO_READ: (True, False, False), ATA_CMD_PIO_READ_EXT: (True, True, False),
    ATA_CMD_READ_MULTI: (True, False, True), ATA_CMD_READ_MULTI_EXT: (True, True, True),
    ATA_CMD_PIO_WRITE: (False, False, False), ATA_CMD_PIO_WRITE_EXT: (False, True, False),
    ATA_CMD_WRITE_MULTI: (False, False, True), ATA_CMD_WRITE_MULTI_EXT: (False, True, True),
    ATA_CMD_WRITE_MULTI_FUA_EXT: (False, True, True),
}
_NOOP_COMMANDS = {ATA_CMD_RESTORE, ATA_CMD_INIT_DEV_PARAMS, ATA_CMD_STANDBYNOW1, ATA_CMD_IDLEIMMEDIATE,
                  ATA_CMD_STANDBY, ATA_CMD_IDLE}


class AtaCommands:
    """The command register (7.15) and what each command does (ATA/ATAPI-6 section 8), as AtaDisk methods: a
    mixin with no state of its own (the task file and the transfer fields are AtaDisk's, in ata.py)."""

    def _complete(self, error: int = 0) -> None:
        self._end_transfer()
        self.error = error
        self.status = ATA_DRDY | ATA_DSC | (ATA_ERR if error else 0)
        self.intrq = True

    def _abort(self, why: str) -> None:
        self.metrics[why] += 1
        self._complete(ATA_ABORTED)

    def _command(self, cmd: int) -> None:
        if self._dev1_selected():
            self.metrics["command_to_absent_device"] += 1   # device 0 ignores commands for device 1 (9.16)
            return
        if self.status & ATA_DRQ:
            self.metrics["command_during_drq"] += 1   # the transfer in progress is abandoned
            self._end_transfer()
        self.metrics[f"cmd_{cmd:02x}"] += 1
        if cmd in _RW_COMMANDS:
            self._start_rw(cmd, *_RW_COMMANDS[cmd])
        elif cmd == ATA_CMD_ID_ATA:
            page = identify_page(self.backend.sectors, model=self.model, serial=self.serial,
                                 firmware=self.firmware, multiple_count=self.multiple_count,
                                 write_cache=self.write_cache, pio_mode=self.pio_mode)
            self._start_block(bytearray(page), data_in=True, lba=0, remaining=1, block=1)
        elif cmd == ATA_CMD_SET_MULTI:
            n = self.nsect
            if n == 0 or (n <= MAX_MULTIPLE and n & (n - 1) == 0):
                self.multiple_count = n
                self._complete()
            else:
                self._abort("bad_multiple_count")
        elif cmd == ATA_CMD_SET_FEATURES:
            self._set_features()
        elif cmd in (ATA_CMD_FLUSH, ATA_CMD_FLUSH_EXT):
            try:
                self.backend.flush()
            except OSError:
                self._abort("backend_error")
                return
            if self.write_back_errors:
                self._flush_error(cmd == ATA_CMD_FLUSH_EXT)
                return
            self._complete()
        elif cmd == ATA_CMD_CHK_POWER:
            self._complete()
            self.nsect = 0xFF   # active or idle
        elif cmd in _NOOP_COMMANDS:
            self._complete()
        elif cmd in (ATA_CMD_VERIFY, ATA_CMD_VERIFY_EXT):
            lba, count = self._address(cmd == ATA_CMD_VERIFY_EXT)
            if lba is None or lba + count > self.backend.sectors:
                self._idnf()
            else:
                self._complete()
        elif cmd in (ATA_CMD_READ_NATIVE_MAX, ATA_CMD_READ_NATIVE_MAX_EXT):
            self._read_native_max(cmd == ATA_CMD_READ_NATIVE_MAX_EXT)
        elif cmd == ATA_CMD_EDD:
            self._signature()
            self.intrq = True
        else:
            self._abort("unknown_command")

    def _set_features(self) -> None:
        sub = self.feature
        if sub == SETFEATURES_XFER:
            mode = self.nsect
            if mode in (0x00, 0x01):
                self.pio_mode = 2   # PIO default mode
            elif XFER_PIO_0 <= mode <= XFER_PIO_4:
                self.pio_mode = mode - XFER_PIO_0
            else:
                self._abort("unsupported_transfer_mode")   # no DMA modes
                return
        elif sub in (SETFEATURES_WC_ON, SETFEATURES_WC_OFF):
            self.write_cache = sub == SETFEATURES_WC_ON
        elif sub not in (SETFEATURES_RA_ON, SETFEATURES_RA_OFF, SETFEATURES_DEFAULTS_ON, SETFEATURES_DEFAULTS_OFF):
            self._abort("unknown_feature")
            return
        self._complete()

    def _address(self, lba48: bool) -> tuple[int | None, int]:
        """(first LBA, sector count) from the task file; LBA None for an invalid CHS address."""
        if lba48:
            lba = (self.hob_lbah << 40 | self.hob_lbam << 32 | self.hob_lbal << 24
                   | self.lbah << 16 | self.lbam << 8 | self.lbal)
            count = (self.hob_nsect << 8 | self.nsect) or 65536
            return lba, count
        count = self.nsect or 256
        if self.device & ATA_LBA:
            return (self.device & 0x0F) << 24 | self.lbah << 16 | self.lbam << 8 | self.lbal, count
        cyl, head, sector = self.lbah << 8 | self.lbam, self.device & 0x0F, self.lbal
        if sector == 0 or sector > SECTORS_PER_TRACK:
            return None, count
        return (cyl * HEADS + head) * SECTORS_PER_TRACK + sector - 1, count

    def _idnf(self) -> None:
        self.metrics["lba_out_of_range"] += 1
        self._complete(ATA_IDNF)

    def _flush_error(self, lba48: bool) -> None:
        """FLUSH CACHE (EXT) after write-back blocks failed (8.13, 8.14): the command ends with ERR, ABRT, and the
        address of the first sector that could not be written in the LBA registers; that error is then forgotten (a
        drive drops the sector from its cache) and the next FLUSH CACHE goes on, reporting the next failed block."""
        lba = self.write_back_errors.pop(0)
        self.metrics["flush_reported_write_error"] += 1
        self._complete(ATA_ABORTED)
        self.lbal, self.lbam, self.lbah = lba & 0xFF, lba >> 8 & 0xFF, lba >> 16 & 0xFF
        if lba48:
            self.hob_lbal, self.hob_lbam, self.hob_lbah = lba >> 24 & 0xFF, lba >> 32 & 0xFF, lba >> 40 & 0xFF
        else:
            self.device = (self.device & 0xF0) | (lba >> 24 & 0x0F)

    def _read_native_max(self, lba48: bool) -> None:
        top = max(self.backend.sectors - 1, 0)
        self._complete()
        self.lbal, self.lbam, self.lbah = top & 0xFF, top >> 8 & 0xFF, top >> 16 & 0xFF
        if lba48:
            self.hob_lbal, self.hob_lbam, self.hob_lbah = top >> 24 & 0xFF, top >> 32 & 0xFF, top >> 40 & 0xFF
        else:
            self.device = (self.device & 0xF0) | (top >> 24 & 0x0F)

    def _start_rw(self, cmd: int, read: bool, lba48: bool, multiple: bool) -> None:
        if multiple and self.multiple_count == 0:
            self._abort("multiple_not_set")
            return
        if not read and getattr(self.backend, "readonly", False):
            self._abort("write_to_readonly")
            return
        lba, count = self._address(lba48)
        if lba is None or lba + count > self.backend.sectors:
            self._idnf()
            return
        block = self.multiple_count if multiple else 1
        # the block after a READ MULTIPLE that continues the previous one is the in-guest read-ahead's candidate
        # (AtaDisk.command_rules): a sequential stream, as a drive's read look-ahead detects it; a random read costs
        # no backend read (nor a new set of command rules) for a block that will not be asked for
        stream = read and multiple and not lba48
        sequential = stream and self._seq_next == lba
        self._seq_next = lba + count if stream else None
        self.readahead = (lba + count, count) if sequential else None
        self._start_block(None, data_in=read, lba=lba, remaining=count, block=block)
