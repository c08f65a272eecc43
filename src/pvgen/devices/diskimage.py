"""Disk backends for the ATA model: an image file written through in order, and an in-memory disk for tests.

Durability policy (docs/devices.md):
- every completed guest write is handed to the kernel with pwrite() before the ATA model reports the command
  complete, in the order the guest issued them; a monitor that dies afterwards (crash, os._exit, SIGKILL) loses
  nothing, because the data is already in the host page cache;
- FLUSH CACHE / FLUSH CACHE EXT and close() call fsync(), so data survives a host crash once the guest flushed;
- sync="always" opens the image with O_DSYNC, making every write durable before it completes (slow, for tests
  of power loss).
"""

from __future__ import annotations

import os
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
    """A raw image file. Capacity is the file size in whole sectors (a partial last sector is not addressable)."""

    def __init__(self, path: str | os.PathLike, *, readonly: bool = False, sync: str = "flush",
                 create_sectors: int | None = None):
        if sync not in ("flush", "always"):
            raise PvgenError(f"disk image {path}: sync policy must be 'flush' or 'always', not {sync!r}")
        self.path = os.fspath(path)
        self.readonly = readonly
        flags = os.O_RDONLY if readonly else os.O_RDWR
        if sync == "always" and not readonly:
            flags |= os.O_DSYNC
        if create_sectors is not None and not readonly:
            flags |= os.O_CREAT
        try:
            self.fd = os.open(self.path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as e:
            raise EnvironmentMissing(f"disk image {self.path}", f"cannot open it ({e.strerror})") from None
        if create_sectors is not None and not readonly and os.fstat(self.fd).st_size < create_sectors * SECTOR_SIZE:
            os.ftruncate(self.fd, create_sectors * SECTOR_SIZE)
        self.sectors = os.fstat(self.fd).st_size // SECTOR_SIZE
        self.flushes = 0

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
