"""Start Debian's kernel in qemu-system-x86_64 with a trace FIFO, feed the trace to a counter, capture the console.

TCG on this machine; `-accel kvm` where the host has VMX/SVM and /dev/kvm (hardware_accel()). The machine is QEMU's
`pc` (i440FX + PIIX3) with -nodefaults: only the devices a workload asks for, the serial console and the parallel
port whose data register carries the guest's marks (trace.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pvgen.errors import EnvironmentMissing, PvgenError
from pvgen.qemu.trace import TraceCounter

QEMU = "qemu-system-x86_64"
CMDLINE = "console=ttyS0 quiet panic=-1 ipv6.disable=1 rdinit=/init"


def qemu_binary() -> str:
    path = shutil.which(QEMU)
    if path is None:
        raise EnvironmentMissing(QEMU, "install it with `apt-get install qemu-system-x86` (or run `make setup`)")
    return path


def hardware_accel() -> bool:
    """The host CPU has VMX or SVM and /dev/kvm opens: QEMU can use KVM (else TCG, the emulator)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    if " vmx" not in flags and " svm" not in flags:
        return False
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError:
        return False
    return True


@dataclass
class Boot:
    """What one QEMU run left: its console, exit status and wall time."""

    console: str
    returncode: int
    seconds: float
    accel: str
    command: list[str]


def run_qemu(kernel_image: Path, initrd: Path, devices: list[str], trace: TraceCounter, *, memory_mb: int = 512,
             extra_cmdline: str = "", timeout_s: float = 600.0, accel: str | None = None) -> Boot:
    """Boot, stream the trace into `trace` until QEMU exits (the guest powers off) or the timeout kills it."""
    accel = accel or ("kvm" if hardware_accel() else "tcg")
    with tempfile.TemporaryDirectory(prefix="pvgen-qemu-") as tmp:
        fifo = Path(tmp) / "trace.fifo"
        os.mkfifo(fifo)
        cmd = [qemu_binary(), "-accel", accel, "-machine", "pc", "-m", str(memory_mb), "-nodefaults",
               "-display", "none", "-serial", "stdio", "-parallel", "null", "-no-reboot",
               "-kernel", str(kernel_image), "-initrd", str(initrd),
               "-append", f"{CMDLINE} {extra_cmdline}".strip(), "-D", str(fifo), *devices]
        for ev in trace.device.enables():
            cmd += ["-trace", f"enable={ev}"]
        reader = threading.Thread(target=_read_fifo, args=(fifo, trace), name="pvgen-qemu-trace", daemon=True)
        reader.start()
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            _unblock(fifo)
            reader.join(timeout=5)
            raise PvgenError(f"QEMU did not finish within {timeout_s:.0f} s; console tail: "
                             f"{_tail(out.decode(errors='replace'))}") from None
        seconds = time.monotonic() - t0
        _unblock(fifo)
        reader.join(timeout=30)
    console = out.decode(errors="replace")
    if proc.returncode != 0:
        raise PvgenError(f"QEMU exited with status {proc.returncode}: {_tail(console)}")
    return Boot(console, proc.returncode, seconds, accel, cmd)


def _read_fifo(fifo: Path, trace: TraceCounter) -> None:
    with open(fifo, errors="replace") as f:
        for line in f:
            trace.feed(line)


def _unblock(fifo: Path) -> None:
    """If QEMU never opened the FIFO (it failed first), the reader still waits in open(): open the write end once."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError:
        pass


def _tail(text: str, n: int = 3) -> str:
    lines = [ln.strip() for ln in text.replace("\r", "").splitlines() if ln.strip()]
    return " | ".join(lines[-n:]) or "no output"
