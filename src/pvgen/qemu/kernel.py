"""Debian's kernel image (linux-image-<version of linux-headers-amd64>), unpacked into the cache, and its modules.

The package is fetched with `apt-get download` and unpacked with `dpkg-deb -x`: it is never installed as the host's
kernel. The set-up (`make setup`) runs `python -m pvgen.qemu.kernel` once; later calls cost a stat."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pvgen.errors import EnvironmentMissing, PvgenError
from pvgen.toolchain.linuxsrc import cache_root, headers_dir, locked

STAMP = ".pvgen-unpacked"


@dataclass(frozen=True)
class Kernel:
    """An unpacked kernel package: the bzImage and its module tree."""

    version: str          # "6.1.0-57-amd64"
    root: Path            # where the package was unpacked

    @property
    def image(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.version}"

    @property
    def modules_dir(self) -> Path:
        return self.root / "lib" / "modules" / self.version

    def module(self, name: str) -> Path:
        """The .ko of module `name` (`-` and `_` are the same in module names, as modprobe treats them)."""
        want = name.replace("-", "_")
        for p in self.modules_dir.rglob("*.ko"):
            if p.stem.replace("-", "_") == want:
                return p
        raise PvgenError(f"module {name} is not in {self.modules_dir}")


def headers_version() -> str:
    """The kernel version of the installed linux-headers-amd64 (the one our modules are built against)."""
    return headers_dir().name.removeprefix("linux-headers-")


def kernel_root(version: str) -> Path:
    return cache_root() / f"linux-image-{version}"


def ensure_kernel(version: str | None = None, *, quiet: bool = True) -> Kernel:
    """The unpacked linux-image-<version> (fetched and unpacked on first use)."""
    version = version or headers_version()
    if not re.fullmatch(r"[0-9][0-9A-Za-z.+~-]*", version):
        raise PvgenError(f"bad kernel version {version!r}")
    k = Kernel(version, kernel_root(version))
    if (k.root / STAMP).exists() and k.image.exists():
        return k
    with locked(cache_root() / "linux-image.lock"):
        if (k.root / STAMP).exists() and k.image.exists():
            return k
        _unpack(f"linux-image-{version}", k.root, quiet=quiet)
    if not k.image.exists():
        raise PvgenError(f"linux-image-{version} holds no {k.image.relative_to(k.root)}")
    return k


def _unpack(package: str, dest: Path, *, quiet: bool) -> None:
    for tool, pkg in (("apt-get", "apt"), ("dpkg-deb", "dpkg")):
        if shutil.which(tool) is None:
            raise EnvironmentMissing(tool, f"install Debian's {pkg} package")
    with tempfile.TemporaryDirectory(prefix="pvgen-kernel-") as tmp:
        if not quiet:
            print(f"setup: fetching {package} (apt-get download, unpacked into {dest})", file=sys.stderr)
        got = subprocess.run(["apt-get", "download", "-q", package], cwd=tmp, capture_output=True, text=True)
        debs = sorted(Path(tmp).glob("*.deb"))
        if got.returncode != 0 or not debs:
            last = (got.stderr.strip().splitlines() or ["no .deb downloaded"])[-1]
            raise EnvironmentMissing(f"Debian package {package}",
                                     f"`apt-get update` and check that it exists ({last})")
        if dest.exists():
            shutil.rmtree(dest)
        part = dest.with_name(dest.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        x = subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(part)], capture_output=True, text=True)
        if x.returncode != 0:
            raise PvgenError(f"dpkg-deb -x {debs[0].name} failed: {x.stderr.strip()}")
        (part / STAMP).write_text(debs[0].name + "\n")
        part.rename(dest)


def module_depends(ko: Path) -> list[str]:
    """The modules `ko` needs loaded first (its .modinfo `depends=`), read with modinfo."""
    got = subprocess.run(["modinfo", "-F", "depends", str(ko)], capture_output=True, text=True)
    if got.returncode != 0:
        raise PvgenError(f"modinfo {ko.name}: {got.stderr.strip()}")
    return [d for d in got.stdout.strip().split(",") if d]


def main() -> None:
    try:
        print(f"kernel for QEMU: {ensure_kernel(quiet=False).image}")
    except PvgenError as exc:
        raise SystemExit(f"pvgen: {exc}") from None


if __name__ == "__main__":
    main()
