"""The MMIO bus: an ordered map of guest-physical ranges to devices with mmio_read/mmio_write(offset, size, ...)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from pvgen.devices.bus import BusError


@dataclass
class MmioBus:
    """Unowned reads return all-ones and writes are ignored; both are counted."""

    ranges: list[tuple[int, int, object]] = field(default_factory=list)
    unowned_reads: int = 0
    unowned_writes: int = 0

    def register(self, base: int, length: int, device) -> None:
        for b, n, d in self.ranges:
            if base < b + n and b < base + length:
                raise BusError(f"{device.name} at {base:#x}..+{length:#x} overlaps {d.name} at {b:#x}..+{n:#x}")
        bisect.insort(self.ranges, (base, length, device), key=lambda r: r[0])

    def find(self, addr: int):
        i = bisect.bisect_right(self.ranges, addr, key=lambda r: r[0]) - 1
        if i >= 0:
            b, n, d = self.ranges[i]
            if b <= addr < b + n:
                return d, addr - b
        return None

    def read(self, addr: int, size: int) -> int:
        hit = self.find(addr)
        if hit is None:
            self.unowned_reads += 1
            return (1 << (8 * size)) - 1
        dev, off = hit
        return dev.mmio_read(off, size) & ((1 << (8 * size)) - 1)

    def write(self, addr: int, size: int, value: int) -> None:
        hit = self.find(addr)
        if hit is None:
            self.unowned_writes += 1
            return
        dev, off = hit
        dev.mmio_write(off, size, value)
