"""The MMIO bus: guest-physical ranges mapped to devices with mmio_read/mmio_write(offset, size, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pvgen.devices.bus import RangeBus


@dataclass
class MmioBus(RangeBus):
    """The same range map as the port bus, over the 64-bit guest-physical space."""

    limit: int = field(default=1 << 64, repr=False)
    kind: str = field(default="MMIO", repr=False)

    def _dev_read(self, dev, offset: int, size: int) -> int:
        return dev.mmio_read(offset, size)

    def _dev_write(self, dev, offset: int, size: int, value: int) -> None:
        dev.mmio_write(offset, size, value)
