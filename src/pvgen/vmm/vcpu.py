"""One vCPU: its fd, the mmap'd kvm_run page (and coalesced ring), registers, MSRs, CPUID and KVM_RUN."""

from __future__ import annotations

import errno
import fcntl
import mmap
import struct

from pvgen.errors import KvmError
from pvgen.vmm import kvm

_U32 = struct.Struct("<I")
IO_EXIT = struct.Struct("<BBHIQ")          # direction, size, port, count, data_offset (kvm_run.io)
MMIO_EXIT = struct.Struct("<Q8sIB")        # phys_addr, data[8], len, is_write (kvm_run.mmio)
COALESCED_ENTRY = struct.Struct("<QII8s")  # phys_addr, len, pio, data[8] (struct kvm_coalesced_mmio)


class Vcpu:
    """A vCPU with preallocated register structures so that the exit path allocates nothing it can avoid."""

    def __init__(self, vm_fd: int, mmap_size: int, index: int = 0):
        self.index = index
        self.fd = kvm.ioctl(vm_fd, kvm.KVM_CREATE_VCPU, index)
        self.run_mm = mmap.mmap(self.fd, mmap_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.run = memoryview(self.run_mm)
        self.regs = kvm.kvm_regs()
        self.sregs = kvm.kvm_sregs()
        self._run_req = kvm.KVM_RUN
        self.ring_offset = kvm.KVM_COALESCED_MMIO_PAGE_OFFSET * mmap.PAGESIZE
        self.ring_max = (mmap.PAGESIZE - 8) // COALESCED_ENTRY.size if mmap_size > self.ring_offset else 0

    # --- KVM_RUN -------------------------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Enter the guest once; returns kvm_run.exit_reason. EINTR (a host signal) is returned as KVM_EXIT_INTR."""
        try:
            fcntl.ioctl(self.fd, self._run_req, 0)
        except OSError as exc:
            if exc.errno in (errno.EINTR, errno.EAGAIN):
                return 10
            raise KvmError("KVM_RUN", exc.errno or 0) from None
        return self.run_mm[kvm.RUN_EXIT_REASON]   # every exit reason fits the low byte of the u32

    def io_exit(self) -> tuple[int, int, int, int, int]:
        return IO_EXIT.unpack_from(self.run_mm, kvm.RUN_UNION)

    def mmio_exit(self) -> tuple[int, bytes, int, int]:
        return MMIO_EXIT.unpack_from(self.run_mm, kvm.RUN_UNION)

    def drain_coalesced(self, sink) -> int:
        """Replay the coalesced ring in order: sink(is_pio, addr, data bytes). Returns the number of entries."""
        if not self.ring_max:
            return 0
        base = self.ring_offset
        first, last = struct.unpack_from("<II", self.run_mm, base)
        n = 0
        while first != last:
            addr, length, pio, data = COALESCED_ENTRY.unpack_from(self.run_mm, base + 8 + first * COALESCED_ENTRY.size)
            sink(pio, addr, data[:length])
            first = (first + 1) % self.ring_max
            _U32.pack_into(self.run_mm, base, first)
            n += 1
        return n

    # --- state ---------------------------------------------------------------------------------------------------
    def get_regs(self) -> kvm.kvm_regs:
        kvm.ioctl(self.fd, kvm.KVM_GET_REGS, self.regs)
        return self.regs

    def set_regs(self, regs: kvm.kvm_regs | None = None) -> None:
        kvm.ioctl(self.fd, kvm.KVM_SET_REGS, regs or self.regs)

    def get_sregs(self) -> kvm.kvm_sregs:
        kvm.ioctl(self.fd, kvm.KVM_GET_SREGS, self.sregs)
        return self.sregs

    def set_sregs(self, sregs: kvm.kvm_sregs | None = None) -> None:
        kvm.ioctl(self.fd, kvm.KVM_SET_SREGS, sregs or self.sregs)

    def set_msrs(self, values: dict[int, int]) -> None:
        msrs = kvm.kvm_msrs(nmsrs=len(values))
        for i, (index, data) in enumerate(values.items()):
            msrs.entries[i].index, msrs.entries[i].data = index, data
        done = kvm.ioctl(self.fd, kvm.KVM_SET_MSRS, msrs)
        if done != len(values):
            raise KvmError("KVM_SET_MSRS", errno.EINVAL, f"only {done} of {len(values)} MSRs were set")

    def get_msr(self, index: int) -> int:
        msrs = kvm.kvm_msrs(nmsrs=1)
        msrs.entries[0].index = index
        kvm.ioctl(self.fd, kvm.KVM_GET_MSRS, msrs)
        return msrs.entries[0].data

    def set_cpuid(self, cpuid: kvm.kvm_cpuid2) -> None:
        kvm.ioctl(self.fd, kvm.KVM_SET_CPUID2, cpuid)

    def tsc_khz(self) -> int:
        return kvm.ioctl(self.fd, kvm.KVM_GET_TSC_KHZ)

    def describe(self) -> str:
        """The guest registers in one block, for error messages."""
        try:
            r, s = self.get_regs(), self.get_sregs()
        except KvmError as exc:
            return f"(registers unavailable: {exc})"
        names = [f for f, _ in kvm.kvm_regs._fields_]
        parts = [f"{n}={getattr(r, n):#x}" for n in names]
        parts += [f"cs={s.cs.selector:#x}", f"ss={s.ss.selector:#x}", f"cr0={s.cr0:#x}", f"cr2={s.cr2:#x}",
                  f"cr3={s.cr3:#x}", f"cr4={s.cr4:#x}", f"efer={s.efer:#x}"]
        return " ".join(parts)

    def close(self) -> None:
        import os

        self.run.release()
        self.run_mm.close()
        os.close(self.fd)
