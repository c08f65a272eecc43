"""The nested platform: a command run one level down, where /dev/kvm is a real hardware-virtualization KVM.

On a host without VMX/SVM (this machine) Debian's kernel boots in QEMU TCG with an emulated AMD SVM
(`-cpu max,-smap,-rdtscp`: docs/nested.md), loads kvm_amd with nested=1 and npt=1, sees the host's / over 9p
(read-only, under a RAM overlay: the same Python, venv, repository and cache) and the output folder read-write at
its own path, and runs the command there. Its stdout and stderr come back on two serial lines, its exit status
through the control folder. On a host with VMX/SVM the command simply runs here."""

from __future__ import annotations

import os
import selectors
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pvgen.errors import PvgenError
from pvgen.qemu.initramfs import build_initramfs
from pvgen.qemu.kernel import ensure_kernel
from pvgen.qemu.launcher import _tail, hardware_accel, qemu_binary

INIT = Path(__file__).resolve().parent / "init.sh"
KERNEL_MODULES = ["virtio_pci", "9pnet_virtio", "9p", "overlay", "kvm_amd", "kvm_intel"]
CMDLINE = "console=ttyS0 quiet panic=-1 rdinit=/init"
TCG_CPU = "max,-smap,-rdtscp"   # SVM + NPT emulated; -rdtscp and -smap avoid two QEMU bugs (docs/nested.md)
ERROR_MARK = "PVGEN-NESTED-ERROR "
# The host environment travels into the guest except what describes this shell rather than the command.
_ENV_SKIP = {"PWD", "OLDPWD", "SHLVL", "_", "TMPDIR"}


@dataclass
class NestedResult:
    status: int              # the command's exit status
    mode: str                # "direct" (host has VMX/SVM) or "qemu-tcg" / "qemu-kvm"
    seconds: float           # wall time of the whole run, boot included
    console: str             # the nested kernel's console (empty when direct)


def command_argv(argv: list[str]) -> list[str]:
    """A leading `pvgen` is this Python's `-m pvgen`, so the same interpreter and sources run one level down."""
    if not argv:
        raise PvgenError("nested: no command given (usage: pvgen nested -- pvgen bench micro …)")
    return [sys.executable, "-m", "pvgen", *argv[1:]] if argv[0] == "pvgen" else list(argv)


def run_script(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    """The shell script the guest's init runs under chroot: the host's environment, directory and command."""
    lines = ["# written by pvgen nested"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items())
              if k not in _ENV_SKIP and k.isidentifier()]
    lines += [f"cd {shlex.quote(str(cwd))} || exit 125", shlex.join(argv)]
    return "\n".join(lines) + "\n"


def run_nested(argv: list[str], *, out_dir: Path | None = None, mode: str = "auto", memory_mb: int = 2048,
               timeout_s: float = 1800.0, stdout=None, stderr=None) -> NestedResult:
    """Run `argv` where /dev/kvm has VMX/SVM. mode: auto (here when the host has it, else QEMU), qemu (always
    QEMU: KVM-accelerated when the host has VMX/SVM, TCG otherwise)."""
    if mode not in ("auto", "qemu"):
        raise PvgenError(f"nested: unknown mode {mode!r} (auto or qemu)")
    stdout, stderr = stdout or sys.stdout.buffer, stderr or sys.stderr.buffer
    argv = command_argv(argv)
    t0 = time.monotonic()
    if mode == "auto" and hardware_accel():
        status = subprocess.run(argv, stdout=stdout, stderr=stderr).returncode
        return NestedResult(status, "direct", time.monotonic() - t0, "")
    cwd = Path.cwd()
    out_dir = (out_dir or cwd).resolve()
    if not out_dir.is_dir():
        raise PvgenError(f"nested: output folder {out_dir} does not exist")
    kernel = ensure_kernel()
    with tempfile.TemporaryDirectory(prefix="pvgen-nested-") as tmp:
        ctl, work = Path(tmp) / "ctl", Path(tmp) / "work"
        ctl.mkdir()
        work.mkdir()
        (ctl / "config").write_text(f"OUTDIR={shlex.quote(str(out_dir))}\n")
        (ctl / "run.sh").write_text(run_script(argv, cwd, dict(os.environ)))
        initrd = build_initramfs(work / "initrd.cpio", init=INIT.read_text(), helper=None, modules={},
                                 kernel=kernel, kernel_modules=KERNEL_MODULES)
        accel = "kvm" if hardware_accel() else "tcg"
        cmd = qemu_command(kernel.image, initrd, ctl, work, out_dir, accel, memory_mb)
        returncode = _relay(cmd, work / "stderr", stdout, stderr, timeout_s)
        console = (work / "console.log").read_text(errors="replace") if (work / "console.log").exists() else ""
        status_file = ctl / "status"
        if not status_file.exists():
            why = next((ln.split(ERROR_MARK, 1)[1] for ln in console.splitlines() if ERROR_MARK in ln), None)
            raise PvgenError(f"nested: the command did not run ({why or _tail(console)}; QEMU exit {returncode})")
        status = int(status_file.read_text().strip() or "1")
    return NestedResult(status, f"qemu-{accel}", time.monotonic() - t0, console)


def qemu_command(image: Path, initrd: Path, ctl: Path, work: Path, out_dir: Path, accel: str,
                 memory_mb: int) -> list[str]:
    cpu = "host" if accel == "kvm" else TCG_CPU
    err = work / "stderr"
    for end in ("in", "out"):
        os.mkfifo(f"{err}.{end}")
    share = "local,security_model=none,multidevs=remap"
    return [qemu_binary(), "-accel", accel, "-cpu", cpu, "-m", str(memory_mb), "-smp", "1", "-nodefaults",
            "-display", "none", "-no-reboot", "-kernel", str(image), "-initrd", str(initrd), "-append", CMDLINE,
            "-chardev", f"file,id=con,path={work / 'console.log'}", "-serial", "chardev:con",
            "-chardev", "stdio,id=out,signal=off", "-serial", "chardev:out",
            "-chardev", f"pipe,id=err,path={err}", "-serial", "chardev:err",
            "-virtfs", f"{share},path=/,mount_tag=hostroot,readonly=on",
            "-virtfs", f"{share},path={ctl},mount_tag=pvctl",
            "-virtfs", f"{share},path={out_dir},mount_tag=pvout"]


def _relay(cmd: list[str], err_fifo: Path, stdout, stderr, timeout_s: float) -> int:
    """Start QEMU and copy the guest's two serial lines to our stdout and stderr until it powers off."""
    err_fd = os.open(f"{err_fifo}.out", os.O_RDONLY | os.O_NONBLOCK)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=open(err_fifo.with_name("qemu.log"), "wb"))
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, stdout)
    sel.register(err_fd, selectors.EVENT_READ, stderr)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                raise PvgenError(f"nested: no result within {timeout_s:.0f} s (QEMU stopped)")
            for key, _ in sel.select(timeout=min(left, 1.0)):
                fd = key.fd
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not data and fd != err_fd:
                    _drain(err_fd, stderr)
                    return proc.wait()
                if data:
                    key.data.write(data)
                    key.data.flush()
    finally:
        sel.close()
        os.close(err_fd)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()


def _drain(fd: int, sink) -> None:
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not data:
            return
        sink.write(data)
        sink.flush()
