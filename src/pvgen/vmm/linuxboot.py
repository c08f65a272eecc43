"""A Linux bzImage loader for the monitor: the x86 64-bit boot protocol (zero page, e820, command line, initrd).

Facts from the Linux boot protocol (Documentation/arch/x86/boot.rst, "64-bit boot protocol" and "The real-mode kernel
header") and the zero page layout (Documentation/arch/x86/zero-page.rst). The protected-mode kernel goes to 1 MiB;
the vCPU starts in long mode at its 64-bit entry (load address + 0x200) with %rsi = the zero page, flat
__BOOT_CS/__BOOT_DS segments and an identity map of the low 4 GiB. Linux then finds our 16550 (ttyS0), the
in-kernel PIC/PIT/LAPIC and, from the CPUID KVM_GET_SUPPORTED_CPUID gives, kvmclock."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from pvgen.errors import PvgenError
from pvgen.vmm import kvm, layout
from pvgen.vmm.hxdev import GuestStop

# --- the setup header (boot.rst), as offsets into the bzImage's first sector and the zero page --------------------
SETUP_SECTS, BOOT_FLAG, HEADER, VERSION = 0x1F1, 0x1FE, 0x202, 0x206
TYPE_OF_LOADER, LOADFLAGS, RAMDISK_IMAGE, RAMDISK_SIZE = 0x210, 0x211, 0x218, 0x21C
HEAP_END_PTR, CMD_LINE_PTR, INITRD_ADDR_MAX = 0x224, 0x228, 0x22C
XLOADFLAGS, CMDLINE_SIZE, INIT_SIZE = 0x236, 0x238, 0x260
LOADED_HIGH, CAN_USE_HEAP = 0x01, 0x80
XLF_KERNEL_64 = 0x01
MIN_VERSION = 0x020C                  # 2.12: xloadflags, the 64-bit entry we use
# --- zero page fields outside the setup header (zero-page.rst) ----------------------------------------------------
EXT_RAMDISK_IMAGE, EXT_RAMDISK_SIZE, EXT_CMD_LINE_PTR = 0x0C0, 0x0C4, 0x0C8
E820_ENTRIES, E820_TABLE, E820_MAX = 0x1E8, 0x2D0, 128
E820_ENTRY = struct.Struct("<QQI")
E820_RAM, E820_RESERVED = 1, 2

# --- where things go in guest-physical memory (the harness's page tables at 0x3000..0xa000 are reused) -----------
GDT_GPA = 0x500
ZERO_PAGE_GPA = 0x10000
CMDLINE_GPA = 0x20000
KERNEL_GPA = 0x100000
EBDA_START = 0x9FC00                   # conventional memory ends here; 0x9fc00..1 MiB stays reserved
BOOT_CS, BOOT_DS = 0x10, 0x18         # the selectors the 64-bit entry expects
NIC_IO_BASE, NIC_IRQ, NIC_SLOT = 0xC000, 11, 3   # as the bench's Linux kit pre-assigns them
DISK_SECTORS = 8192                   # a 4 MiB scratch disk on the primary ATA channel
MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING = 0x1A0, 0x1
CPUID_FEATURES, CPUID_HYPERVISOR_ECX = 0x1, 1 << 31   # SDM: leaf 1 ECX bit 31 is reserved for hypervisors


@dataclass(frozen=True)
class BzImage:
    """The parts of a bzImage the loader needs."""

    setup: bytes          # the real-mode part: boot sector + setup (its header is copied into the zero page)
    kernel: bytes         # the protected-mode part, loaded at 1 MiB
    version: int
    initrd_addr_max: int
    cmdline_size: int
    init_size: int

    @staticmethod
    def parse(path: Path) -> "BzImage":
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PvgenError(f"{path}: cannot read the kernel image: {exc.strerror}") from None
        if len(data) < 0x1000 or data[HEADER:HEADER + 4] != b"HdrS" or data[BOOT_FLAG:BOOT_FLAG + 2] != b"\x55\xaa":
            raise PvgenError(f"{path}: not a bzImage (no 'HdrS' setup header at {HEADER:#x})")
        version = _u16(data, VERSION)
        if version < MIN_VERSION:
            raise PvgenError(f"{path}: boot protocol {version >> 8}.{version & 0xff}, the loader needs 2.12 or later")
        if not _u16(data, XLOADFLAGS) & XLF_KERNEL_64:
            raise PvgenError(f"{path}: the kernel has no 64-bit entry point (xloadflags bit XLF_KERNEL_64)")
        if not data[LOADFLAGS] & LOADED_HIGH:
            raise PvgenError(f"{path}: a zImage (loaded low); only bzImage is supported")
        setup_sects = data[SETUP_SECTS] or 4
        split = (setup_sects + 1) * 512
        return BzImage(data[:split], data[split:], version, _u32(data, INITRD_ADDR_MAX), _u32(data, CMDLINE_SIZE),
                       _u32(data, INIT_SIZE))


def _u16(b: bytes, off: int) -> int:
    return struct.unpack_from("<H", b, off)[0]


def _u32(b: bytes, off: int) -> int:
    return struct.unpack_from("<I", b, off)[0]


def e820_map(ram_size: int) -> list[tuple[int, int, int]]:
    """(address, size, type): conventional memory, the reserved EBDA/VGA/BIOS hole, then RAM from 1 MiB."""
    return [(0, EBDA_START, E820_RAM), (EBDA_START, KERNEL_GPA - EBDA_START, E820_RESERVED),
            (KERNEL_GPA, ram_size - KERNEL_GPA, E820_RAM)]


def zero_page(img: BzImage, ram_size: int, cmdline_gpa: int, initrd: tuple[int, int] | None) -> bytes:
    """struct boot_params: the image's own setup header, what a boot loader fills in, and the e820 table."""
    zp = bytearray(4096)
    end = HEADER + img.setup[0x201]          # the header runs to the jump's target (boot.rst)
    zp[SETUP_SECTS:end] = img.setup[SETUP_SECTS:end]
    zp[TYPE_OF_LOADER] = 0xFF                # "undefined" boot loader
    zp[LOADFLAGS] |= CAN_USE_HEAP
    struct.pack_into("<H", zp, HEAP_END_PTR, 0xFE00)
    struct.pack_into("<I", zp, CMD_LINE_PTR, cmdline_gpa & 0xFFFFFFFF)
    struct.pack_into("<I", zp, EXT_CMD_LINE_PTR, cmdline_gpa >> 32)
    if initrd:
        gpa, size = initrd
        struct.pack_into("<II", zp, RAMDISK_IMAGE, gpa & 0xFFFFFFFF, size & 0xFFFFFFFF)
        struct.pack_into("<I", zp, EXT_RAMDISK_IMAGE, gpa >> 32)
        struct.pack_into("<I", zp, EXT_RAMDISK_SIZE, size >> 32)
    table = e820_map(ram_size)
    zp[E820_ENTRIES] = len(table)
    for i, entry in enumerate(table):
        E820_ENTRY.pack_into(zp, E820_TABLE + i * E820_ENTRY.size, *entry)
    return bytes(zp)


def boot_gdt() -> bytes:
    """Null, null, __BOOT_CS (64-bit code), __BOOT_DS (flat data)."""
    return struct.pack("<4Q", 0, 0, 0x00AF9B000000FFFF, 0x00CF93000000FFFF)


def load(machine, image: Path, cmdline: str, initrd: Path | None = None) -> None:
    """Place kernel, initrd, command line, zero page, GDT and page tables in `machine`'s RAM and set its vCPU at the
    64-bit entry. `machine` is a pvgen.vmm Machine (mem, vcpu)."""
    img = BzImage.parse(image)
    mem = machine.mem
    raw = cmdline.encode()
    if len(raw) >= max(img.cmdline_size, 256):
        raise PvgenError(f"kernel command line is {len(raw)} bytes; this kernel takes at most {img.cmdline_size - 1}")
    if KERNEL_GPA + max(img.init_size, len(img.kernel)) > mem.size:
        raise PvgenError(f"{mem.size >> 20} MiB of guest RAM is too little for this kernel "
                         f"(it needs {img.init_size >> 20} MiB to decompress itself): give it more")
    mem.write(KERNEL_GPA, img.kernel)
    where = None
    if initrd is not None:
        data = initrd.read_bytes()
        top = min(mem.size, img.initrd_addr_max + 1)
        gpa = (top - len(data)) & ~0xFFFFF
        if gpa < KERNEL_GPA + img.init_size:
            raise PvgenError(f"the initrd ({len(data) >> 20} MiB) does not fit above the kernel: give the guest "
                             "more RAM")
        mem.write(gpa, data)
        where = (gpa, len(data))
    mem.write(CMDLINE_GPA, raw + b"\0")
    mem.write(ZERO_PAGE_GPA, zero_page(img, mem.size, CMDLINE_GPA, where))
    mem.write(GDT_GPA, boot_gdt())
    for gpa, block in layout.page_tables():
        mem.write(gpa, block)
    machine.vcpu.set_cpuid(linux_cpuid(machine.kvm_fd))
    _long_mode(machine.vcpu)


def linux_cpuid(kvm_fd: int) -> kvm.kvm_cpuid2:
    """KVM_GET_SUPPORTED_CPUID with the hypervisor bit set: Linux then reads KVM's leaves (0x40000000: kvmclock,
    the TSC frequency, paravirtual EOI) instead of calibrating clocks against a PIT that runs at host speed."""
    cpuid = kvm.kvm_cpuid2(nent=kvm.MAX_CPUID_ENTRIES)
    kvm.ioctl(kvm_fd, kvm.KVM_GET_SUPPORTED_CPUID, cpuid)
    for e in cpuid.entries[:cpuid.nent]:
        if e.function == CPUID_FEATURES:
            e.ecx |= CPUID_HYPERVISOR_ECX
    return cpuid


def _long_mode(vcpu) -> None:
    s = vcpu.get_sregs()
    s.cs = kvm.kvm_segment(base=0, limit=0xFFFFFFFF, selector=BOOT_CS, type=11, present=1, dpl=0, db=0, s=1, l=1,
                           g=1)
    data = kvm.kvm_segment(base=0, limit=0xFFFFFFFF, selector=BOOT_DS, type=3, present=1, dpl=0, db=1, s=1, l=0, g=1)
    s.ds = s.es = s.fs = s.gs = s.ss = data
    s.gdt = kvm.kvm_dtable(base=GDT_GPA, limit=4 * 8 - 1)
    s.cr3 = layout.PML4_GPA
    s.cr4 = kvm.CR4_PAE
    s.cr0 = kvm.CR0_PE | kvm.CR0_MP | kvm.CR0_ET | kvm.CR0_NE | kvm.CR0_WP | kvm.CR0_PG
    s.efer = kvm.EFER_LME | kvm.EFER_LMA
    vcpu.set_sregs(s)
    vcpu.set_regs(kvm.kvm_regs(rip=KERNEL_GPA + 0x200, rsi=ZERO_PAGE_GPA, rflags=0x2))
    vcpu.set_msrs({MSR_IA32_MISC_ENABLE: MISC_ENABLE_FAST_STRING})


def attach_devices(m) -> dict:
    """The devices of a Linux guest besides the 16550: the MC146818 RTC (0x70) and the POST port (0x80), PCI host
    bridge (0xCF8), an RTL-8029 NE2000 on 00:03.0 with the built-in peer, a PIIX3 IDE function in legacy mode with
    an in-memory disk on the primary channel, and pvgen's batch device on its control ports. Every other port reads
    as all-ones (the port bus)."""
    from pvgen.devices import ata, mc146818, pci
    from pvgen.devices.diskimage import MemoryDisk
    from pvgen.devices.ne2000 import Ne2000
    from pvgen.devices.netpeer import PeerBackend
    from pvgen import protocol as P
    from pvgen.devices.pvbatch import PvBatch

    mc146818.attach(m.ports)
    peer = PeerBackend()
    nic = Ne2000(backend=peer)
    host = pci.PciHost()
    host.add(0, 0, pci.host_bridge())
    host.add(1, 0, pci.isa_bridge())
    host.add(1, 1, pci.ide_legacy_function())
    host.add(NIC_SLOT, 0, pci.ne2000_function(nic, io_base=NIC_IO_BASE, irq_line=NIC_IRQ, bus=m.ports,
                                              platform_irq=lambda level: m.set_irq(NIC_IRQ, level)))
    m.ports.register(pci.CONFIG_ADDRESS_PORT, 8, host)
    disk = ata.AtaDisk(MemoryDisk(DISK_SECTORS), irq=lambda level: m.set_irq(ata.ATA_PRIMARY_IRQ, level))
    ata.attach_primary(m.ports, disk)
    # no in-guest device models for a kernel guest: they lose transmitted frames there (bench/guestlinux.py NO_MODELS)
    pvb = PvBatch(m.ports, m.mem, models=False)
    m.ports.register(P.CTRL_BASE, P.CTRL_LEN, pvb)
    return {"nic": nic, "peer": peer, "disk": disk, "pvbatch": pvb}


def require_hardware_exits(command: str = "pvgen linux boot …") -> None:
    """Refuse a KVM that emulates guest CPL0 code (no VMX/SVM: this machine's host): Linux would crawl, not boot."""
    from pvgen.nested.probe import probe

    if not probe(8)["hardware_exits"]:
        raise PvgenError("this /dev/kvm has no VMX/SVM (the probe's io_exits stay 0): it emulates guest kernel code "
                         "one instruction at a time and Linux would not boot in useful time; run it one level down: "
                         f"pvgen nested -- {command}")


@dataclass
class ConsoleWatch:
    """The guest's console: echoed to `echo`, kept, and watched for the line that ends the run (or a panic).
    Called from the UART's output inside the exit loop: GuestStop ends the run there."""

    until: str
    echo: object = None
    seen: bytearray = None
    found_at: float = 0.0

    def __post_init__(self) -> None:
        self.seen = bytearray()
        self._target = self.until.encode()

    def __call__(self, data: bytes) -> None:
        import time

        if self.echo is not None:
            self.echo.write(data)
            self.echo.flush()
        start = max(len(self.seen) - 256, 0)
        self.seen += data
        at = self.seen.find(self._target, start)
        if at >= 0 and b"\n" in self.seen[at:]:      # the whole line
            self.found_at = time.perf_counter()
            raise GuestStop("exit", 0)
        if b"Kernel panic" in self.seen[start:]:
            raise GuestStop("panic", 255)
