"""pvgen nested: one level down, /dev/kvm is a real SVM KVM whose statistics count every exit exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pvgen

pytestmark = pytest.mark.slow


def _nested(args: list[str], cwd) -> subprocess.CompletedProcess:
    """`pvgen nested ARGS` in a child with these sources first (the nested run inherits the environment)."""
    env = dict(os.environ, PYTHONPATH=str(Path(pvgen.__file__).resolve().parents[1]))
    return subprocess.run([sys.executable, "-m", "pvgen", "nested", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_probe_io_exits_exact(qemu_ready, tmp_path):
    """1000 `out` in the probe guest: io_exits from KVM_GET_STATS_FD equals 1000 and the KVM_EXIT_IO returns; the
    command's exit status comes back."""
    got = _nested(["--", "sh", "-c", f"{sys.executable} -m pvgen.nested.probe 1000 && exit 3"], tmp_path)
    assert got.returncode == 3, got.stderr[-2000:]
    res = json.loads(got.stdout.strip().splitlines()[-1])
    assert res["kvm_run_io"] == 1000 and res["unexpected_io"] == 0
    assert res["io_exits"] == 1000, res["stats"]
    assert res["hardware_exits"] is True


def test_bench_micro_inside(qemu_ready, tmp_path):
    """Our own benchmark runs unchanged inside; its JSON comes back through the shared folder with io_exits > 0,
    at least one per I/O exit the monitor saw."""
    out = tmp_path / "micro.json"
    got = _nested(["--", "pvgen", "bench", "micro", "--outs", "300", "--variants", "original", "--roundtrips", "0",
                   "--json", str(out)], tmp_path)
    assert got.returncode == 0, got.stderr[-2000:]
    assert "posted outb" in got.stdout
    r = json.loads(out.read_text())["variants"]["original"]
    assert r["verified"]
    assert r["kvm_run_io"] >= 300
    assert r["io_exits"] >= r["kvm_run_io"]
