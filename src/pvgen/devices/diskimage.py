"""Disk backends for the ATA model: an image file written through in order, and an in-memory disk for tests.

Durability policy (docs/devices.md):
- every completed guest write is handed to the kernel with pwrite() before the ATA model reports the command
  complete, in the order the guest issued them; a monitor that dies afterwards (crash, os._exit, SIGKILL) loses
  nothing, because the data is already in the host page cache;
- FLUSH CACHE / FLUSH CACHE EXT and close() call fsync(), so data survives a host crash once the guest flushed;
- sync="always" opens the image with O_DSYNC, making every write durable before it completes (slow, for tests
  of power loss);
- the image is locked (flock) while it is open: exclusively when writable, shared when read-only, so a second
  monitor never writes an image another one uses, nor reads one another one writes.
"""

from __future__ import annotations

import fcntl
import os
import stat
from dataclasses import dataclass, field
from typing import Protocol

from pvgen.errors import EnvironmentMissing, PvgenError

SECTOR_SIZE = 512


class DiskBackend(Protocol):
    """What the ATA model needs of its storage."""

    sectors: int

    def read(self, lba: int, count: int) -> bytes: ...

    def write(self, lba: int, data: bytes) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class MemoryDisk:
    """A disk held in a bytearray (tests, scratch disks)."""

    sectors: int
    data: bytearray = field(default=None)  # type: ignore[assignment]
    flushes: int = 0

    def __post_init__(self) -> None:
        if self.data is None:
            self.data = bytearray(self.sectors * SECTOR_SIZE)

    def read(self, lba: int, count: int) -> bytes:
        return bytes(self.data[lba * SECTOR_SIZE:(lba + count) * SECTOR_SIZE])

    def write(self, lba: int, data: bytes) -> None:
        self.data[lba * SECTOR_SIZE:lba * SECTOR_SIZE + len(data)] = data

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        pass


class DiskImage:
    """A raw image file. Capacity is the file size in whole sectors (a partial last sector is not addressable), or
    `sectors` when the file is larger: the disk is then its first `sectors` sectors, and the rest is never touched.
    `create_sectors`: create a missing file, and grow a shorter one, to that many sectors (sparse)."""

    def __init__(self, path: str | os.PathLike, *, readonly: bool = False, sync: str = "flush",
                 create_sectors: int | None = None, sectors: int | None = None):
        if sync not in ("flush", "always"):
            raise PvgenError(f"disk image {path}: sync policy must be 'flush' or 'always', not {sync!r}")
        self.path = os.fspath(path)
        self.readonly = readonly
        self.fd = -1
        flags = os.O_RDONLY if readonly else os.O_RDWR
        if sync == "always" and not readonly:
            flags |= os.O_DSYNC
        if create_sectors is not None and not readonly:
            flags |= os.O_CREAT
        try:
            fd = os.open(self.path, flags | os.O_CLOEXEC | os.O_NONBLOCK, 0o644)   # a FIFO must not hang us
        except OSError as e:
            raise EnvironmentMissing(f"disk image {self.path}", f"cannot open it ({e.strerror})") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PvgenError(f"disk image {self.path} is not a regular file (a raw image file is needed)")
            self._lock(fd)
            if create_sectors is not None and not readonly and os.fstat(fd).st_size < create_sectors * SECTOR_SIZE:
                os.ftruncate(fd, create_sectors * SECTOR_SIZE)
            whole = os.fstat(fd).st_size // SECTOR_SIZE
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.sectors = whole if sectors is None else min(whole, sectors)
        self.flushes = 0

    def _lock(self, fd: int) -> None:
        """flock the open file (it belongs to this open file description: released by close() or when the process
        dies, even by SIGKILL); a lock someone else holds is an error now, not a wait."""
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if self.readonly else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PvgenError(f"disk image {self.path} is in use by another process, which holds a lock on it "
                             "(two monitors must not share an image while one writes it)") from None
        except OSError as e:
            raise PvgenError(f"disk image {self.path}: cannot lock it ({e.strerror})") from None

    def read(self, lba: int, count: int) -> bytes:
        want = count * SECTOR_SIZE
        data = os.pread(self.fd, want, lba * SECTOR_SIZE)
        return data + bytes(want - len(data))

    def write(self, lba: int, data: bytes) -> None:
        """Written through: returns only once the kernel holds all of data (pwrite loops on short writes)."""
        if self.readonly:
            raise PvgenError(f"disk image {self.path} is read-only")
        view = memoryview(data)
        pos = lba * SECTOR_SIZE
        while view:
            n = os.pwrite(self.fd, view, pos)
            view, pos = view[n:], pos + n

    def flush(self) -> None:
        self.flushes += 1
        if not self.readonly:
            os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            if not self.readonly:
                os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "DiskImage":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
