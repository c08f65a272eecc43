"""PCI configuration mechanism #1, header fields, BAR sizing and remapping, INTx (PCI Local Bus 3.0, 3.2.2.3 / 6)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pvgen.devices import pci as P
from pvgen.devices.bus import PortBus
from pvgen.devices.ne2000 import CR, Ne2000
from pvgen.protocol import PortClass


def addr(dev: int, reg: int, fn: int = 0, bus: int = 0) -> int:
    return 0x8000_0000 | bus << 16 | dev << 11 | fn << 8 | reg


class Line:
    def __init__(self) -> None:
        self.level = False

    def __call__(self, level: bool) -> None:
        self.level = level


def machine():
    bus, line = PortBus(), Line()
    host = P.PciHost()
    bus.register(P.CONFIG_ADDRESS_PORT, 8, host)
    host.add(0, 0, P.host_bridge())
    nic = Ne2000()
    fn = host.add(3, 0, P.ne2000_function(nic, io_base=0xC000, irq_line=11, platform_irq=line, bus=bus))
    return bus, host, nic, fn, line


def cfg_read(bus, dev, reg, size=4, fn=0):
    bus.write(0xCF8, 4, addr(dev, reg & 0xFC, fn))
    return bus.read(0xCFC + (reg & 3), size)


def cfg_write(bus, dev, reg, value, size=4, fn=0):
    bus.write(0xCF8, 4, addr(dev, reg & 0xFC, fn))
    bus.write(0xCFC + (reg & 3), size, value)


def test_linux_type1_probe():
    bus, host, *_ = machine()
    bus.write(0xCFB, 1, 0x01)                                  # pci_check_type1: byte write, not the address
    tmp = bus.read(0xCF8, 4)
    bus.write(0xCF8, 4, 0x8000_0000)
    assert bus.read(0xCF8, 4) == 0x8000_0000
    bus.write(0xCF8, 4, tmp)
    assert host.metrics["address_not_dword"] == 1
    assert cfg_read(bus, 0, P.PCI_CLASS_DEVICE, 2) == 0x0600  # host bridge on 00:00.0
    assert cfg_read(bus, 0, P.PCI_VENDOR_ID, 2) == 0x8086


def test_ids_class_and_byte_word_dword_access():
    bus, *_ = machine()
    assert cfg_read(bus, 3, P.PCI_VENDOR_ID) == 0x8029_10EC
    assert cfg_read(bus, 3, P.PCI_DEVICE_ID, 2) == 0x8029
    assert cfg_read(bus, 3, P.PCI_VENDOR_ID + 1, 1) == 0x10
    assert cfg_read(bus, 3, P.PCI_CLASS_DEVICE + 1, 1) == 0x02    # network controller
    assert cfg_read(bus, 3, P.PCI_INTERRUPT_LINE, 1) == 11
    assert cfg_read(bus, 3, P.PCI_INTERRUPT_PIN, 1) == 1
    cfg_write(bus, 3, P.PCI_INTERRUPT_LINE, 10, 1)
    assert cfg_read(bus, 3, P.PCI_INTERRUPT_LINE, 2) == 0x010A    # the pin is read-only
    cfg_write(bus, 3, P.PCI_LATENCY_TIMER, 0x40, 1)
    assert cfg_read(bus, 3, P.PCI_CACHE_LINE_SIZE) >> 8 & 0xFF == 0x40


def test_absent_functions_and_disabled_mechanism_read_all_ones():
    bus, host, *_ = machine()
    assert cfg_read(bus, 7, P.PCI_VENDOR_ID) == 0xFFFF_FFFF
    assert cfg_read(bus, 3, P.PCI_VENDOR_ID, 2, fn=1) == 0xFFFF
    bus.write(0xCF8, 4, addr(0, 0, bus=1))
    assert bus.read(0xCFC, 4) == 0xFFFF_FFFF
    bus.write(0xCF8, 4, 0)                                     # enable bit clear
    assert bus.read(0xCFC, 2) == 0xFFFF
    cfg_write(bus, 9, P.PCI_COMMAND, 0xFFFF, 2)
    assert host.metrics["absent_write"] == 1


def test_unaligned_data_access_counted():
    bus, host, *_ = machine()
    bus.write(0xCF8, 4, addr(3, 0))
    assert bus.read(0xCFD, 2) == 0xFFFF and bus.read(0xCFE, 4) == 0xFFFF_FFFF
    assert host.metrics["bad_data_access"] == 2


def test_io_bar_sizing_and_remap_moves_the_device():
    bus, host, nic, fn, line = machine()
    assert bus.find(0xC000)[0] is nic
    assert cfg_read(bus, 3, P.PCI_BASE_ADDRESS_0) == 0xC001
    # Linux __pci_read_base: decoding off, write all-ones, read the mask, restore
    cfg_write(bus, 3, P.PCI_COMMAND, 0, 2)
    assert bus.find(0xC000) is None
    cfg_write(bus, 3, P.PCI_BASE_ADDRESS_0, 0xFFFF_FFFF)
    mask = cfg_read(bus, 3, P.PCI_BASE_ADDRESS_0)
    assert mask == 0xFFFF_FFE1 and (~(mask & ~3) + 1) & 0xFFFF == 32
    cfg_write(bus, 3, P.PCI_BASE_ADDRESS_0, 0xD000)
    cfg_write(bus, 3, P.PCI_COMMAND, P.PCI_COMMAND_IO, 2)
    assert bus.find(0xD000)[0] is nic and bus.find(0xC000) is None
    assert bus.read(0xD000 + CR, 1) == 0x21
    assert bus.class_map()[0xD000 + CR][1] == PortClass.DOORBELL
    assert cfg_read(bus, 3, 0x14) == 0                         # unimplemented BAR1 reads zero


def test_memory_bar_sizing():
    fn = P.PciFunction("m", 0x1234, 0x5678, 0x0, bars=[P.Bar(1, 4096, io=False)])
    fn.write_dword(0x14, 0xFFFF_FFFF, 0xF)
    assert fn.read_dword(0x14) == 0xFFFF_F000


def test_bar_conflict_is_counted_not_raised():
    bus, host, nic, fn, line = machine()
    other = Ne2000(name="other")
    bus.register(0xE000, 32, other)
    cfg_write(bus, 3, P.PCI_BASE_ADDRESS_0, 0xE000)
    assert fn.metrics["bar_conflict"] == 1 and bus.find(0xE000)[0] is other


def test_intx_follows_device_and_intx_disable():
    bus, host, nic, fn, line = machine()
    nic.isr, nic.imr = 0, 0
    bus.write(0xC000 + 0x0F, 1, 0x01)                          # IMR: PRX
    nic.isr = 0x01
    nic.update_irq()
    assert line.level and cfg_read(bus, 3, P.PCI_STATUS, 2) & P.PCI_STATUS_INTERRUPT
    cfg_write(bus, 3, P.PCI_COMMAND, P.PCI_COMMAND_IO | P.PCI_COMMAND_INTX_DISABLE, 2)
    assert not line.level and cfg_read(bus, 3, P.PCI_STATUS, 2) & P.PCI_STATUS_INTERRUPT


def test_port_classes():
    bus, host, *_ = machine()
    assert host.port_classes() == {0: (PortClass.STRICT, PortClass.POSTED)}


def test_ide_function_in_legacy_mode():
    bus, host, *_ = machine()
    host.add(1, 0, P.isa_bridge())
    host.add(1, 1, P.ide_legacy_function())
    assert cfg_read(bus, 1, P.PCI_HEADER_TYPE, 1) & 0x80                 # multi-function: 1.1 gets scanned
    assert cfg_read(bus, 1, P.PCI_VENDOR_ID, fn=1) == 0x7010_8086
    assert cfg_read(bus, 1, P.PCI_REVISION_ID, fn=1) >> 8 == 0x010180   # IDE, compatibility mode, bus master
    assert cfg_read(bus, 1, 0x20, fn=1) == 0                            # no BMDMA BAR: PIO only

_pci_access = st.tuples(st.sampled_from(["r", "w"]), st.integers(0, 7), st.sampled_from([1, 2, 4]),
                        st.integers(0, 0xFFFF_FFFF))


@settings(max_examples=100, deadline=None)
@given(ops=st.lists(_pci_access, max_size=60), dev=st.sampled_from([0, 3, 5]), reg=st.sampled_from(
    [0x00, 0x04, 0x0C, 0x10, 0x14, 0x30, 0x3C, 0x40]))
def test_random_config_accesses_never_raise_and_decoding_follows_command_and_bar(ops, dev, reg):
    bus, host, nic, fn, line = machine()
    bus.write(0xCF8, 4, addr(dev, reg))
    for kind, off, size, value in ops:
        if kind == "r":
            assert 0 <= bus.read(0xCF8 + off, size) < 1 << (8 * size)
        else:
            bus.write(0xCF8 + off, size, value & ((1 << (8 * size)) - 1))
    base = fn.bars[0].base
    assert base % 32 == 0
    mapped = [r.base for r in bus.ranges if r.device is nic]
    clash = base < 0xCF8 + 8 and 0xCF8 < base + 32                  # would overlap the config ports: refused
    want = fn.command & P.PCI_COMMAND_IO and 0 < base and base + 32 <= 0x10000 and not clash
    assert mapped == ([base] if want else [])
    assert line.level == (fn.intx_level and not fn.command & P.PCI_COMMAND_INTX_DISABLE)
