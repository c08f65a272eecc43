"""The user's cache ($PVGEN_CACHE, else ~/.cache/pvgen), checked once, and the work directories kept inside it."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pvgen.errors import PvgenError, SettingError

VARIABLE = "PVGEN_CACHE"
WORK = "work"          # cache_root()/work/<prefix><pid>-<random>/: one step's temporary files
OWNER = ".owner"       # inside a work directory, flock-ed by its owner for as long as it uses the directory
_NAME = re.compile(r"(\d+)-[a-z0-9_]{8}$")

_checked: dict[str, Path] = {}     # value of $PVGEN_CACHE -> the checked absolute path
_swept: set[Path] = set()


def cache_root() -> Path:
    """The cache directory as an absolute path, created and checked writable on first use. A relative
    $PVGEN_CACHE is resolved against the current directory once, and exported resolved, so that child processes
    (Kbuild runs in other directories) see the same directory. Unusable: one SettingError naming the variable."""
    raw = os.environ.get(VARIABLE, "")
    hit = _checked.get(raw)
    if hit is not None:
        return hit
    path = Path(os.path.abspath(Path(raw).expanduser())) if raw else Path.home() / ".cache" / "pvgen"
    _check(path, raw)
    if raw:
        os.environ[VARIABLE] = str(path)
        _checked[str(path)] = path
    _checked[raw] = path
    return path


def _check(path: Path, raw: str) -> None:
    def bad(problem: str) -> PvgenError:
        if not raw:
            return PvgenError(f"cache directory {path}: {problem} (set {VARIABLE} to a writable directory)")
        return SettingError(VARIABLE, raw, problem if str(path) == raw else f"{path}: {problem}")

    if path.exists() and not path.is_dir():
        raise bad("not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise bad(f"cannot create the directory: {exc.strerror}") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise bad(f"cannot create files in it: {exc.strerror}") from None


@contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A fresh directory under the cache for one step's temporary files, removed when the step ends. A process
    killed before that (kill -9) leaves it behind; the next process to ask for a work directory removes it."""
    base = cache_root() / WORK
    base.mkdir(exist_ok=True)
    if base not in _swept:
        sweep_stale(base)
    d = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=base))
    owner = open(d / OWNER, "w")       # not inherited by child processes (PEP 446): only our death frees it
    try:
        fcntl.flock(owner, fcntl.LOCK_EX)
        owner.write(f"{os.getpid()}\n")
        owner.flush()
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
        owner.close()


def sweep_stale(base: Path | None = None) -> list[Path]:
    """Remove the work directories whose owner has died; returns them. A directory is stale when its owner lock
    can be taken, or, created so recently that it has no lock file yet, when the process named in it is gone."""
    base = base or cache_root() / WORK
    _swept.add(base)
    removed = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    for d in entries:
        if d.is_dir() and not d.is_symlink() and _stale_removed(d):
            removed.append(d)
    return removed


def _stale_removed(d: Path) -> bool:
    try:
        owner = open(d / OWNER, "r+")
    except FileNotFoundError:
        m = _NAME.search(d.name)
        if m is None or _alive(int(m.group(1))):
            return False
        shutil.rmtree(d, ignore_errors=True)
        return True
    except OSError:
        return False
    with owner:
        try:
            fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False              # its owner holds the lock: in use
        shutil.rmtree(d, ignore_errors=True)
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True                   # EPERM: someone else's process, alive
    return True
