"""The ATA disk's in-guest models (protocol v5, pvgen/modeldecl.py; docs/devices.md "ATA in the guest").

`AtaModels` is a stateless mixin of AtaDisk (ata.py), as AtaCommands is: the transfer window on the data port, the
commands the guest accepts itself (WRITE MULTIPLE with the write cache on: write-back; READ MULTIPLE of the
read-ahead blocks of a sequential stream), and the replay hooks the monitor checks them with.  Everything it
publishes is computed from AtaDisk's state; where a declaration cannot be exact for a state, it is not published
for that state (the access then exits as before).
"""

from __future__ import annotations

from pvgen.devices.ata_regs import (
    ATA_BUSY, ATA_CMD_READ_MULTI, ATA_CMD_WRITE_MULTI, ATA_DEV1, ATA_DRDY, ATA_DRQ, ATA_DSC, ATA_LBA, ATA_NIEN,
    ATA_REG_ALTSTATUS, ATA_REG_CMD, ATA_REG_CTL, ATA_REG_DATA, ATA_REG_DEVICE, ATA_REG_ERR, ATA_REG_LBAH,
    ATA_REG_LBAL, ATA_REG_LBAM, ATA_REG_NSECT, ATA_REG_STATUS, MAX_MULTIPLE,
)
from pvgen.devices.diskimage import SECTOR_SIZE
from pvgen.modeldecl import CommandRule, Cond, Effect, EngineDecl, EngineNow, Reg, Wide
from pvgen.protocol import EngineKind, EngineState

_BLOCK_ROOM = MAX_MULTIPLE * SECTOR_SIZE     # a window slot holds the largest DRQ block (8 KiB)


class AtaModels:
    """The window engine's memory: the DRQ block in progress (a monitor-armed window), the block of a write the
    guest accepts itself, then `readahead_depth` read-ahead blocks, one slot each."""

    readahead_depth = 4                # blocks published ahead of a sequential stream (one command rule each)
    _WIN, _WIN_WRITE, _WIN_AHEAD = 0x0000, _BLOCK_ROOM, 2 * _BLOCK_ROOM
    _WIN_LEN = _WIN_AHEAD + readahead_depth * _BLOCK_ROOM
    dynamic_command_rules = True       # command_rules() follows the write cache, the multiple count, the read-ahead
    command_rule_capacity = 1 + readahead_depth

    def _done(self) -> tuple[Effect, ...]:
        """A PIO command's last DRQ block moved: DRDY|DSC (data-in 9.5: no interrupt; data-out 9.6: INTRQ pending,
        which a published window needs masked), Error 0 (set so at the command)."""
        return (Effect.set(ATA_REG_STATUS, ATA_DRDY | ATA_DSC),
                Effect.set(ATA_REG_ALTSTATUS, ATA_DRDY | ATA_DSC, device=self.control), Effect.set(ATA_REG_ERR, 0))

    def engines(self) -> list[EngineDecl]:
        """One transfer window on the data port: the monitor arms it at a flush with the last DRQ block of a PIO
        command (data-in: its bytes; data-out with the write cache on: room for them), and the guest moves the
        block without an exit; command rules (below) arm it too.  Word and dword accesses only (a byte access is
        `bad_size`), never with device 1 selected; at the end the registers show the command's completion."""
        return [EngineDecl(ATA_REG_DATA, EngineKind.WINDOW, (0, 2, 4), self._WIN_LEN,
                           serve_cond=Cond.shadow(ATA_REG_DEVICE, ATA_DEV1, 0), done=self._done())]

    def _readahead(self) -> tuple[int, int, int] | None:
        """The read-ahead (LBA, sectors per block, blocks) when it can be published now: blocks of the multiple
        count from the LBA the stream continues at, as many as fit (at most readahead_depth) in range, readable
        (their bytes are then _ra_data), and no data-out transfer pending (its data, still in the guest, could be
        for these sectors: a write the guest accepts itself withdraws the read-ahead anyway)."""
        ra = self.readahead
        if ra is None or ra[1] != self.multiple_count or ra[1] == 0 or (self.status & ATA_DRQ and not self.data_in):
            return None
        blocks = min(self.readahead_depth, (min(self.backend.sectors, 1 << 28) - ra[0]) // ra[1])
        if blocks <= 0:
            return None
        out = (ra[0], ra[1], blocks)
        return out if self._ra_data(out) is not None else None

    def _ra_data(self, ra: tuple[int, int, int]) -> bytes | None:
        """The backend's bytes of the read-ahead blocks, read once per (blocks, backend writes so far)."""
        key = (ra, self._writes)
        if self._ra_cache[0] != key:
            n = ra[1] * ra[2]
            try:
                data = bytes(self.backend.read(ra[0], n))
            except OSError:
                data = b""
            self._ra_cache = (key, data if len(data) == n * SECTOR_SIZE else None)
        return self._ra_cache[1]

    def latches(self) -> dict:
        """"ra": 1 + how many read-ahead blocks the guest has taken (0: none published, or withdrawn by a write
        the guest accepts); the command rules take them in order."""
        return {"ra": 1 if self._readahead() is not None else 0}

    def command_rules(self) -> list[CommandRule]:
        """Commands the guest accepts itself while the device is idle (the conditions, checked in the guest:
        Status DRDY|DSC, which also means device 0 and no transfer, nIEN, the task file's shadows, which exist only
        with HOB clear), as the device would at once (8.x, 9.5/9.6), with a multiple count n set:
        - WRITE MULTIPLE of n sectors, LBA28 in range, write cache on: DRQ for the first (only) block, the window
          takes it (staged: its memory serves the next write), completion as the device's (write-back: the
          backend write at the next flush, a failure reported by FLUSH CACHE);
        - READ MULTIPLE of n sectors at the j-th read-ahead block (the blocks after the last READ MULTIPLE of a
          sequential stream, read from the backend at the last flush), in order (latch "ra" = j + 1; each sets the
          next, a write the guest accepts withdraws them all): DRQ and the block's data.
        Anything else (other counts, LBA48, CHS, out of range, a transfer in progress) exits as a doorbell."""
        n = self.multiple_count
        if n == 0 or getattr(self.backend, "readonly", False):
            return []
        base = (Cond.shadow(ATA_REG_STATUS, 0xFF, ATA_DRDY | ATA_DSC), Cond.shadow(ATA_REG_NSECT, 0xFF, n),
                Cond("latch", Reg(ATA_REG_CTL, self.control), ATA_NIEN, ATA_NIEN))
        drq = (Effect.set(ATA_REG_STATUS, ATA_DRDY | ATA_DSC | ATA_DRQ),
               Effect.set(ATA_REG_ALTSTATUS, ATA_DRDY | ATA_DSC | ATA_DRQ, device=self.control),
               Effect.set(ATA_REG_ERR, 0))
        lba = (ATA_REG_LBAL, ATA_REG_LBAM, ATA_REG_LBAH, ATA_REG_DEVICE)   # LBA28 | LBA bit | DEV (7.12)
        cap = min(self.backend.sectors, 1 << 28)
        rules = []
        if self.write_cache and cap >= n:
            rules.append(CommandRule(ATA_REG_CMD, 0xFF, ATA_CMD_WRITE_MULTI, base, own_mask=0, effects=drq,
                                     engine=0, engine_state=EngineState.WRITE, window_count=n * SECTOR_SIZE,
                                     window_offset=self._WIN_WRITE, stage=True, sets_latch=("ra", 0),
                                     wide=Wide(lba, 0x5FFFFFFF, ATA_LBA << 24, (ATA_LBA << 24) + cap - n)))
        ra = self._readahead()
        for j in range(ra[2] if ra is not None else 0):
            at = ATA_LBA << 24 | (ra[0] + j * n)
            rules.append(CommandRule(ATA_REG_CMD, 0xFF, ATA_CMD_READ_MULTI,
                                     base + (Cond.latch("ra", 0xFF, j + 1),), own_mask=0, effects=drq,
                                     engine=0, engine_state=EngineState.READ, window_count=n * SECTOR_SIZE,
                                     window_offset=self._WIN_AHEAD + j * _BLOCK_ROOM,
                                     sets_latch=("ra", j + 2 if j + 1 < ra[2] else 0),
                                     wide=Wide(lba, 0x5FFFFFFF, at, at)))
        return rules

    def command_rules_key(self) -> tuple:
        """What command_rules() depends on (the monitor publishes them again only when it changes)."""
        return (self.multiple_count, self.write_cache, getattr(self.backend, "readonly", False),
                self.backend.sectors, self._readahead())

    def engine_state(self, index: int) -> EngineNow | None:
        """The window for the DRQ block in progress, when its completion is known exactly: the last block of
        the command (the next one would raise INTRQ and show new data), device 0 selected, not busy.  Data-in:
        the block's remaining bytes, completion = DRDY|DSC without an interrupt (9.5).  Data-out: only with the
        write cache enabled and nIEN set: the completion (DRDY|DSC, Error 0, INTRQ pending but masked) is shown
        when the guest has staged the block, before the backend write at the next flush (write-back).  Idle: the
        read-ahead blocks' data for the READ MULTIPLE command rules, one slot each."""
        if index != 0:
            return None
        ra = self._readahead()
        extra: tuple = ()
        if ra is not None:
            data, blk = self._ra_data(ra), ra[1] * SECTOR_SIZE
            extra = tuple((self._WIN_AHEAD + j * _BLOCK_ROOM, data[j * blk:(j + 1) * blk]) for j in range(ra[2]))
        idle = EngineNow(EngineState.IDLE, extra=extra) if extra else None
        if (not self.status & ATA_DRQ or self.status & ATA_BUSY or self._dev1_selected()
                or self.xfer_remaining > self.xfer_block or self.pos >= len(self.buf)):
            return idle
        left = len(self.buf) - self.pos
        if self.data_in:
            return EngineNow(EngineState.READ, self.pos, left, data=bytes(self.buf[self.pos:]), extra=extra)
        if not self.write_cache or not self.devctl & ATA_NIEN or getattr(self.backend, "readonly", False):
            return idle
        return EngineNow(EngineState.WRITE, self.pos, left, extra=extra)

    def engine_position(self, index: int) -> tuple[int, int, int] | None:
        """Where the DRQ block in progress is: (EngineState, byte position, bytes left), for the monitor's check
        of every served run; None without a transfer."""
        if index != 0 or not self.status & ATA_DRQ or self._dev1_selected():
            return None
        return (EngineState.READ if self.data_in else EngineState.WRITE, self.pos, len(self.buf) - self.pos)

    def engine_write(self, index: int, offset: int, size: int, data: bytes) -> None:
        """The replay of the block the guest's write window took: the guest saw it complete already (write-back),
        so a backend failure is kept for the next FLUSH CACHE instead of aborting it (_block_done)."""
        self._acknowledged = True
        try:
            self.write_many(offset, size, data)
        finally:
            self._acknowledged = False
