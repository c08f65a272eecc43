"""Linux driver sources from Debian's linux-source-6.1 tarball, extracted once into a cache outside the repository."""

from __future__ import annotations

import fcntl
import json
import subprocess
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

from pvgen.cache import cache_root  # noqa: F401  ($PVGEN_CACHE, else ~/.cache/pvgen; never inside the repository)
from pvgen.errors import EnvironmentMissing, PvgenError

TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
TOP = "linux-source-6.1"  # the tarball's top directory
STAMP = ".pvgen-extracted.json"

# Extracted in one pass (xz decompresses the whole stream whatever is asked for, so ask generously): the corpus
# drivers of issue 2 and their neighbours, which the guest driver environment also uses.
DEFAULT_PATHS: tuple[str, ...] = (
    "drivers/net/ethernet/8390",
    "drivers/ata",
    "lib/iomap.c",
    "drivers/input/serio",
    "drivers/input/keyboard/atkbd.c",
    "drivers/tty/serial/8250",
    "drivers/tty/serial/serial_mctrl_gpio.h",
    "drivers/rtc",
    "drivers/char/nvram.c",
    "drivers/parport",
    "drivers/block/floppy.c",
)


def linux_source_dir() -> Path:
    """Where the extracted Linux 6.1 files live (laid out as in the source tree)."""
    return cache_root() / "linux-6.1"


def headers_dir() -> Path:
    """The newest installed /usr/src/linux-headers-*-amd64 (a Kbuild tree for external modules)."""
    cands = sorted(p for p in Path("/usr/src").glob("linux-headers-*-amd64") if (p / "Makefile").exists())
    if not cands:
        raise EnvironmentMissing(
            "linux-headers-amd64 (/usr/src/linux-headers-*-amd64)",
            "install it with `apt-get install linux-headers-amd64` (or run `make setup` as root)",
        )
    return cands[-1]


def _tarball_id(tarball: Path) -> dict:
    st = tarball.stat()
    return {"tarball": str(tarball), "size": st.st_size, "mtime": int(st.st_mtime)}


def _read_stamp(dest: Path) -> dict:
    try:
        return json.loads((dest / STAMP).read_text())
    except (OSError, ValueError):
        return {}


@contextmanager
def locked(path: Path):
    """An exclusive lock on the file `path` (created with its directory): one process at a time extracts the sources,
    builds a Kbuild directory or unpacks the kernel image; the others wait and then find the work done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_extracted(paths: Iterable[str] = (), *, tarball: Path = TARBALL, quiet: bool = False) -> Path:
    """Make sure each path (file or directory, relative to the Linux tree) is in the cache; returns the tree.

    Idempotent: a stamp records what was extracted from which tarball, so a second call costs a stat. When
    something is missing, the union of DEFAULT_PATHS, the earlier paths and the new ones is extracted in one
    pass of `tar`, with a progress line."""
    wanted = sorted(set(DEFAULT_PATHS) | {p.strip("/") for p in paths})
    dest = linux_source_dir()
    if not tarball.exists():
        raise EnvironmentMissing(
            f"linux-source-6.1 ({tarball})",
            "install it with `apt-get install linux-source-6.1` (or run `make setup` as root)",
        )
    ident = _tarball_id(tarball)
    stamp = _read_stamp(dest)
    if stamp.get("id") == ident and _covered(wanted, set(stamp.get("paths", []))):
        return dest
    with locked(cache_root() / "linux-6.1.lock"):
        stamp = _read_stamp(dest)  # another process may have extracted while we waited
        have = set(stamp.get("paths", [])) if stamp.get("id") == ident else set()
        if _covered(wanted, have):
            return dest
        todo = _outermost(have | {p for p in wanted if not _covered([p], have)})
        dest.mkdir(parents=True, exist_ok=True)
        _extract(tarball, dest, todo, quiet=quiet)
        (dest / STAMP).write_text(json.dumps({"id": ident, "paths": todo}, indent=1))
    return dest


def _covered(paths: Iterable[str], have: set[str]) -> bool:
    """Every path is extracted already, itself or as part of an extracted directory."""
    def one(p: str) -> bool:
        parts = p.split("/")
        return any("/".join(parts[:i]) in have for i in range(1, len(parts) + 1))

    return all(one(p) for p in paths)


def _outermost(paths: set[str]) -> list[str]:
    """The paths not inside another one of them (tar reports `dir/file` not found when `dir` is also asked)."""
    return sorted(p for p in paths if not _covered([p], paths - {p}))


def _extract(tarball: Path, dest: Path, paths: list[str], *, quiet: bool) -> None:
    """Stream the tarball into `tar -xJ` (feeding it ourselves gives an honest progress bar)."""
    members = [f"{TOP}/{p}" for p in paths]
    cmd = ["tar", "-xJf", "-", "-C", str(dest), "--strip-components=1", *members]
    total = tarball.stat().st_size
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    with open(tarball, "rb") as src, _progress(total, quiet, f"extracting {len(paths)} paths from {tarball.name}") as advance:
        try:
            while chunk := src.read(1 << 20):
                proc.stdin.write(chunk)
                advance(len(chunk))
            proc.stdin.close()
        except BrokenPipeError:
            pass
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        rc = proc.wait()
    if rc != 0:
        first = next((ln for ln in err.splitlines() if ln.strip()), f"exit status {rc}")
        raise PvgenError(f"extracting Linux sources from {tarball} failed: {first}")


@contextmanager
def _progress(total: int, quiet: bool, label: str):
    if quiet:
        yield lambda n: None
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                  transient=False) as prog:
        task = prog.add_task(label, total=total)
        yield lambda n: prog.advance(task, n)


def source_file(relpath: str) -> Path:
    """One extracted file, extracting its directory first when needed."""
    tree = ensure_extracted([relpath], quiet=True)
    path = tree / relpath
    if not path.exists():
        raise PvgenError(f"{relpath} is not in {TARBALL}")
    return path


def main() -> None:
    import sys

    try:
        headers_dir()
        tree = ensure_extracted()
    except PvgenError as exc:
        print(f"pvgen: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"linux sources: {tree} ({len(_read_stamp(tree).get('paths', []))} paths extracted)")


if __name__ == "__main__":
    main()
