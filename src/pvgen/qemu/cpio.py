"""A newc ("070701") cpio archive written in Python: the initramfs format the kernel unpacks at boot.

Format: Documentation/driver-api/early-userspace/buffer-format.rst — a 110-byte ASCII header of 13 eight-digit hex
fields, the NUL-terminated name, padding to 4 bytes, the data, padding to 4 bytes; "TRAILER!!!" ends the archive.
Writing it ourselves lets a non-root user put device nodes (/dev/console) in the image."""

from __future__ import annotations

import stat
from dataclasses import dataclass, field

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


@dataclass
class Cpio:
    """Entries added in order (a directory before what it holds); `data()` is the finished archive."""

    _out: bytearray = field(default_factory=bytearray)
    _ino: int = 1
    _names: set[str] = field(default_factory=set)

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        name = name.strip("/")
        if name in self._names:
            return
        self._names.add(name)
        fields = (self._ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(name) + 1, 0)
        self._ino += 1
        head = MAGIC + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0"
        self._out += head + _pad4(len(head)) + data + _pad4(len(data))

    def dir(self, name: str) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self._entry("/".join(parts[:i]), stat.S_IFDIR | 0o755)

    def _parent(self, name: str) -> None:
        parent = name.strip("/").rpartition("/")[0]
        if parent:
            self.dir(parent)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._parent(name)
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._parent(name)
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._parent(name)
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def data(self) -> bytes:
        end = bytearray()
        head = MAGIC + b"".join(b"%08X" % f for f in (0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, len(TRAILER) + 1, 0))
        head += TRAILER.encode() + b"\0"
        end += head + _pad4(len(head))
        return bytes(self._out + end)
