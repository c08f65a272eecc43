"""The command line as a user meets it: `pvgen` run as a process, and the check that an error is one clear line."""

from __future__ import annotations

import os
import subprocess
import sys


def run_pvgen(*args: str, env: dict | None = None, cwd=None, stdout=subprocess.PIPE, **kw) -> subprocess.CompletedProcess:
    """`pvgen ARGS` in a fresh interpreter (this checkout's sources: PYTHONPATH is inherited)."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "pvgen.cli", *args], stdout=stdout, stderr=subprocess.PIPE,
                          env=e, cwd=cwd, text=True, **kw)


def assert_one_line(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit status 1, no traceback, and stderr is one line that contains every needle; returns that line."""
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert proc.returncode == 1, (proc.returncode, err)
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, (n, err)
    return err
