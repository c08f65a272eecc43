"""The monitor's port bus: pvgen.devices.bus.PortBus with a per-port lookup cache for the hot exit path."""

from __future__ import annotations

from dataclasses import dataclass, field

from pvgen.devices.bus import PortBus, PortDevice

_MASK = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF}
_MISS = object()


@dataclass
class CachedPortBus(PortBus):
    """Same interface and semantics as PortBus; port -> (device, offset) is memoized and dropped on any
    (un)registration, so an exit costs one dict lookup instead of a bisection."""

    _lut: dict = field(default_factory=dict, repr=False)

    def register(self, base: int, length: int, device: PortDevice) -> None:
        super().register(base, length, device)
        self._lut.clear()

    def unregister(self, base: int, device: PortDevice) -> None:
        super().unregister(base, device)
        self._lut.clear()

    def find(self, port: int):
        hit = self._lut.get(port, _MISS)
        if hit is _MISS:
            hit = self._lut[port] = super().find(port)
        return hit

    def read(self, port: int, size: int) -> int:
        hit = self._lut.get(port, _MISS)
        if hit is _MISS:
            hit = self.find(port)
        mask = _MASK.get(size, (1 << (8 * size)) - 1)
        if hit is None:
            self.unowned_reads += 1
            return mask
        return hit[0].io_read(hit[1], size) & mask

    def write(self, port: int, size: int, value: int) -> None:
        hit = self._lut.get(port, _MISS)
        if hit is _MISS:
            hit = self.find(port)
        if hit is None:
            self.unowned_writes += 1
            return
        hit[0].io_write(hit[1], size, value & _MASK.get(size, (1 << (8 * size)) - 1))
