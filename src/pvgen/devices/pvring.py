"""pv-ideal: a minimal hand-written paravirtual ring device (net TX/RX, 4 KiB disk requests), the benchmark's anchor.

Guest ABI: src/pvgen/guest/pvideal/pvring.h. A ring in guest memory holds a 16-byte header (avail, used, flags)
and `qsize` 32-byte descriptors; one write of the queue number to NOTIFY makes the device process every available
descriptor in order, write each one's status, advance `used`, and (if the ring asks for it) raise its interrupt.
The device trusts nothing: every ring and buffer address must lie inside guest RAM, sizes and opcodes are checked,
and a bad descriptor completes with PVR_ST_IOERR and is counted, never raising out of the device.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Protocol

from pvgen.errors import ProtocolError
from pvgen.protocol import PortClass

REG_MAGIC, REG_QSEL, REG_QADDR_LO, REG_QADDR_HI = 0x00, 0x04, 0x08, 0x0C
REG_QSIZE, REG_NOTIFY, REG_ISR, REG_ERRORS = 0x10, 0x14, 0x18, 0x1C
REG_BLOCKS, REG_MAC_LO, REG_MAC_HI = 0x20, 0x24, 0x28
PORTS = 0x30
DEFAULT_BASE = 0xE80

MAGIC = 0x31525650          # "PVR1"
MAX_QSIZE = 1024
Q_NET_TX, Q_NET_RX, Q_DISK = 0, 1, 2
NQUEUES = 3
OP_NET_TX, OP_NET_RX, OP_DISK_READ, OP_DISK_WRITE = 1, 2, 3, 4
QUEUE_OPS = {Q_NET_TX: {OP_NET_TX}, Q_NET_RX: {OP_NET_RX}, Q_DISK: {OP_DISK_READ, OP_DISK_WRITE}}
ST_OK, ST_IOERR, ST_UNSUPP = 0, 1, 2
F_INTERRUPT = 1
BLOCK = 4096
MAX_DISK_LEN = 256 * BLOCK
MAX_FRAME = 65535

HDR = struct.Struct("<IIII")            # avail, used, flags, reserved
DESC = struct.Struct("<QIHHQII")        # addr, len, op, status, block, used_len, reserved
assert DESC.size == 32 and HDR.size == 16


class GuestMemory(Protocol):
    size: int

    def read(self, gpa: int, n: int) -> bytes: ...

    def write(self, gpa: int, data: bytes) -> None: ...


class NetBackend(Protocol):
    """Where transmitted frames go and received frames come from (the monitor's peer, or a test double)."""

    def send(self, frame: bytes) -> None: ...

    def recv(self) -> bytes | None: ...


class BlockBackend(Protocol):
    size: int

    def read(self, offset: int, n: int) -> bytes: ...

    def write(self, offset: int, data: bytes) -> None: ...


@dataclass
class _Queue:
    addr: int = 0
    size: int = 0           # 0 = disabled
    last_avail: int = 0     # next entry the device will look at


@dataclass
class PvRing:
    """The device. memory: guest RAM; net/disk: backends (None = absent); irq(level): its interrupt line."""

    memory: GuestMemory
    net: NetBackend | None = None
    disk: BlockBackend | None = None
    irq: Callable[[bool], None] = lambda level: None
    mac: bytes = bytes.fromhex("020000000001")
    name: str = "pvring"
    qsel: int = 0
    isr: int = 0
    errors: int = 0
    bad_access: int = 0
    completed: list[int] = field(default_factory=lambda: [0] * NQUEUES)
    queues: list[_Queue] = field(default_factory=lambda: [_Queue() for _ in range(NQUEUES)])
    notifies: int = 0

    def reset(self) -> None:
        self.qsel, self.isr, self.errors, self.notifies = 0, 0, 0, 0
        self.queues = [_Queue() for _ in range(NQUEUES)]
        self.completed = [0] * NQUEUES
        self.update_irq()

    # -- bus interface -------------------------------------------------------------------------------------------
    def port_classes(self) -> dict[int, tuple[PortClass, PortClass]]:
        return {REG_NOTIFY: (PortClass.STRICT, PortClass.DOORBELL)}

    def io_read(self, offset: int, size: int) -> int:
        if size != 4 or offset % 4:
            self.bad_access += 1
            return 0xFFFFFFFF
        if offset == REG_MAGIC:
            return MAGIC
        if offset == REG_ISR:
            value, self.isr = self.isr, 0
            self.update_irq()
            return value
        if offset == REG_ERRORS:
            return self.errors & 0xFFFFFFFF
        if offset == REG_BLOCKS:
            return (self.disk.size // BLOCK) & 0xFFFFFFFF if self.disk else 0
        if offset == REG_MAC_LO:
            return int.from_bytes(self.mac[:4], "little")
        if offset == REG_MAC_HI:
            return int.from_bytes(self.mac[4:6], "little")
        return 0

    def io_write(self, offset: int, size: int, value: int) -> None:
        if size != 4 or offset % 4:
            self.bad_access += 1
            return
        q = self.queues[self.qsel] if self.qsel < NQUEUES else None
        if offset == REG_QSEL:
            self.qsel = value
        elif offset == REG_QADDR_LO and q:     # moving a ring disables it until QSIZE is written again
            q.addr, q.size = (q.addr & ~0xFFFFFFFF) | value, 0
        elif offset == REG_QADDR_HI and q:
            q.addr, q.size = (q.addr & 0xFFFFFFFF) | (value << 32), 0
        elif offset == REG_QSIZE and q:
            self._set_size(q, value)
        elif offset == REG_NOTIFY:
            self.notify(value)
        else:
            self.bad_access += 1
        self.update_irq()

    def update_irq(self) -> None:
        self.irq(self.isr != 0)

    # -- queues ------------------------------------------------------------------------------------------------
    def _set_size(self, q: _Queue, size: int) -> None:
        if size == 0:
            q.size = 0
            return
        if size & (size - 1) or size > MAX_QSIZE or not self._inside(q.addr, HDR.size + size * DESC.size):
            self.errors += 1
            q.size = 0
            return
        q.size, q.last_avail = size, 0

    def _inside(self, gpa: int, n: int) -> bool:
        return 0 <= gpa and n >= 0 and gpa + n <= self.memory.size

    def notify(self, qnum: int) -> None:
        """The doorbell: process every available descriptor of queue qnum."""
        self.notifies += 1
        if qnum >= NQUEUES or self.queues[qnum].size == 0:
            self.errors += 1
            return
        self.process(qnum)

    def process(self, qnum: int) -> int:
        """Complete what can be completed on queue qnum; returns the number of descriptors completed."""
        try:
            return self._process(qnum)
        except ProtocolError:           # the ring checks make this unreachable; a guest still never crashes us
            self.errors += 1
            return 0

    def _process(self, qnum: int) -> int:
        q = self.queues[qnum]
        if q.size == 0:
            return 0
        avail, used, flags, _ = HDR.unpack(self.memory.read(q.addr, HDR.size))
        pending = (avail - q.last_avail) & 0xFFFFFFFF
        if pending > q.size:             # the guest claims more entries than the ring holds
            self.errors += 1
            return 0
        done = 0
        while done < pending:
            slot = q.addr + HDR.size + ((q.last_avail + done) & (q.size - 1)) * DESC.size
            addr, length, op, _, block, _, _ = DESC.unpack(self.memory.read(slot, DESC.size))
            result = self._execute(qnum, addr, length, op, block)
            if result is None:           # an RX buffer with no frame to put in it: stays available
                break
            status, used_len = result
            if status != ST_OK:
                self.errors += 1
            self.memory.write(slot + 14, struct.pack("<H", status))
            self.memory.write(slot + 24, struct.pack("<I", used_len))
            done += 1
        if done:
            q.last_avail = (q.last_avail + done) & 0xFFFFFFFF
            self.memory.write(q.addr + 4, struct.pack("<I", q.last_avail))
            self.completed[qnum] += done
            if flags & F_INTERRUPT:
                self.isr |= 1 << qnum
                self.update_irq()
        return done

    def rx_ready(self) -> int:
        """The backend has frames: fill the posted RX buffers (called by the monitor after an injection)."""
        if self.queues[Q_NET_RX].size == 0:
            return 0
        return self.process(Q_NET_RX)

    def _execute(self, qnum: int, addr: int, length: int, op: int, block: int) -> tuple[int, int] | None:
        if op not in QUEUE_OPS[qnum]:
            return ST_UNSUPP, 0
        if not self._inside(addr, length):
            return ST_IOERR, 0
        if op == OP_NET_TX:
            if self.net is None or not 14 <= length <= MAX_FRAME:
                return ST_IOERR, 0
            self.net.send(self.memory.read(addr, length))
            return ST_OK, length
        if op == OP_NET_RX:
            if self.net is None:
                return ST_IOERR, 0
            frame = self.net.recv()
            if frame is None:
                return None
            if len(frame) > length:      # the buffer is too small: the frame is dropped, the buffer returned
                return ST_IOERR, 0
            self.memory.write(addr, frame)
            return ST_OK, len(frame)
        # disk
        if self.disk is None or length == 0 or length % BLOCK or length > MAX_DISK_LEN:
            return ST_IOERR, 0
        off = block * BLOCK
        if off + length > self.disk.size:
            return ST_IOERR, 0
        if op == OP_DISK_READ:
            self.memory.write(addr, self.disk.read(off, length))
        else:
            self.disk.write(off, self.memory.read(addr, length))
        return ST_OK, length


@dataclass
class BytesDisk:
    """A disk backend over a bytearray (tests, and the bench's in-memory image)."""

    data: bytearray

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self, offset: int, n: int) -> bytes:
        return bytes(self.data[offset:offset + n])

    def write(self, offset: int, data: bytes) -> None:
        self.data[offset:offset + len(data)] = data


@dataclass
class SectorDisk:
    """A disk backend over an ATA model's storage (read(lba, count) / write(lba, data) in 512-byte sectors: the
    bench's image file, diskimage.DiskImage); requests are whole 4 KiB blocks, so offsets are sector-aligned."""

    backend: object

    @property
    def size(self) -> int:
        return self.backend.sectors * 512

    def read(self, offset: int, n: int) -> bytes:
        return self.backend.read(offset // 512, n // 512)

    def write(self, offset: int, data: bytes) -> None:
        self.backend.write(offset // 512, data)


@dataclass
class ListPeer:
    """A net backend that records what the guest sends and hands out queued frames."""

    sent: list[bytes] = field(default_factory=list)
    inbox: deque[bytes] = field(default_factory=deque)

    def send(self, frame: bytes) -> None:
        self.sent.append(bytes(frame))

    def recv(self) -> bytes | None:
        return self.inbox.popleft() if self.inbox else None

    def inject(self, frames: list[bytes]) -> None:
        self.inbox.extend(frames)
