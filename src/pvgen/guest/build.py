"""Builds the guest harness with gcc into a content-addressed cache (incremental) and links guest images."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from pvgen.cache import cache_root
from pvgen.errors import EnvironmentMissing, PvgenError

HERE = Path(__file__).resolve().parent
INCLUDE = HERE / "include"
SRC = HERE / "src"
LINKER_SCRIPT = HERE / "link.ld"
HARNESS_SOURCES = ["boot.S", "boot.c", "irq.c", "printf.c", "run.c"]

# Flags for everything linked into a guest image: kernel code model (top 2 GiB), no red zone for the harness,
# no SSE in the harness (the upcall stub saves the FPU state for handlers that use it).
CFLAGS = ["-O2", "-std=gnu11", "-ffreestanding", "-fno-pic", "-fno-pie", "-mcmodel=kernel", "-mno-red-zone",
          "-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-fcf-protection=none",
          "-fno-tree-loop-distribute-patterns", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]
HARNESS_CFLAGS = CFLAGS + ["-mgeneral-regs-only"]
LDFLAGS = ["-static", "-nostdlib", "-z", "max-page-size=0x1000", "--no-warn-rwx-segments", "-z", "noexecstack"]


class GuestBuildError(PvgenError):
    """gcc, as or ld failed on a guest source; carries the tool's message."""


def cache_dir() -> Path:
    d = cache_root() / "guest"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise EnvironmentMissing(name, "install build-essential (apt-get install build-essential)")
    return path


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise GuestBuildError(f"{Path(cmd[0]).name} failed: " + " | ".join(msg[:8]))


def _key(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:20]


def _headers_digest(include_dirs: list[Path]) -> bytes:
    h = hashlib.sha256()
    for d in include_dirs:
        for f in sorted(d.glob("*.h")):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.digest()


def compile_source(src: Path, flags: list[str] | None = None, include_dirs: list[Path] | None = None,
                   out_dir: Path | None = None) -> Path:
    """Compile (or assemble) one .c/.S/.s file to an object in the cache; reused while source, headers and
    flags are unchanged."""
    src = Path(src)
    incs = [INCLUDE, SRC] + list(include_dirs or [])
    flags = list(HARNESS_CFLAGS if flags is None else flags)
    key = _key(src.read_bytes(), " ".join(flags), _headers_digest(incs), str(src.resolve()))
    out = (out_dir or cache_dir()) / f"{src.stem}-{key}.o"
    if out.exists():
        return out
    tmp = out.with_suffix(".tmp.o")
    _run([_tool("gcc"), *flags, *[f"-I{d}" for d in incs], "-c", str(src), "-o", str(tmp)])
    tmp.replace(out)
    return out


def compile_to_asm(src: Path, out: Path, flags: list[str] | None = None) -> Path:
    """gcc -S: the assembly of a workload, for the rewriter."""
    flags = list(CFLAGS if flags is None else flags)
    _run([_tool("gcc"), *flags, f"-I{INCLUDE}", f"-I{SRC}", "-S", str(src), "-o", str(out)])
    return Path(out)


def assemble(src: Path, out: Path) -> Path:
    _run([_tool("as"), "--64", str(src), "-o", str(out)])
    return Path(out)


def harness_objects() -> list[Path]:
    """The harness objects, built on demand (incrementally) into the cache."""
    return [compile_source(SRC / name) for name in HARNESS_SOURCES]


def link_image(objects: list[Path], out: Path) -> Path:
    """Link workload/driver objects with the harness into a guest ELF image (see link.ld)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    libgcc = subprocess.run([_tool("gcc"), "-print-libgcc-file-name"], capture_output=True, text=True).stdout.strip()
    cmd = [_tool("ld"), *LDFLAGS, "-T", str(LINKER_SCRIPT), "-o", str(out),
           *[str(o) for o in harness_objects()], *[str(o) for o in objects]]
    if libgcc and Path(libgcc).exists():
        cmd.append(libgcc)
    _run(cmd)
    return out


def build_guest(sources: list[Path], out: Path, flags: list[str] | None = None) -> Path:
    """Compile workload sources (C with CFLAGS) and link them with the harness."""
    objs = [compile_source(Path(s), list(CFLAGS if flags is None else flags)) for s in sources]
    return link_image(objs, out)


if __name__ == "__main__":
    for o in harness_objects():
        print(o)
