"""Address-range buses: ordered maps of ranges to devices, which see only offsets (crosvm's bus.rs shape); the port bus."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Protocol

from pvgen.errors import PvgenError
from pvgen.protocol import PortClass


class PortDevice(Protocol):
    """What the bus needs of a device. Offsets are relative to the range the device is registered at."""

    name: str

    def io_read(self, offset: int, size: int) -> int: ...

    def io_write(self, offset: int, size: int, value: int) -> None: ...

    def port_classes(self) -> dict[int, tuple[PortClass, PortClass]]:
        """offset -> (class of a read, class of a write). Offsets not listed are STRICT both ways."""
        ...


class BusError(PvgenError):
    """A registration that overlaps another, or a removal of a range that is not there."""


@dataclass(order=True)
class _Range:
    base: int
    length: int
    device: object = field(compare=False)

    def __str__(self) -> str:
        return f"{self.base:#x}..+{self.length:#x}"


@dataclass
class RangeBus:
    """An ordered map of address ranges to devices, for one address space of `limit` addresses. Unowned reads
    return all-ones and unowned writes are ignored; both are counted. Subclasses name the device methods."""

    ranges: list[_Range] = field(default_factory=list)
    unowned_reads: int = 0
    unowned_writes: int = 0
    limit: int = field(default=0x10000, repr=False)
    kind: str = field(default="port", repr=False)
    generation: int = field(default=0, repr=False, compare=False)   # bumped by every (un)registration


    def register(self, base: int, length: int, device) -> None:
        if length <= 0 or base < 0 or base + length > self.limit:
            raise BusError(f"bad {self.kind} range {base:#x}..+{length:#x} for {device.name}")
        new = _Range(base, length, device)
        for r in self.ranges:
            if base < r.base + r.length and r.base < base + length:
                raise BusError(f"{device.name} at {new} overlaps {r.device.name} at {r}")
        bisect.insort(self.ranges, new)
        self.generation += 1

    def unregister(self, base: int, device) -> None:
        for i, r in enumerate(self.ranges):
            if r.base == base and r.device is device:
                del self.ranges[i]
                self.generation += 1
                return
        raise BusError(f"{device.name} is not registered at {base:#x}")

    def find(self, addr: int) -> tuple[object, int] | None:
        """The device owning addr and the offset of addr inside its range."""
        i = bisect.bisect_right(self.ranges, _Range(addr, self.limit, None)) - 1
        if i >= 0:
            r = self.ranges[i]
            if r.base <= addr < r.base + r.length:
                return r.device, addr - r.base
        return None

    def _dev_read(self, dev, offset: int, size: int) -> int:
        raise NotImplementedError

    def _dev_write(self, dev, offset: int, size: int, value: int) -> None:
        raise NotImplementedError

    def read(self, addr: int, size: int) -> int:
        hit = self.find(addr)
        if hit is None:
            self.unowned_reads += 1
            return (1 << (8 * size)) - 1
        dev, off = hit
        return self._dev_read(dev, off, size) & ((1 << (8 * size)) - 1)

    def write(self, addr: int, size: int, value: int) -> None:
        hit = self.find(addr)
        if hit is None:
            self.unowned_writes += 1
            return
        dev, off = hit
        self._dev_write(dev, off, size, value & ((1 << (8 * size)) - 1))


@dataclass
class PortBus(RangeBus):
    """The 64 Ki port-I/O space; devices implement PortDevice (io_read/io_write)."""

    def _dev_read(self, dev: PortDevice, offset: int, size: int) -> int:
        return dev.io_read(offset, size)

    def _dev_write(self, dev: PortDevice, offset: int, size: int, value: int) -> None:
        dev.io_write(offset, size, value)

    def class_map(self) -> dict[int, tuple[PortClass, PortClass]]:
        """port -> (read class, write class) for every port a device declares; all others are STRICT."""
        out: dict[int, tuple[PortClass, PortClass]] = {}
        for r in self.ranges:
            classes = getattr(r.device, "port_classes", None)
            if classes is None:
                continue
            for off, rw in classes().items():
                if 0 <= off < r.length:
                    out[r.base + off] = rw
        return out
