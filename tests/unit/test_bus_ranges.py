"""The port bus and the MMIO bus are one range map: offsets, overlaps named, unowned accesses counted."""

from __future__ import annotations

import pytest

from pvgen.devices.bus import BusError, PortBus
from pvgen.vmm.mmio import MmioBus


class Rec:
    def __init__(self, name: str):
        self.name, self.log = name, []

    def io_read(self, off, size):
        self.log.append(("r", off, size))
        return 0x1234_5678_9ABC

    def io_write(self, off, size, value):
        self.log.append(("w", off, size, value))

    mmio_read, mmio_write = io_read, io_write


@pytest.mark.parametrize("bus, base", [(PortBus(), 0x1F0), (MmioBus(), 0xFEC0_0000)])
def test_offsets_masks_overlaps_and_unowned(bus, base):
    a, b = Rec("a"), Rec("b")
    bus.register(base, 8, a)
    bus.register(base + 8, 8, b)
    assert bus.read(base + 9, 2) == 0x9ABC and b.log == [("r", 1, 2)]
    bus.write(base + 3, 1, 0x1FF)
    assert a.log == [("w", 3, 1, 0xFF)]
    with pytest.raises(BusError, match=r"c at 0x[0-9a-f]+\.\.\+0x4 overlaps b at"):
        bus.register(base + 14, 4, Rec("c"))
    assert bus.read(base + 16, 4) == 0xFFFF_FFFF and bus.unowned_reads == 1
    bus.write(base - 1, 1, 0)
    assert bus.unowned_writes == 1
    bus.unregister(base, a)
    assert bus.find(base) is None
    with pytest.raises(BusError):
        bus.unregister(base, a)


def test_each_bus_keeps_to_its_address_space():
    with pytest.raises(BusError, match="bad port range"):
        PortBus().register(0xFFFF, 2, Rec("x"))
    MmioBus().register(0xFFFF_FFFF_0000, 0x1000, Rec("high"))
