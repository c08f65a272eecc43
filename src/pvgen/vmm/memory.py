"""Guest RAM: one anonymous mmap registered with KVM, seen by the monitor through read/write/size (docs/team.md)."""

from __future__ import annotations

import ctypes
import mmap

from pvgen.errors import ProtocolError
from pvgen.vmm import kvm

PAGE = 4096


class GuestMemory:
    """Guest-physical RAM from GPA 0 to size. Every access is bounds-checked; nothing outside RAM is ever touched."""

    def __init__(self, size: int):
        if size <= 0 or size % (2 << 20):
            raise ValueError(f"guest RAM size {size:#x} must be a positive multiple of 2 MiB")
        self.size = size
        self.mm = mmap.mmap(-1, size, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, mmap.PROT_READ | mmap.PROT_WRITE)
        self.view = memoryview(self.mm)
        self._anchor = ctypes.c_char.from_buffer(self.mm)
        self.host_addr = ctypes.addressof(self._anchor)

    def register(self, vm_fd: int, slot: int = 0) -> None:
        region = kvm.kvm_userspace_memory_region(slot=slot, flags=0, guest_phys_addr=0,
                                                 memory_size=self.size, userspace_addr=self.host_addr)
        kvm.ioctl(vm_fd, kvm.KVM_SET_USER_MEMORY_REGION, region)

    def contains(self, gpa: int, n: int) -> bool:
        return 0 <= gpa and 0 <= n and gpa + n <= self.size

    def _check(self, gpa: int, n: int) -> None:
        if not self.contains(gpa, n):
            raise ProtocolError(f"guest access {gpa:#x}..+{n:#x} is outside guest RAM (0..{self.size:#x})")

    def read(self, gpa: int, n: int) -> bytes:
        if gpa < 0 or n < 0 or gpa + n > self.size:     # contains(), inline: every batch flush reads here
            self._check(gpa, n)
        return self.mm[gpa:gpa + n]

    def write(self, gpa: int, data: bytes) -> None:
        end = gpa + len(data)
        if gpa < 0 or end > self.size:
            self._check(gpa, len(data))
        self.mm[gpa:end] = data

    def read_u64(self, gpa: int) -> int:
        return int.from_bytes(self.read(gpa, 8), "little")

    def write_u64(self, gpa: int, value: int) -> None:
        self.write(gpa, value.to_bytes(8, "little"))

    def cstring(self, gpa: int, limit: int = 4096) -> str:
        raw = self.read(gpa, min(limit, self.size - gpa))
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

    def close(self) -> None:
        del self._anchor
        self.view.release()
        self.mm.close()
