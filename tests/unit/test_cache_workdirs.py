"""$PVGEN_CACHE checked once and made absolute; work directories under it, and the sweep of those a killed
process left behind (issue 12: `kill -9` of a bench left /tmp/pvgen-bench-* and /tmp/pvgen-rt-*)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pvgen import cache
from pvgen.errors import SettingError


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("PVGEN_CACHE", str(root))
    monkeypatch.setattr(cache, "_checked", {})
    monkeypatch.setattr(cache, "_swept", set())
    return root


def test_relative_cache_is_resolved_once_and_exported(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_checked", {})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PVGEN_CACHE", "relcache")
    root = cache.cache_root()
    assert root == tmp_path / "relcache" and root.is_dir()
    assert os.environ["PVGEN_CACHE"] == str(tmp_path / "relcache")    # what Kbuild and pvgen-as inherit
    monkeypatch.chdir("/")
    assert cache.cache_root() == root


def test_cache_pointing_at_a_file_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_checked", {})
    monkeypatch.setenv("PVGEN_CACHE", "/etc/passwd")
    with pytest.raises(SettingError, match=r"^PVGEN_CACHE=/etc/passwd: not a directory$"):
        cache.cache_root()


def test_workdir_lives_under_the_cache_and_is_removed(fresh_cache):
    with cache.workdir("bench-") as d:
        assert d.parent == fresh_cache / cache.WORK and d.name.startswith(f"bench-{os.getpid()}-")
        (d / "x.o").write_bytes(b"x")
    assert not d.exists()


HOLDER = """
import sys, time
from pvgen import cache
with cache.workdir("bench-") as d:
    (d / "half-built.o").write_bytes(b"x")
    print(d, flush=True)
    time.sleep(600)
"""


def _holder() -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    return proc, Path(proc.stdout.readline().strip())


def test_kill_9_leaves_a_directory_the_next_process_removes(fresh_cache):
    killed, left = _holder()
    alive, kept = _holder()
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        assert (left / "half-built.o").exists()              # what kill -9 used to leave in /tmp
        removed = cache.sweep_stale()
        assert removed == [left] and not left.exists()
        assert (kept / "half-built.o").exists()               # its owner still runs: untouched
    finally:
        alive.kill()
        alive.wait(timeout=30)
    cache._swept.clear()                                      # as in a new process
    with cache.workdir("rt-"):                                # the first work directory of a process sweeps
        assert not kept.exists()


def test_directory_without_owner_lock_is_judged_by_the_pid_in_its_name(fresh_cache):
    base = fresh_cache / cache.WORK
    base.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = base / f"rt-{dead.pid}-abcd1234"
    mine = base / f"rt-{os.getpid()}-abcd1234"               # being created: no lock file yet
    for d in (gone, mine):
        d.mkdir()
    assert cache.sweep_stale(base) == [gone]
    assert mine.exists() and not gone.exists()


def test_sweep_leaves_foreign_entries_alone(fresh_cache):
    base = fresh_cache / cache.WORK
    base.mkdir(parents=True)
    (base / "notes").mkdir()
    (base / "file.txt").write_text("x")
    assert cache.sweep_stale(base) == []
    assert (base / "notes").exists() and (base / "file.txt").exists()
