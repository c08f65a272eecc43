"""A Python mimic of what Linux 6.1's libata-sff does at an ATA channel's ports for PIO commands (libata-sff.c:
ata_sff_qc_issue, ata_dev_select, ata_sff_tf_load, ata_sff_exec_command, ata_sff_pio_task, ata_sff_hsm_move,
ata_pio_sectors, ata_sff_irq_on, ata_sff_tf_read, ata_bus_softreset), enough for property tests of the ATA transfer
windows (protocol v5).  The access sequences follow the C code step by step (read from the Debian linux-source-6.1
tree; no code is copied).  Two ways to move a DRQ block: libata's own (`per_sector`: one `rep insw`/`outsw` of 256
words per sector, then the Alternate Status read of ata_sff_sync) and the repository's wl_disk.c (one string
instruction per DRQ block); 16-bit or 32-bit data (ata_sff_data_xfer32); polled (nIEN set, the pio task) or
interrupt driven (nIEN clear: the handler runs the state machine).  The `io` object decides how an access is made
(at once on the device, or through the runtime) and how the driver waits for an interrupt."""

from __future__ import annotations

from dataclasses import dataclass, field

from pvgen.devices import ata as A

CMD, CTL = A.ATA_PRIMARY_CMD, A.ATA_PRIMARY_CTL
DATA, ERR, NSECT, LBAL, LBAM, LBAH, DEVICE, STATUS = (CMD + o for o in range(8))
ALT = CTL
BSY, DRDY, DF, DRQ, ERR_BIT = A.ATA_BUSY, A.ATA_DRDY, A.ATA_DF, A.ATA_DRQ, A.ATA_ERR
NIEN, SRST = A.ATA_NIEN, A.ATA_SRST
DEVICE_OBS, DEVCTL_OBS = 0xA0, 0x08
SECTOR = 512
READS = {A.ATA_CMD_PIO_READ, A.ATA_CMD_READ_MULTI, A.ATA_CMD_ID_ATA}
WRITES = {A.ATA_CMD_PIO_WRITE, A.ATA_CMD_WRITE_MULTI}
MULTI = {A.ATA_CMD_READ_MULTI, A.ATA_CMD_WRITE_MULTI}


class IO:
    """How the driver reaches the channel: absolute ports.  `wait_irq` returns True when an interrupt arrived (it
    may let time pass: a timer tick) and consumes it."""

    def outb(self, port: int, v: int) -> None: raise NotImplementedError
    def inb(self, port: int) -> int: raise NotImplementedError
    def inw(self, port: int) -> int: raise NotImplementedError
    def ins(self, port: int, size: int, count: int) -> bytes: raise NotImplementedError
    def outs(self, port: int, size: int, data: bytes) -> None: raise NotImplementedError
    def wait_irq(self) -> bool: raise NotImplementedError


@dataclass
class Qc:
    """One queued command: the task file, the data (written, or read back), how it runs."""

    command: int
    nsect: int = 0
    lba: int = 0
    feature: int = 0
    dev: int = 0
    polling: bool = True
    data: bytes = b""             # data-out
    sectors: int = 0              # data sectors the command moves
    # results
    got: bytearray = field(default_factory=bytearray)
    status: int = 0
    error: int = 0
    tf: tuple = ()                # the result task file (ata_sff_tf_read) after an error
    err_mask: str = ""


@dataclass
class Libata:
    io: IO
    per_sector: bool = True       # libata's ata_pio_sector (256 words per string); False: wl_disk.c (a whole block)
    pio32: bool = False           # ata_sff_data_xfer32 (ATA_PFLAG_PIO32)
    wait_max: int = 40            # ata_sff_busy_wait's `max` (libata: 1000; nothing here stays busy that long)
    ctl: int = DEVCTL_OBS
    last_ctl: int = -1
    multi: int = 0                # the device's multiple count as the driver last set it (0: not set)
    irq_timeouts: int = 0
    done: list = field(default_factory=list)

    # --- register helpers ---------------------------------------------------------------------------------------
    def check_status(self) -> int:
        return self.io.inb(STATUS)

    def altstatus(self) -> int:
        return self.io.inb(ALT)

    def busy_wait(self, bits: int, limit: int | None = None) -> int:
        n = self.wait_max if limit is None else limit
        while True:
            status = self.check_status()
            n -= 1
            if status == 0xFF or not status & bits or n <= 0:
                return status

    def wait_idle(self) -> int:
        return self.busy_wait(BSY | DRQ)

    def dev_select(self, dev: int, wait: bool = True) -> None:
        if wait:
            self.wait_idle()
        self.io.outb(DEVICE, DEVICE_OBS | (A.ATA_DEV1 if dev else 0))
        self.altstatus()
        if wait:
            self.wait_idle()

    def set_devctl(self, ctl: int) -> None:
        self.io.outb(CTL, ctl)

    def tf_load(self, qc: Qc, ctl: int) -> None:
        if ctl != self.last_ctl:
            self.set_devctl(ctl)
            self.last_ctl = ctl
            self.wait_idle()
        io = self.io
        io.outb(ERR, qc.feature)
        io.outb(NSECT, qc.nsect & 0xFF)
        io.outb(LBAL, qc.lba & 0xFF)
        io.outb(LBAM, qc.lba >> 8 & 0xFF)
        io.outb(LBAH, qc.lba >> 16 & 0xFF)
        io.outb(DEVICE, A.ATA_LBA | DEVICE_OBS | (A.ATA_DEV1 if qc.dev else 0) | (qc.lba >> 24 & 0x0F))
        self.wait_idle()

    def exec_command(self, command: int) -> None:
        self.io.outb(STATUS, command)
        self.altstatus()                       # ata_sff_pause

    def tf_read(self) -> tuple:
        io = self.io
        return (self.check_status(), io.inb(ERR), io.inb(NSECT), io.inb(LBAL), io.inb(LBAM), io.inb(LBAH),
                io.inb(DEVICE))

    def irq_on(self) -> None:
        self.ctl &= ~NIEN
        self.last_ctl = self.ctl
        self.set_devctl(self.ctl)
        self.wait_idle()

    # --- data ---------------------------------------------------------------------------------------------------
    def _xfer(self, qc: Qc, nbytes: int, write: bool) -> None:
        size = 4 if self.pio32 else 2
        if write:
            off = len(qc.got)
            chunk = qc.data[off:off + nbytes]
            qc.got += chunk                     # what was sent (the cursor)
            self.io.outs(DATA, size, chunk)
        else:
            qc.got += self.io.ins(DATA, size, nbytes // size)

    def pio_sectors(self, qc: Qc, write: bool) -> bool:
        """One DRQ block (ata_pio_sectors); True when it was the last."""
        left = qc.sectors - len(qc.got) // SECTOR
        n = min(left, self.multi) if qc.command in MULTI else 1
        if self.per_sector:
            for _ in range(n):
                self._xfer(qc, SECTOR, write)
        else:
            self._xfer(qc, n * SECTOR, write)
        self.altstatus()                       # ata_sff_sync
        return len(qc.got) // SECTOR >= qc.sectors

    # --- the state machine (ata_sff_hsm_move, polled by ata_sff_pio_task or driven by the interrupt) -------------
    def issue(self, qc: Qc) -> Qc:
        """ata_sff_qc_issue, then the command runs to completion (the pio task, or interrupts)."""
        ctl = self.ctl | NIEN if qc.polling else self.ctl & ~NIEN
        self.dev_select(qc.dev)
        self.tf_load(qc, ctl)
        self.exec_command(qc.command)
        write, read = qc.command in WRITES, qc.command in READS
        state = "FIRST" if write else "ST" if read else "LAST"
        irq_wait = not qc.polling and not write           # PIO data-out always sends its first block from the task
        while state != "IDLE":
            if irq_wait:
                if not self.io.wait_irq():
                    self.irq_timeouts += 1
                    qc.err_mask = "timeout"
                    state = "IDLE"
                    break
                status = self.altstatus()                  # ata_sff_irq_status
                if not status & BSY:
                    status = self.check_status()
            else:
                status = self.busy_wait(BSY, 5)            # ata_sff_pio_task
            state, again = self.hsm_move(qc, state, status, write)
            irq_wait = again and not qc.polling
            if not again:
                break
        if qc.polling:
            self.irq_on()                                  # ata_hsm_qc_complete from the workqueue
        self.done.append(qc)
        return qc

    def hsm_move(self, qc: Qc, state: str, status: int, write: bool) -> tuple[str, bool]:
        """One step: (next state, whether to wait for the next status)."""
        while True:
            if state == "FIRST":
                if not status & DRQ:
                    qc.err_mask = "dev" if status & (ERR_BIT | DF) else "hsm"
                    state = "ERR"
                    continue
                if status & (ERR_BIT | DF):
                    qc.err_mask = "hsm"
                    state = "ERR"
                    continue
                state = "LAST" if self.pio_sectors(qc, True) else "ST"
                return state, True
            if state == "ST":
                if not status & DRQ:
                    qc.err_mask = "dev" if status & (ERR_BIT | DF) else "hsm"
                    state = "ERR"
                    continue
                if status & (ERR_BIT | DF):
                    qc.err_mask = "dev"
                    if not write:
                        self.pio_sectors(qc, False)
                        status = self.wait_idle()
                    state = "ERR"
                    continue
                last = self.pio_sectors(qc, write)
                if last and not write:
                    status = self.wait_idle()
                    state = "LAST"
                    continue
                return ("LAST" if last else "ST"), True
            if state == "LAST":
                if status & (BSY | DRQ | ERR_BIT | DF) or not status & DRDY:   # !ata_ok
                    qc.err_mask = qc.err_mask or "dev"
                    state = "ERR"
                    continue
                qc.status = status
                return "IDLE", False
            # ERR: EH reads the result task file (ata_sff_qc_fill_rtf)
            qc.status = status
            qc.tf = self.tf_read()
            qc.error = qc.tf[1]
            return "IDLE", False

    # --- commands -------------------------------------------------------------------------------------------------
    def set_multi(self, n: int, polling: bool = True) -> Qc:
        qc = self.issue(Qc(A.ATA_CMD_SET_MULTI, nsect=n, polling=polling))
        if not qc.err_mask:
            self.multi = n
        return qc

    def rw(self, write: bool, lba: int, n: int, multiple: bool, data: bytes = b"", polling: bool = True) -> Qc:
        command = (A.ATA_CMD_WRITE_MULTI if write else A.ATA_CMD_READ_MULTI) if multiple else (
            A.ATA_CMD_PIO_WRITE if write else A.ATA_CMD_PIO_READ)
        return self.issue(Qc(command, nsect=n, lba=lba, polling=polling, data=data, sectors=n))

    def identify(self, polling: bool = True) -> Qc:
        return self.issue(Qc(A.ATA_CMD_ID_ATA, polling=polling, sectors=1))

    def flush_cache(self, polling: bool = True) -> Qc:
        return self.issue(Qc(A.ATA_CMD_FLUSH, polling=polling))

    def set_features(self, feature: int, polling: bool = True) -> Qc:
        return self.issue(Qc(A.ATA_CMD_SET_FEATURES, feature=feature, polling=polling))

    def softreset(self) -> tuple:
        """ata_bus_softreset, the wait for !BSY, and the classification's task-file read (device 0)."""
        self.set_devctl(self.ctl)
        self.set_devctl(self.ctl | SRST)
        self.set_devctl(self.ctl)
        self.last_ctl = self.ctl
        self.busy_wait(BSY, self.wait_max)
        self.dev_select(0)
        tf = self.tf_read()
        self.multi = 0        # the driver sets it again before its next READ/WRITE MULTIPLE
        return tf
