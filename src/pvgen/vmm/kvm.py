"""The KVM API as data: ioctl numbers, constants and ctypes structures (linux/kvm.h, x86 arch), and one ioctl helper."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os

from pvgen.errors import EnvironmentMissing, KvmError

# --- ioctl number encoding (asm-generic/ioctl.h) -------------------------------------------------------------
_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2
KVMIO = 0xAE


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (KVMIO << 8) | nr


def _io(nr: int) -> int:
    return _ioc(_IOC_NONE, nr, 0)


def _ior(nr: int, size: int) -> int:
    return _ioc(_IOC_READ, nr, size)


def _iow(nr: int, size: int) -> int:
    return _ioc(_IOC_WRITE, nr, size)


def _iowr(nr: int, size: int) -> int:
    return _ioc(_IOC_READ | _IOC_WRITE, nr, size)


# --- structures (linux/kvm.h, arch/x86/include/uapi/asm/kvm.h) -----------------------------------------------
class kvm_userspace_memory_region(ctypes.Structure):
    _fields_ = [("slot", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("guest_phys_addr", ctypes.c_uint64),
                ("memory_size", ctypes.c_uint64), ("userspace_addr", ctypes.c_uint64)]


class kvm_regs(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in (
        "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags")]


class kvm_segment(ctypes.Structure):
    _fields_ = [("base", ctypes.c_uint64), ("limit", ctypes.c_uint32), ("selector", ctypes.c_uint16),
                ("type", ctypes.c_uint8), ("present", ctypes.c_uint8), ("dpl", ctypes.c_uint8),
                ("db", ctypes.c_uint8), ("s", ctypes.c_uint8), ("l", ctypes.c_uint8), ("g", ctypes.c_uint8),
                ("avl", ctypes.c_uint8), ("unusable", ctypes.c_uint8), ("padding", ctypes.c_uint8)]


class kvm_dtable(ctypes.Structure):
    _fields_ = [("base", ctypes.c_uint64), ("limit", ctypes.c_uint16), ("padding", ctypes.c_uint16 * 3)]


class kvm_sregs(ctypes.Structure):
    _fields_ = [("cs", kvm_segment), ("ds", kvm_segment), ("es", kvm_segment), ("fs", kvm_segment),
                ("gs", kvm_segment), ("ss", kvm_segment), ("tr", kvm_segment), ("ldt", kvm_segment),
                ("gdt", kvm_dtable), ("idt", kvm_dtable),
                ("cr0", ctypes.c_uint64), ("cr2", ctypes.c_uint64), ("cr3", ctypes.c_uint64),
                ("cr4", ctypes.c_uint64), ("cr8", ctypes.c_uint64), ("efer", ctypes.c_uint64),
                ("apic_base", ctypes.c_uint64), ("interrupt_bitmap", ctypes.c_uint64 * 4)]


class kvm_cpuid_entry2(ctypes.Structure):
    _fields_ = [("function", ctypes.c_uint32), ("index", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("eax", ctypes.c_uint32), ("ebx", ctypes.c_uint32), ("ecx", ctypes.c_uint32),
                ("edx", ctypes.c_uint32), ("padding", ctypes.c_uint32 * 3)]


MAX_CPUID_ENTRIES = 256


class kvm_cpuid2(ctypes.Structure):
    _fields_ = [("nent", ctypes.c_uint32), ("padding", ctypes.c_uint32),
                ("entries", kvm_cpuid_entry2 * MAX_CPUID_ENTRIES)]


class kvm_msr_entry(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint32), ("reserved", ctypes.c_uint32), ("data", ctypes.c_uint64)]


class kvm_msrs(ctypes.Structure):
    _fields_ = [("nmsrs", ctypes.c_uint32), ("pad", ctypes.c_uint32), ("entries", kvm_msr_entry * 8)]


class kvm_pit_config(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint32), ("pad", ctypes.c_uint32 * 15)]


class kvm_irq_level(ctypes.Structure):
    _fields_ = [("irq", ctypes.c_uint32), ("level", ctypes.c_uint32)]


class kvm_coalesced_mmio_zone(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint64), ("size", ctypes.c_uint32), ("pio", ctypes.c_uint32)]


class kvm_stats_header(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint32), ("name_size", ctypes.c_uint32), ("num_desc", ctypes.c_uint32),
                ("id_offset", ctypes.c_uint32), ("desc_offset", ctypes.c_uint32), ("data_offset", ctypes.c_uint32)]


# --- ioctls ---------------------------------------------------------------------------------------------------
KVM_GET_API_VERSION = _io(0x00)
KVM_CREATE_VM = _io(0x01)
KVM_CHECK_EXTENSION = _io(0x03)
KVM_GET_VCPU_MMAP_SIZE = _io(0x04)
KVM_GET_SUPPORTED_CPUID = _iowr(0x05, 8)
KVM_CREATE_VCPU = _io(0x41)
KVM_SET_USER_MEMORY_REGION = _iow(0x46, ctypes.sizeof(kvm_userspace_memory_region))
KVM_SET_TSS_ADDR = _io(0x47)
KVM_SET_IDENTITY_MAP_ADDR = _iow(0x48, 8)
KVM_CREATE_IRQCHIP = _io(0x60)
KVM_IRQ_LINE = _iow(0x61, ctypes.sizeof(kvm_irq_level))
KVM_REGISTER_COALESCED_MMIO = _iow(0x67, ctypes.sizeof(kvm_coalesced_mmio_zone))
KVM_UNREGISTER_COALESCED_MMIO = _iow(0x68, ctypes.sizeof(kvm_coalesced_mmio_zone))
KVM_CREATE_PIT2 = _iow(0x77, ctypes.sizeof(kvm_pit_config))
KVM_REINJECT_CONTROL = _io(0x71)


class kvm_reinject_control(ctypes.Structure):
    _fields_ = [("pit_reinject", ctypes.c_uint8), ("reserved", ctypes.c_uint8 * 31)]
KVM_RUN = _io(0x80)
KVM_GET_REGS = _ior(0x81, ctypes.sizeof(kvm_regs))
KVM_SET_REGS = _iow(0x82, ctypes.sizeof(kvm_regs))
KVM_GET_SREGS = _ior(0x83, ctypes.sizeof(kvm_sregs))
KVM_SET_SREGS = _iow(0x84, ctypes.sizeof(kvm_sregs))
KVM_GET_MSRS = _iowr(0x88, 8)
KVM_SET_MSRS = _iow(0x89, 8)
KVM_SET_CPUID2 = _iow(0x90, 8)
KVM_GET_TSC_KHZ = _io(0xA3)
KVM_GET_STATS_FD = _io(0xCE)

IOCTL_NAMES = {v: k for k, v in dict(globals()).items() if k.startswith("KVM_") and isinstance(v, int)}

# --- capabilities (KVM_CHECK_EXTENSION) -----------------------------------------------------------------------
KVM_CAP_IRQCHIP = 0
KVM_CAP_USER_MEMORY = 3
KVM_CAP_SET_TSS_ADDR = 4
KVM_CAP_EXT_CPUID = 7
KVM_CAP_COALESCED_MMIO = 15
KVM_CAP_PIT2 = 33
KVM_CAP_GET_TSC_KHZ = 61
KVM_CAP_COALESCED_PIO = 162
KVM_CAP_BINARY_STATS_FD = 203

KVM_PIO_PAGE_OFFSET = 1              # pages into the vCPU mmap (arch/x86/include/uapi/asm/kvm.h)
KVM_COALESCED_MMIO_PAGE_OFFSET = 2
KVM_PIT_SPEAKER_DUMMY = 1

# --- exit reasons (linux/kvm.h) ---------------------------------------------------------------------------------
EXIT_REASONS = {
    0: "UNKNOWN", 1: "EXCEPTION", 2: "IO", 3: "HYPERCALL", 4: "DEBUG", 5: "HLT", 6: "MMIO",
    7: "IRQ_WINDOW_OPEN", 8: "SHUTDOWN", 9: "FAIL_ENTRY", 10: "INTR", 11: "SET_TPR", 12: "TPR_ACCESS",
    13: "S390_SIEIC", 14: "S390_RESET", 15: "DCR", 16: "NMI", 17: "INTERNAL_ERROR", 18: "OSI",
    19: "PAPR_HCALL", 20: "S390_UCONTROL", 21: "WATCHDOG", 22: "S390_TSCH", 23: "EPR", 24: "SYSTEM_EVENT",
    25: "S390_STSI", 26: "IOAPIC_EOI", 27: "HYPERV", 28: "ARM_NISV", 29: "X86_RDMSR", 30: "X86_WRMSR",
    31: "DIRTY_RING_FULL", 32: "AP_RESET_HOLD", 33: "X86_BUS_LOCK", 34: "XEN", 35: "RISCV_SBI",
    36: "RISCV_CSR", 37: "NOTIFY", 38: "LOONGARCH_IOCSR", 39: "MEMORY_FAULT",
}
KVM_EXIT_IO, KVM_EXIT_HLT, KVM_EXIT_MMIO, KVM_EXIT_SHUTDOWN = 2, 5, 6, 8
KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT = 0, 1

# kvm_run field offsets (x86-64): the exit union starts at 32.
RUN_EXIT_REASON = 8
RUN_UNION = 32

# --- x86 architectural constants (SDM vol. 3) -------------------------------------------------------------------
CR0_PE, CR0_MP, CR0_ET, CR0_NE, CR0_WP, CR0_PG = 1, 2, 0x10, 0x20, 0x10000, 0x80000000
CR4_PAE, CR4_OSFXSR, CR4_OSXMMEXCPT = 0x20, 0x200, 0x400
EFER_SCE, EFER_LME, EFER_LMA = 0x1, 0x100, 0x400
MSR_GS_BASE = 0xC0000101
MSR_KERNEL_GS_BASE = 0xC0000102


def ioctl(fd: int, request: int, arg=0, mutate: bool = True) -> int:
    """One KVM ioctl; a failure becomes KvmError naming it."""
    try:
        if isinstance(arg, int):
            if arg > 0x7FFFFFFF:
                return _libc_ioctl(fd, request, arg)
            return fcntl.ioctl(fd, request, arg)
        return fcntl.ioctl(fd, request, arg, mutate)
    except OSError as exc:
        raise KvmError(IOCTL_NAMES.get(request, f"ioctl {request:#x}"), exc.errno or 0) from None


def _libc_ioctl(fd: int, request: int, arg: int) -> int:
    """ioctl with an unsigned long argument too large for fcntl.ioctl's C int."""
    libc = ctypes.CDLL(None, use_errno=True)
    ret = libc.ioctl(ctypes.c_int(fd), ctypes.c_ulong(request), ctypes.c_ulong(arg))
    if ret < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return ret


def open_kvm() -> int:
    """Open /dev/kvm read-write, with a clear error when it is absent or not writable."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        raise EnvironmentMissing("/dev/kvm", "load the kvm module or run on a host that exposes KVM") from None
    except PermissionError:
        raise EnvironmentMissing("write access to /dev/kvm",
                                 "run as root or add your user to the 'kvm' group") from None
    version = ioctl(fd, KVM_GET_API_VERSION)
    if version != 12:
        os.close(fd)
        raise KvmError("KVM_GET_API_VERSION", errno.EPROTO, f"API version {version}, pvgen needs 12")
    return fd


def require_cap(fd: int, cap: int, name: str) -> int:
    """KVM_CHECK_EXTENSION that must succeed; returns the capability's value."""
    value = ioctl(fd, KVM_CHECK_EXTENSION, cap)
    if value <= 0:
        raise KvmError("KVM_CHECK_EXTENSION", errno.EOPNOTSUPP, f"capability {name} is absent on this host")
    return value
