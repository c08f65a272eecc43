"""PCI configuration space: mechanism #1 on 0xCF8/0xCFC, a host bridge, and functions with BARs and INTx.

References: PCI Local Bus Specification 3.0, section 3.2.2.3.2 (configuration mechanism #1) and
section 6 (configuration space header type 0, BAR sizing in 6.2.5.1).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from pvgen.devices.bus import BusError, PortBus, PortDevice
from pvgen.modeldecl import IndexFile
from pvgen.protocol import IX_ENTRY_COUNT, PortClass

# Configuration header registers (PCI 3.0, 6.1), names as in Linux include/uapi/linux/pci_regs.h.
PCI_VENDOR_ID = 0x00
PCI_DEVICE_ID = 0x02
PCI_COMMAND = 0x04
PCI_STATUS = 0x06
PCI_REVISION_ID = 0x08
PCI_CLASS_PROG = 0x09
PCI_CLASS_DEVICE = 0x0A
PCI_CLASS_REVISION = 0x08     # the dword: revision, programming interface, subclass, base class
PCI_CACHE_LINE_SIZE = 0x0C
PCI_LATENCY_TIMER = 0x0D
PCI_HEADER_TYPE = 0x0E
PCI_BASE_ADDRESS_0 = 0x10
PCI_BASE_ADDRESS_5 = 0x24
PCI_CARDBUS_CIS = 0x28
PCI_SUBSYSTEM_VENDOR_ID = 0x2C
PCI_SUBSYSTEM_ID = 0x2E
PCI_ROM_ADDRESS = 0x30
PCI_CAPABILITY_LIST = 0x34
PCI_RESERVED_38 = 0x38
PCI_INTERRUPT_LINE = 0x3C
PCI_INTERRUPT_PIN = 0x3D

PCI_COMMAND_IO = 0x0001
PCI_COMMAND_MEMORY = 0x0002
PCI_COMMAND_MASTER = 0x0004
PCI_COMMAND_PARITY = 0x0040
PCI_COMMAND_SERR = 0x0100
PCI_COMMAND_INTX_DISABLE = 0x0400
PCI_COMMAND_WRITABLE = (PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY
                        | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE)
PCI_STATUS_INTERRUPT = 0x0008

PCI_BASE_ADDRESS_SPACE_IO = 0x01
PCI_BASE_ADDRESS_MEM_TYPE_32 = 0x00

# CONFIG_ADDRESS (0xCF8) layout: enable bit 31, bus 23:16, device 15:11, function 10:8, register 7:2.
CONFIG_ADDRESS_ENABLE = 0x8000_0000
CONFIG_ADDRESS_MASK = 0x80FF_FFFC

CONFIG_ADDRESS_PORT = 0xCF8   # where the monitor registers PciHost (length 8)
HEADER_TYPE_MULTI_FUNCTION = 0x80

# The type-0 header dwords the guest may read from the published mirror (PciHost.index_entries, protocol v5 index
# file): each is side-effect-free to read and changes only through a configuration write to its own function,
# which the runtime never posts (CONFIG_DATA writes are strict: they flush, and the monitor publishes the mirror
# again after the replay). PCI Local Bus 3.0:
#   0x00 Vendor ID, Device ID: read-only, hardwired (6.2.1).
#   0x08 Revision ID, Class Code: read-only (6.2.1).
#   0x0C Cache Line Size, Latency Timer (read/write: only a configuration write changes them, 6.2.4), Header Type
#        (read-only, 6.2.1), BIST: 0 in every function modelled here (BIST Capable clear, 6.2.4). A function that
#        implemented BIST would have to be left out: Start BIST clears itself when the test completes.
#   0x10..0x24 Base Address Registers, as programmed (6.2.5.1): a BAR changes only by a configuration write, and
#        its read-back after the all-ones sizing write is the size mask, published at that write's flush.
#   0x28 CardBus CIS Pointer, 0x2C Subsystem Vendor ID / Subsystem ID: read-only (6.2.4).
#   0x30 Expansion ROM BAR (6.2.5.2), 0x34 Capabilities Pointer (6.7), 0x38 reserved: not implemented here,
#        "read accesses to reserved or unimplemented registers must be completed normally and a data value of 0
#        returned" (6.1).
#   0x3C Interrupt Line (read/write, written by configuration software only), Interrupt Pin, Min_Gnt, Max_Lat
#        (read-only, 6.2.4).
# Left out: the Command/Status dword at 0x04. Status bit 3, Interrupt Status (6.2.3), follows the function's INTx#
# whenever the device raises or drops its interrupt, between the guest's configuration accesses, and the Status
# error bits are set by hardware events (6.2.3); a word read of Command would be served from the same dword, so
# the whole dword is read from the device. Also left out: the device-specific space 0x40..0xFF (6.1 leaves its
# read behaviour to the device).
MIRRORED_REGISTERS = (PCI_VENDOR_ID, PCI_CLASS_REVISION, PCI_CACHE_LINE_SIZE,
                      *range(PCI_BASE_ADDRESS_0, PCI_BASE_ADDRESS_5 + 4, 4), PCI_CARDBUS_CIS,
                      PCI_SUBSYSTEM_VENDOR_ID, PCI_ROM_ADDRESS, PCI_CAPABILITY_LIST, PCI_RESERVED_38,
                      PCI_INTERRUPT_LINE)


def config_address(bus: int, device: int, function: int, reg: int) -> int:
    """CONFIG_ADDRESS of a dword register with the enable bit set (3.2.2.3.2)."""
    return CONFIG_ADDRESS_ENABLE | bus << 16 | device << 11 | function << 8 | (reg & 0xFC)


@dataclass
class Bar:
    """One base address register: an I/O range decoded onto the PortBus, or a 32-bit memory range (sized only)."""

    index: int
    size: int                      # power of two; I/O BARs at least 4, memory BARs at least 16
    io: bool = True
    device: PortDevice | None = None   # what the range decodes to (I/O BARs)
    base: int = 0
    mapped_at: int | None = None   # where the device currently sits on the bus

    def value(self) -> int:
        flags = PCI_BASE_ADDRESS_SPACE_IO if self.io else PCI_BASE_ADDRESS_MEM_TYPE_32
        return (self.base & ~(self.size - 1) & 0xFFFF_FFFF) | flags

    def write(self, value: int) -> None:
        self.base = value & ~(self.size - 1) & (0xFFFF_FFFC if self.io else 0xFFFF_FFF0)


@dataclass
class PciFunction:
    """A type-0 configuration header. Writable fields are masked per register; BARs answer size probes."""

    name: str
    vendor_id: int
    device_id: int
    class_code: int                       # 24 bits: base class, subclass, programming interface
    revision: int = 0
    subsystem_vendor_id: int = 0
    subsystem_id: int = 0
    interrupt_pin: int = 0                # 0 none, 1 INTA# .. 4 INTD#
    interrupt_line: int = 0xFF            # firmware's routing, as the monitor pre-assigns it
    header_type: int = 0x00
    bars: list[Bar] = field(default_factory=list)
    command: int = 0
    status: int = 0
    cache_line_size: int = 0
    latency_timer: int = 0
    intx_level: bool = False
    platform_irq: Callable[[bool], None] | None = None   # the interrupt controller input for interrupt_line
    bus: PortBus | None = None
    metrics: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._reset_values = (self.command, [b.base for b in self.bars], self.interrupt_line)

    def reset(self) -> None:
        self.command, bases, self.interrupt_line = self._reset_values[0], self._reset_values[1], \
            self._reset_values[2]
        for bar, base in zip(self.bars, bases):
            bar.base = base
        self.status, self.cache_line_size, self.latency_timer, self.intx_level = 0, 0, 0, False
        self.update_decoding()
        self.update_irq()

    # -- INTx (PCI 3.0, 6.2.2 Command bit 10, 6.2.3 Status bit 3) --------------------------------------------

    def irq(self, level: bool) -> None:
        """The device's INTx# pin; pass this bound method to the device model as its irq callable."""
        self.intx_level = bool(level)
        self.update_irq()

    def intx_enabled(self) -> bool:
        """Whether INTx# reaches the platform now (Command.InterruptDisable clear)."""
        return not self.command & PCI_COMMAND_INTX_DISABLE

    def update_irq(self) -> None:
        self.status = (self.status & ~PCI_STATUS_INTERRUPT) | (PCI_STATUS_INTERRUPT if self.intx_level else 0)
        if self.platform_irq is not None:
            self.platform_irq(self.intx_level and not self.command & PCI_COMMAND_INTX_DISABLE)

    # -- decoding: I/O BARs move the device on the PortBus -----------------------------------------------------

    def update_decoding(self) -> None:
        """Place each I/O BAR's device on the bus where the BAR says, or take it off when decoding is disabled."""
        for bar in self.bars:
            if not bar.io or bar.device is None or self.bus is None:
                continue
            want = bar.base if (self.command & PCI_COMMAND_IO and 0 < bar.base
                                and bar.base + bar.size <= 0x10000) else None
            if want == bar.mapped_at:
                continue
            if bar.mapped_at is not None:
                self.bus.unregister(bar.mapped_at, bar.device)
                bar.mapped_at = None
            if want is not None:
                try:
                    self.bus.register(want, bar.size, bar.device)
                    bar.mapped_at = want
                except BusError:
                    self.metrics["bar_conflict"] += 1

    # -- configuration space as dwords ---------------------------------------------------------------------------

    def _bar_at(self, reg: int) -> Bar | None:
        for bar in self.bars:
            if reg == PCI_BASE_ADDRESS_0 + 4 * bar.index:
                return bar
        return None

    def read_dword(self, reg: int) -> int:
        if reg == PCI_VENDOR_ID:
            return self.vendor_id | self.device_id << 16
        if reg == PCI_COMMAND:
            return self.command | self.status << 16
        if reg == PCI_REVISION_ID:
            return self.revision | self.class_code << 8
        if reg == PCI_CACHE_LINE_SIZE:
            return self.cache_line_size | self.latency_timer << 8 | self.header_type << 16
        if PCI_BASE_ADDRESS_0 <= reg < PCI_SUBSYSTEM_VENDOR_ID - 4:
            bar = self._bar_at(reg)
            return bar.value() if bar else 0
        if reg == PCI_SUBSYSTEM_VENDOR_ID:
            return self.subsystem_vendor_id | self.subsystem_id << 16
        if reg == PCI_INTERRUPT_LINE:
            return self.interrupt_line | self.interrupt_pin << 8
        return 0   # ROM BAR, capability pointer, device-specific space: not implemented, read as zero

    def write_dword(self, reg: int, value: int, byte_mask: int) -> None:
        """Write the bytes of value selected by byte_mask (bit i = byte i) to the dword register reg."""
        old = self.read_dword(reg)
        wmask = 0
        for i in range(4):
            if byte_mask >> i & 1:
                wmask |= 0xFF << (8 * i)
        merged = (old & ~wmask) | (value & wmask)
        if reg == PCI_COMMAND:
            if byte_mask & 0x3:
                self.command = merged & PCI_COMMAND_WRITABLE
            # status bits are RW1C for error bits; this model raises no errors, so status writes change nothing
            self.update_decoding()
        elif reg == PCI_CACHE_LINE_SIZE:
            self.cache_line_size = merged & 0xFF
            self.latency_timer = merged >> 8 & 0xFF
        elif PCI_BASE_ADDRESS_0 <= reg < PCI_SUBSYSTEM_VENDOR_ID - 4:
            bar = self._bar_at(reg)
            if bar is not None:
                bar.write(merged)
                self.update_decoding()
        elif reg == PCI_INTERRUPT_LINE:
            self.interrupt_line = merged & 0xFF
        else:
            self.metrics["readonly_write"] += 1
        self.update_irq()


def host_bridge() -> PciFunction:
    """Function 00:00.0, an i440FX host bridge: Linux's pci_sanity_check looks for a host bridge on bus 0."""
    return PciFunction("host-bridge", vendor_id=0x8086, device_id=0x1237, class_code=0x060000, revision=0x02)


@dataclass
class PciHost:
    """Configuration mechanism #1: CONFIG_ADDRESS at offset 0 (dword only), CONFIG_DATA at offsets 4..7."""

    name: str = "pci-conf1"
    config_address: int = 0
    functions: dict[tuple[int, int, int], PciFunction] = field(default_factory=dict)
    metrics: Counter = field(default_factory=Counter)

    def reset(self) -> None:
        self.config_address = 0
        for fn in self.functions.values():
            fn.reset()

    def add(self, device: int, function: int, fn: PciFunction) -> PciFunction:
        """Plug fn in at bus 0, device, function; the monitor assigns BARs and the interrupt line beforehand."""
        self.functions[(0, device, function)] = fn
        fn.update_decoding()
        fn.update_irq()
        return fn

    def update_irq(self) -> None:
        """The host bridge raises no interrupt of its own (functions drive their INTx lines)."""

    def _target(self, a: int | None = None) -> tuple[PciFunction | None, int]:
        """The function and dword register CONFIG_ADDRESS `a` (default: the current one) selects."""
        a = self.config_address if a is None else a
        if not a & CONFIG_ADDRESS_ENABLE:
            return None, 0
        key = (a >> 16 & 0xFF, a >> 11 & 0x1F, a >> 8 & 0x7)
        return self.functions.get(key), a & 0xFC

    def config_dword(self, a: int) -> int:
        """What a dword read of CONFIG_DATA returns with CONFIG_ADDRESS = `a` (no side effect): the function's
        register, or all-ones for an absent function or a clear enable bit (master abort, 6.1 and 6.2.1)."""
        fn, reg = self._target(a & CONFIG_ADDRESS_MASK)
        return 0xFFFF_FFFF if fn is None else fn.read_dword(reg)

    def io_read(self, offset: int, size: int) -> int:
        ones = (1 << (8 * size)) - 1
        if offset == 0 and size == 4:
            return self.config_address
        if offset < 4:
            self.metrics["address_not_dword"] += 1
            return ones
        off = offset - 4
        if size not in (1, 2, 4) or off % size:
            self.metrics["bad_data_access"] += 1
            return ones
        return self.config_dword(self.config_address) >> (8 * off) & ones   # absent / disabled: all-ones

    def io_write(self, offset: int, size: int, value: int) -> None:
        if offset == 0 and size == 4:
            self.config_address = value & CONFIG_ADDRESS_MASK
        elif offset < 4:
            self.metrics["address_not_dword"] += 1   # e.g. Linux's type-1 probe writes 0x01 to 0xCFB
        else:
            off = offset - 4
            if size not in (1, 2, 4) or off % size:
                self.metrics["bad_data_access"] += 1
            else:
                fn, reg = self._target()
                if fn is None:
                    self.metrics["absent_write"] += 1
                else:
                    fn.write_dword(reg, value << (8 * off), ((1 << size) - 1) << off)
        self.update_irq()

    def port_classes(self) -> dict[int, tuple[PortClass, PortClass]]:
        """CONFIG_ADDRESS writes only select a register: posted. Data accesses may remap BARs: strict."""
        return {0: (PortClass.STRICT, PortClass.POSTED)}

    # -- the index/data register file (protocol v5, pvgen/modeldecl.py) -------------------------------------------

    def index_files(self) -> list[IndexFile]:
        """Mechanism #1 as an index/data file: the dword CONFIG_ADDRESS write at offset 0 selects what CONFIG_DATA
        (offsets 4..7, byte lane = offset - 4) reads; the key is the address under CONFIG_ADDRESS_MASK (enable
        bit, bus, device, function, dword register: what the host bridge decodes, 3.2.2.3.2)."""
        return [IndexFile(index_offset=0, index_size=4, data_offset=4, data_len=4, key_mask=CONFIG_ADDRESS_MASK)]

    def index_latch(self, i: int) -> int | None:
        """The current CONFIG_ADDRESS (always known: the host bridge holds it as written, masked)."""
        return self.config_address if i == 0 else None

    def index_entries_key(self, i: int) -> tuple:
        """Everything index_entries(i) depends on (the monitor republishes the entries only when it changes): the
        functions present and every field a mirrored register reads (Command/Status are not mirrored)."""
        return tuple((where, fn.vendor_id, fn.device_id, fn.revision, fn.class_code, fn.cache_line_size,
                      fn.latency_timer, fn.header_type, fn.subsystem_vendor_id, fn.subsystem_id,
                      fn.interrupt_line, fn.interrupt_pin, tuple((b.index, b.base, b.size, b.io) for b in fn.bars))
                     for where, fn in self.functions.items()) if i == 0 else ()

    def index_entries(self, i: int) -> dict[int, int]:
        """The configuration dwords a read may take from the mirror now (key: CONFIG_ADDRESS & CONFIG_ADDRESS_MASK,
        value: what config_dword returns), at most IX_ENTRY_COUNT, in this order of priority: the
        MIRRORED_REGISTERS of every present function; then the Vendor ID dword (all-ones, 6.2.1) of each absent
        function a bus-0 scan reads: function 0 of every empty slot, and functions 1-7 of a slot whose function 0
        is multi-function (Header Type bit 7; Linux's pci_scan_slot and the environment's lx_pci.c read nothing
        else of a function whose Vendor ID reads all-ones)."""
        if i != 0:
            return {}
        keys = [config_address(*where, reg) for where in sorted(self.functions) for reg in MIRRORED_REGISTERS]
        for dev in range(32):
            f0 = self.functions.get((0, dev, 0))
            if f0 is None:
                keys.append(config_address(0, dev, 0, PCI_VENDOR_ID))
            elif f0.header_type & HEADER_TYPE_MULTI_FUNCTION:
                keys += [config_address(0, dev, fn, PCI_VENDOR_ID) for fn in range(1, 8)
                         if (0, dev, fn) not in self.functions]
        return {k: self.config_dword(k) for k in keys[:IX_ENTRY_COUNT]}


def ne2000_function(nic: PortDevice, *, io_base: int = 0xC000, irq_line: int = 11,
                    platform_irq: Callable[[bool], None] | None = None, bus: PortBus | None = None,
                    enabled: bool = True) -> PciFunction:
    """A RealTek RTL-8029 (10ec:8029, class 0x020000) with BAR0 = 32 I/O ports, INTA#, pre-assigned like firmware."""
    fn = PciFunction("ne2k-pci", vendor_id=0x10EC, device_id=0x8029, class_code=0x020000,
                     subsystem_vendor_id=0x10EC, subsystem_id=0x8029, interrupt_pin=1,
                     interrupt_line=irq_line, bars=[Bar(0, 32, io=True, device=nic, base=io_base)],
                     command=PCI_COMMAND_IO if enabled else 0, platform_irq=platform_irq, bus=bus)
    if hasattr(nic, "irq"):
        wire_intx(nic, fn, irq_line)
    return fn


def wire_intx(nic, fn: PciFunction, irq_line: int) -> None:
    """The NIC's interrupt output becomes `fn`'s INTA#, routed to platform line `irq_line`; the NIC's in-guest
    interrupt rule (protocol v5) needs that line and whether INTx# passes now."""
    nic.irq = fn.irq
    nic.irq_line_number = irq_line
    nic.irq_gate = fn.intx_enabled


def isa_bridge() -> PciFunction:
    """PIIX3 function 0 (8086:7000, ISA bridge), multi-function header: Linux scans 00:01.1 only if 00:01.0 says so."""
    return PciFunction("piix3-isa", vendor_id=0x8086, device_id=0x7000, class_code=0x060100, header_type=0x80)


def ide_legacy_function() -> PciFunction:
    """A PIIX3 IDE function (8086:7010) in compatibility mode (programming interface 80h): both channels on the
    legacy ports and IRQs 14/15, no BMDMA BAR (Linux's ata_piix then runs the channel in PIO only)."""
    return PciFunction("piix3-ide", vendor_id=0x8086, device_id=0x7010, class_code=0x010180,
                       command=PCI_COMMAND_IO)
