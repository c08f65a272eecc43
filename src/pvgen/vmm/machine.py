"""VM assembly and the exit loop: memory, irqchip + PIT2, CPUID, long mode, the harness devices, handle_<reason>."""

from __future__ import annotations

import bisect
import math
import signal
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pvgen.devices.uart16550 import Uart16550
from pvgen.errors import KvmError, PvgenError
from pvgen.vmm import faultinfo, kvm, layout
from pvgen.vmm.guestimage import GuestImageError, read_image  # noqa: F401  (GuestImageError: callers catch it here)
from pvgen.vmm.hxdev import HX_PORT_BASE, SINK_PORT_BASE, GuestStop, HarnessDevice, SinkDevice
from pvgen.vmm.memory import GuestMemory
from pvgen.vmm.mmio import MmioBus
from pvgen.vmm.portbus import CachedPortBus
from pvgen.vmm.stats import ExitReport, StatsFd
from pvgen.vmm.vcpu import IO_EXIT as _IO_EXIT, Vcpu

UART_BASE, UART_IRQ = 0x3F8, 4
TSS_ADDR = 0xFFFBD000
_PACK = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I")}
RAM_MB_MAX = 3072        # guest RAM ends below 3 GiB: LAPIC, IOAPIC, the TSS (TSS_ADDR) and device MMIO lie above
TIMEOUT_MAX = 1e6        # seconds (setitimer takes a time_t; 11 days is past any guest run here)


class UnhandledExit(PvgenError):
    """A KVM exit the monitor has no handler for, or a failed VM entry; names it and shows the registers."""


def check_ram_mb(ram_mb: int) -> None:
    if not 2 <= ram_mb <= RAM_MB_MAX or ram_mb % 2:
        raise PvgenError(f"guest RAM of {ram_mb} MiB: expected an even number of MiB from 2 to {RAM_MB_MAX}")


def check_timeout(timeout: float | None) -> None:
    """None or 0: no limit; otherwise a finite number of seconds up to TIMEOUT_MAX."""
    if timeout is not None and not (math.isfinite(timeout) and 0 <= timeout <= TIMEOUT_MAX):
        raise PvgenError(f"timeout {timeout} s: expected seconds from 0 (no limit) to {TIMEOUT_MAX:g}")


@dataclass
class RunResult:
    """How a guest run ended, what it printed, and what it cost in exits."""

    stop: str                      # exit | panic | fault | shutdown | hlt | timeout | system_event | paused
    code: int
    message: str = ""
    console: bytes = b""
    report: ExitReport = field(default_factory=ExitReport)
    marks: list[tuple[int, dict]] = field(default_factory=list)

    def phase(self, start_mark: int, end_mark: int) -> ExitReport:
        """Exits between the last mark `start_mark` and the first following mark `end_mark`, and the guest's
        busy-wait in hx_udelay between them (extra["guest_delay_ns"]) and the monitor's exit handling (extra["monitor_ns"])."""
        a = next((s for m, s in reversed(self.marks) if m == start_mark), None)
        if a is None:
            raise PvgenError(f"the guest never reached mark {start_mark}")
        after = [s for m, s in self.marks if m == end_mark and s["t"] >= a["t"]]
        if not after:
            raise PvgenError(f"the guest never reached mark {end_mark} after mark {start_mark}")
        b = after[0]
        return ExitReport(ExitReport.delta(b["stats"], a["stats"]),
                          {k: v for k, v in ExitReport.delta(b["runs"], a["runs"]).items() if v},
                          b["t"] - a["t"],
                          {"io_exits_by_port": {k: v for k, v in ExitReport.delta(b["ports"], a["ports"]).items() if v},
                           "guest_delay_ns": b["guest_delay_ns"] - a["guest_delay_ns"],
                           "monitor_ns": b["monitor_ns"] - a["monitor_ns"]})


class Machine:
    """One VM with one vCPU running a harness guest image."""

    def __init__(self, ram_mb: int = 128, console: Callable[[bytes], None] | None = None):
        check_ram_mb(ram_mb)
        self._fds: list[int] = []
        try:
            self._create(ram_mb, console)
        except BaseException:
            import os

            for fd in reversed(self._fds):
                os.close(fd)
            raise

    def _create(self, ram_mb: int, console: Callable[[bytes], None] | None) -> None:
        self.kvm_fd = kvm.open_kvm()
        self._fds.append(self.kvm_fd)
        for cap, name in ((kvm.KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"), (kvm.KVM_CAP_PIT2, "KVM_CAP_PIT2"),
                          (kvm.KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"),
                          (kvm.KVM_CAP_BINARY_STATS_FD, "KVM_CAP_BINARY_STATS_FD")):
            kvm.require_cap(self.kvm_fd, cap, name)
        self.vm_fd = kvm.ioctl(self.kvm_fd, kvm.KVM_CREATE_VM, 0)
        self._fds.append(self.vm_fd)
        kvm.ioctl(self.vm_fd, kvm.KVM_SET_TSS_ADDR, TSS_ADDR)
        try:
            self.mem = GuestMemory(ram_mb << 20)
        except OSError as exc:
            raise PvgenError(f"cannot allocate {ram_mb} MiB of guest RAM: {exc.strerror}") from None
        self.mem.register(self.vm_fd)
        kvm.ioctl(self.vm_fd, kvm.KVM_CREATE_IRQCHIP)
        kvm.ioctl(self.vm_fd, kvm.KVM_CREATE_PIT2, kvm.kvm_pit_config(flags=kvm.KVM_PIT_SPEAKER_DUMMY))
        # Ticks the guest missed while the host was busy are dropped, not replayed back to back: jiffies then never
        # run ahead of time, and a loaded benchmark host does not flood the guest with catch-up interrupts.
        kvm.ioctl(self.vm_fd, kvm.KVM_REINJECT_CONTROL, kvm.kvm_reinject_control(pit_reinject=0))
        self.vcpu = Vcpu(self.vm_fd, kvm.ioctl(self.kvm_fd, kvm.KVM_GET_VCPU_MMAP_SIZE))
        cpuid = kvm.kvm_cpuid2(nent=kvm.MAX_CPUID_ENTRIES)
        kvm.ioctl(self.kvm_fd, kvm.KVM_GET_SUPPORTED_CPUID, cpuid)
        self.vcpu.set_cpuid(cpuid)
        self.stats = StatsFd(self.vcpu.fd)
        self._run = self.vcpu.run_mm
        self._irq_level = kvm.kvm_irq_level()
        self._irq_levels: dict[int, bool] = {}     # last level driven per line (we are its only driver)
        self.irq_filter = None    # (line, level) -> True when the level change was delivered another way
        self.console_out = bytearray()
        self._console_cb = console
        self.ports = CachedPortBus()
        self.mmio = MmioBus()
        self.uart = Uart16550(output=self._console, irq=lambda level: self.set_irq(UART_IRQ, level))
        self.hxdev = HarnessDevice(on_mark=self._mark)
        self.sink = SinkDevice()
        self.ports.register(UART_BASE, 8, self.uart)
        self.ports.register(HX_PORT_BASE, 4, self.hxdev)
        self.ports.register(SINK_PORT_BASE, 8, self.sink)
        self.run_exits = [0] * 64
        self.coalesced_entries = 0
        self.string_io_exits = 0             # KVM_EXIT_IO with count > 1 (rep ins/outs)
        self.io_by_port: dict[int, int] = {}  # (direction << 16 | port) -> KVM_EXIT_IO returns
        self._coalesced = False
        self.marks: list[tuple[int, dict]] = []
        self.monitor_ns = 0      # host time spent handling exits in Python (outside KVM_RUN), since creation
        self.pause_marks: set[int] = set()   # run() returns at these marks ("paused"); run() again resumes
        self.symbols: list[tuple[int, str]] = []
        self._t0 = 0.0
        self._deadline_hit = False
        self._handlers = {kvm.KVM_EXIT_IO: self.handle_io, kvm.KVM_EXIT_MMIO: self.handle_mmio,
                          kvm.KVM_EXIT_HLT: self.handle_hlt, kvm.KVM_EXIT_SHUTDOWN: self.handle_shutdown,
                          10: self.handle_intr, 17: self.handle_internal_error, 9: self.handle_fail_entry,
                          24: self.handle_system_event}

    # --- devices and interrupts ---------------------------------------------------------------------------------
    def _console(self, data: bytes) -> None:
        self.console_out += data
        if self._console_cb:
            self._console_cb(data)

    def set_irq(self, irq: int, level: bool) -> None:
        """Drive an ISA interrupt line of the in-kernel PIC (KVM_IRQ_LINE); an unchanged level costs no ioctl."""
        if self._irq_levels.get(irq) == level:
            return
        self._irq_levels[irq] = level
        if self.irq_filter is not None and self.irq_filter(irq, level):
            return      # taken by the batch area's interrupt notification (devices/pvirq.py)
        self._irq_level.irq, self._irq_level.level = irq, int(level)
        kvm.ioctl(self.vm_fd, kvm.KVM_IRQ_LINE, self._irq_level)

    def add_coalesced_pio(self, base: int, length: int) -> None:
        """Let KVM queue writes to these ports in the coalesced ring instead of exiting (KVM_CAP_COALESCED_PIO)."""
        kvm.require_cap(self.kvm_fd, kvm.KVM_CAP_COALESCED_PIO, "KVM_CAP_COALESCED_PIO")
        zone = kvm.kvm_coalesced_mmio_zone(addr=base, size=length, pio=1)
        kvm.ioctl(self.vm_fd, kvm.KVM_REGISTER_COALESCED_MMIO, zone)
        self._coalesced = True

    def add_coalesced_mmio(self, base: int, length: int) -> None:
        """The same for MMIO writes (KVM_CAP_COALESCED_MMIO); replayed on the MMIO bus."""
        kvm.require_cap(self.kvm_fd, kvm.KVM_CAP_COALESCED_MMIO, "KVM_CAP_COALESCED_MMIO")
        zone = kvm.kvm_coalesced_mmio_zone(addr=base, size=length, pio=0)
        kvm.ioctl(self.vm_fd, kvm.KVM_REGISTER_COALESCED_MMIO, zone)
        self._coalesced = True

    def _replay_coalesced(self, pio: int, addr: int, data: bytes) -> None:
        self.coalesced_entries += 1
        value = int.from_bytes(data, "little")
        if pio:
            self.ports.write(addr, len(data), value)
        else:
            self.mmio.write(addr, len(data), value)

    def _mark(self, mark: int) -> None:
        if self._coalesced:
            self.vcpu.drain_coalesced(self._replay_coalesced)
        self.marks.append((mark, self.snapshot()))
        if mark in self.pause_marks:
            raise GuestStop("paused", mark)

    def snapshot(self) -> dict:
        """Every KVM statistic, KVM_RUN returns by reason, I/O exits by port, host time, the guest's own count
        of nanoseconds busy-waited in hx_udelay (current at a mark: hx_mark stores it before its exit), and the host
        time the monitor has spent handling exits outside KVM_RUN (up to the exit handler that takes the snapshot)."""
        return {"stats": self.stats.snapshot(), "runs": self.run_exit_counts(), "ports": self.io_exits_by_port(),
                "t": time.perf_counter(), "guest_delay_ns": self.guest_delay_ns(), "monitor_ns": self.monitor_ns}

    def guest_delay_ns(self) -> int:
        return self.mem.read_u64(layout.BOOTINFO_DELAY_NS_GPA)

    def io_exits_by_port(self) -> dict[str, int]:
        """KVM_EXIT_IO returns by port and direction, e.g. {"out 0x510": 10000, "in 0x511": 1}."""
        return {f"{'out' if k >> 16 else 'in'} {k & 0xFFFF:#x}": n for k, n in sorted(self.io_by_port.items())}

    def run_exit_counts(self) -> dict[str, int]:
        return {kvm.EXIT_REASONS.get(i, str(i)): n for i, n in enumerate(self.run_exits) if n}

    # --- loading ------------------------------------------------------------------------------------------------
    def load_elf(self, path: Path) -> int:
        """Load the PT_LOAD segments at GPA = VMA - KERNEL_BASE; returns the entry point. The image is checked
        whole first (vmm/guestimage.py): nothing is written to guest RAM for a file that would not run."""
        image = read_image(path, self.mem.size)
        for seg in image.segments:
            self.mem.write(seg.gpa, seg.data + bytes(seg.memsz - len(seg.data)))
        end = max(seg.gpa + seg.memsz for seg in image.segments)
        self.symbol_map = image.symbols
        self.symbols = sorted((v, k) for k, v in image.symbols.items())
        self.heap_start = (end + 0xFFF) & ~0xFFF
        return image.entry

    def symbolize(self, va: int) -> str:
        i = bisect.bisect_right(self.symbols, (va, "\xff")) - 1
        if i < 0:
            return f"{va:#x}"
        addr, name = self.symbols[i]
        return f"{va:#x} <{name}+{va - addr:#x}>"

    def boot(self, image: Path, cmdline: str = "") -> None:
        """Load the image, write boot info, command line and page tables, and set up long mode at CPL0."""
        entry = self.load_elf(image)
        raw = cmdline.encode()
        if len(raw) >= layout.CMDLINE_MAX:
            raise PvgenError(f"guest command line is {len(raw)} bytes, the limit is {layout.CMDLINE_MAX - 1}")
        self.mem.write(layout.CMDLINE_GPA, raw + b"\0")
        for gpa, block in layout.page_tables():
            self.mem.write(gpa, block)
        tsc_khz = self.vcpu.tsc_khz()
        self.mem.write(layout.BOOTINFO_GPA, layout.BOOTINFO.pack(
            layout.BOOTINFO_MAGIC, layout.BOOTINFO_VERSION, self.mem.size, tsc_khz, layout.CMDLINE_GPA,
            self.heap_start, 0))
        s = self.vcpu.get_sregs()
        code = kvm.kvm_segment(base=0, limit=0xFFFFFFFF, selector=0x08, type=11, present=1, dpl=0, db=0, s=1,
                               l=1, g=1)
        data = kvm.kvm_segment(base=0, limit=0xFFFFFFFF, selector=0x10, type=3, present=1, dpl=0, db=1, s=1,
                               l=0, g=1)
        s.cs = code
        s.ds = s.es = s.ss = data
        percpu = self.symbol_map.get("hx_percpu", 0)
        s.fs = kvm.kvm_segment(base=0, limit=0xFFFFFFFF, selector=0, type=3, present=1, db=1, s=1, g=1)
        s.gs = kvm.kvm_segment(base=percpu, limit=0xFFFFFFFF, selector=0, type=3, present=1, db=1, s=1, g=1)
        s.tr = kvm.kvm_segment(base=0, limit=0x67, selector=0, type=11, present=1, s=0)
        s.ldt = kvm.kvm_segment(base=0, limit=0xFFFF, selector=0, type=2, present=1, s=0)
        s.cr3 = layout.PML4_GPA
        s.cr4 = kvm.CR4_PAE | kvm.CR4_OSFXSR | kvm.CR4_OSXMMEXCPT
        s.cr0 = kvm.CR0_PE | kvm.CR0_MP | kvm.CR0_ET | kvm.CR0_NE | kvm.CR0_WP | kvm.CR0_PG
        s.efer = kvm.EFER_LME | kvm.EFER_LMA
        self.vcpu.set_sregs(s)
        r = kvm.kvm_regs(rip=entry, rflags=0x2)
        self.vcpu.set_regs(r)
        self.vcpu.set_msrs({kvm.MSR_GS_BASE: percpu, kvm.MSR_KERNEL_GS_BASE: 0})

    # --- the exit loop ------------------------------------------------------------------------------------------
    def run(self, timeout: float | None = None) -> RunResult:
        """Run until the guest exits, panics, faults, shuts down, or `timeout` seconds pass."""
        import threading

        check_timeout(timeout)
        if timeout and threading.current_thread() is not threading.main_thread():
            raise PvgenError("Machine.run(timeout=...) uses SIGALRM and must be called from the main thread")
        self._t0 = time.perf_counter()
        base = self.snapshot()
        old = None
        self._run[1] = 0   # kvm_run.immediate_exit
        if timeout:
            self._deadline_hit = False
            old = signal.signal(signal.SIGALRM, self._on_alarm)
            signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            stop = self._loop()
        finally:
            if timeout:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old)
        if self._coalesced:
            self.vcpu.drain_coalesced(self._replay_coalesced)
        end = self.snapshot()
        report = ExitReport(ExitReport.delta(end["stats"], base["stats"]),
                            {k: v for k, v in ExitReport.delta(end["runs"], base["runs"]).items() if v},
                            end["t"] - base["t"])
        report.extra["io_exits_by_port"] = {k: v for k, v in ExitReport.delta(end["ports"], base["ports"]).items() if v}
        if self._coalesced:
            report.extra["coalesced_entries"] = self.coalesced_entries
        stop.report = report
        stop.console = bytes(self.console_out)
        stop.marks = list(self.marks)
        return stop

    def _on_alarm(self, signum, frame) -> None:
        # The signal may land while Python runs, between two KVM_RUNs: immediate_exit makes the next KVM_RUN
        # return at once (EINTR) instead of entering a guest that might never exit again.
        self._deadline_hit = True
        self._run[1] = 1

    def _loop(self) -> RunResult:
        run_once, counts, handlers = self.vcpu.run_once, self.run_exits, self._handlers
        coalesced, drain, replay = self._coalesced, self.vcpu.drain_coalesced, self._replay_coalesced
        now = time.perf_counter_ns
        try:
            while True:
                reason = run_once()
                t = now()        # from here to the next KVM_RUN: the monitor's own cost of this exit
                try:
                    counts[reason & 63] += 1
                    if coalesced:
                        drain(replay)
                    handler = handlers.get(reason)
                    if handler is None:
                        self.handle_unknown(reason)
                    else:
                        result = handler()
                        if result is not None:
                            return result
                finally:
                    self.monitor_ns += now() - t
        except GuestStop as stop:
            return self._stopped(stop)

    def _stopped(self, stop: GuestStop) -> RunResult:
        if stop.kind == "fault":
            return RunResult("fault", 128, self.describe_fault())
        if stop.kind == "paused":
            return RunResult("paused", stop.code)
        if stop.kind == "panic":
            return RunResult("panic", 255, "guest panic")
        return RunResult("exit", stop.code)

    def handle_io(self) -> None:
        direction, size, port, count, off = _IO_EXIT.unpack_from(self._run, kvm.RUN_UNION)
        run = self._run
        key = (direction << 16) | port
        by_port = self.io_by_port
        by_port[key] = by_port.get(key, 0) + 1
        pack = _PACK.get(size)
        if pack is None:
            raise UnhandledExit(f"KVM_EXIT_IO of size {size} at port {port:#x}")
        if count == 1:
            if direction == kvm.KVM_EXIT_IO_OUT:
                self.ports.write(port, size, pack.unpack_from(run, off)[0])
            else:
                pack.pack_into(run, off, self.ports.read(port, size))
            return
        self.string_io_exits += 1
        if direction == kvm.KVM_EXIT_IO_OUT:
            write = self.ports.write
            for i in range(count):
                write(port, size, pack.unpack_from(run, off + i * size)[0])
        else:
            read = self.ports.read
            for i in range(count):
                pack.pack_into(run, off + i * size, read(port, size))

    def handle_mmio(self) -> None:
        addr, data, length, is_write = self.vcpu.mmio_exit()
        if is_write:
            self.mmio.write(addr, length, int.from_bytes(data[:length], "little"))
        else:
            value = self.mmio.read(addr, length)
            self.vcpu.run_mm[kvm.RUN_UNION + 8:kvm.RUN_UNION + 8 + length] = value.to_bytes(length, "little")

    def handle_hlt(self) -> RunResult:
        return RunResult("hlt", 1, "guest halted with interrupts it cannot receive: " + self.vcpu.describe())

    def handle_shutdown(self) -> RunResult:
        return RunResult("shutdown", 129, f"guest shut down (triple fault: an exception it could not handle) at "
                                          f"{self.where()}; registers: {self.vcpu.describe()}")

    def handle_intr(self) -> RunResult | None:
        if self._deadline_hit:
            return RunResult("timeout", 124, "timeout: " + self.vcpu.describe())
        return None

    def handle_system_event(self) -> RunResult:
        return RunResult("system_event", 130, "guest requested a system event: " + self.vcpu.describe())

    def handle_internal_error(self) -> None:
        suberror = struct.unpack_from("<I", self.vcpu.run_mm, kvm.RUN_UNION)[0]
        what = faultinfo.INTERNAL_SUBERRORS.get(suberror, "unknown")
        raise UnhandledExit(f"KVM_EXIT_INTERNAL_ERROR (suberror {suberror}: {what}) at {self.where()}; "
                            f"registers: {self.vcpu.describe()}")

    def handle_fail_entry(self) -> None:
        reason = struct.unpack_from("<Q", self.vcpu.run_mm, kvm.RUN_UNION)[0]
        raise UnhandledExit(f"KVM_EXIT_FAIL_ENTRY (hardware reason {reason:#x}): {self.vcpu.describe()}")

    def handle_unknown(self, reason: int) -> None:
        name = kvm.EXIT_REASONS.get(reason, "?")
        raise UnhandledExit(f"unhandled KVM exit {reason} (KVM_EXIT_{name}): {self.vcpu.describe()}")

    def describe_fault(self) -> str:
        """The exception frame the harness's CPL0 fault stub left on its stack: vector, error, rip, cs, ..."""
        r, s = self.vcpu.get_regs(), self.vcpu.get_sregs()
        gpa = layout.virt_to_phys(r.rsp)
        try:
            vec, err, rip, cs, rflags, rsp, ss = struct.unpack("<7Q", self.mem.read(gpa, 56))
        except (PvgenError, TypeError):
            return f"guest fault with an unreadable frame: {self.vcpu.describe()}"
        extra = f" cr2={s.cr2:#x}" if vec == 14 else ""
        return (f"guest fault {faultinfo.exception_text(vec, err, s.cr2)} at CPL{cs & 3}, "
                f"{self.instruction_at(rip)}; error={err:#x} cs={cs:#x} rsp={rsp:#x} rflags={rflags:#x}{extra}")

    def instruction_at(self, va: int) -> str:
        return faultinfo.instruction_at(self.mem.read, self.mem.size, va, self.symbolize)

    def where(self) -> str:
        """The vCPU's privilege level and the instruction at its rip, for a message about how the guest stopped."""
        try:
            rip, cpl = self.vcpu.get_regs().rip, self.vcpu.get_sregs().cs.selector & 3
        except KvmError as exc:
            return f"(registers unavailable: {exc})"
        return f"CPL{cpl}, {self.instruction_at(rip)}"

    def close(self) -> None:
        import os

        self.stats.close()
        self.vcpu.close()
        os.close(self.vm_fd)
        self.mem.close()
        os.close(self.kvm_fd)

    def __enter__(self) -> "Machine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
