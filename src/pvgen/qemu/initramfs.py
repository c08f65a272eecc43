"""The initramfs of a `pvgen qemu` boot: Debian's static busybox, the workload program, the driver modules under
test, the kernel's own modules they need (with a modules.dep from the host's depmod), and the /init script."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pvgen.errors import EnvironmentMissing, PvgenError
from pvgen.qemu.cpio import Cpio
from pvgen.qemu.kernel import Kernel, module_depends

BUSYBOX = Path("/bin/busybox")
MODULES_DIR = "pvgen"          # /pvgen/<variant>/<name>.ko in the guest


def busybox() -> Path:
    """Debian's busybox-static (a dynamically linked busybox cannot run in the initramfs)."""
    if not BUSYBOX.exists():
        raise EnvironmentMissing("busybox-static (/bin/busybox)", "install it with `apt-get install busybox-static`")
    if b"/ld-linux" in BUSYBOX.read_bytes()[:4096]:
        raise EnvironmentMissing("a static busybox", "install busybox-static instead of busybox")
    return BUSYBOX


def kernel_module_closure(kernel: Kernel, names: list[str]) -> list[Path]:
    """The .ko files of `names` and of every module they depend on (modinfo's depends=, transitively)."""
    seen: dict[str, Path] = {}
    todo = list(names)
    while todo:
        name = todo.pop().replace("-", "_")
        if name in seen:
            continue
        ko = kernel.module(name)
        seen[name] = ko
        todo += module_depends(ko)
    return sorted(seen.values())


def _kernel_modules(c: Cpio, kernel: Kernel, names: list[str]) -> None:
    """Stage the modules under lib/modules/<version>/, run the host's depmod over them, and add the tree."""
    if not names:
        return
    if shutil.which("depmod") is None and not Path("/sbin/depmod").exists():
        raise EnvironmentMissing("depmod", "install kmod")
    depmod = shutil.which("depmod") or "/sbin/depmod"
    with tempfile.TemporaryDirectory(prefix="pvgen-initramfs-") as tmp:
        root = Path(tmp)
        moddir = root / "lib" / "modules" / kernel.version
        for ko in kernel_module_closure(kernel, names):
            dest = moddir / ko.relative_to(kernel.modules_dir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ko, dest)
        for f in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
            if (kernel.modules_dir / f).exists():
                shutil.copyfile(kernel.modules_dir / f, moddir / f)
        got = subprocess.run([depmod, "-b", str(root), kernel.version], capture_output=True, text=True)
        if got.returncode != 0:
            raise PvgenError(f"depmod over the initramfs modules failed: {got.stderr.strip()}")
        for dirpath, _, files in sorted(os.walk(root)):
            rel = Path(dirpath).relative_to(root)
            for f in sorted(files):
                c.file(str(rel / f), (Path(dirpath) / f).read_bytes())


def build_initramfs(out: Path, *, init: str, helper: Path | None, modules: dict[str, list[Path]], kernel: Kernel,
                    kernel_modules: list[str] = ()) -> Path:
    """Write the archive: /init (a busybox sh script), /bin/pvqwl (when given), /pvgen/<variant>/*.ko, the kernel's
    modules."""
    c = Cpio()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", MODULES_DIR):
        c.dir(d)
    c.chardev("dev/console", 5, 1)
    c.file("bin/busybox", busybox().read_bytes(), 0o755)
    c.symlink("bin/sh", "busybox")
    if helper is not None:
        c.file("bin/pvqwl", helper.read_bytes(), 0o755)
    for variant, kos in modules.items():
        for ko in kos:
            c.file(f"{MODULES_DIR}/{variant}/{ko.name}", ko.read_bytes())
    _kernel_modules(c, kernel, list(kernel_modules))
    c.file("init", init.encode(), 0o755)
    out.write_bytes(c.data())
    return out
