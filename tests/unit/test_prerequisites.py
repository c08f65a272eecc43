"""The prerequisite rule of tests/conftest.py: on CI (CI=true) a missing tool is a failure, elsewhere a skip with
a one-line reason; the same rule as /dev/kvm, for `as` and `gcc` too."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


@pytest.fixture
def rules():
    """tests/conftest.py as a module of its own (pytest's own copy may be another directory's conftest)."""
    spec = importlib.util.spec_from_file_location("pvgen_tests_conftest", CONFTEST)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("on_ci,outcome", [(True, pytest.fail.Exception), (False, pytest.skip.Exception)])
def test_need_tool_fails_on_ci_and_skips_elsewhere(rules, monkeypatch, on_ci, outcome):
    monkeypatch.setattr(rules, "ON_CI", on_ci)
    with pytest.raises(outcome) as info:
        rules.need_tool("pvgen-no-such-tool", "pvgen-no-such-tool (test)")
    assert str(info.value).count("\n") == 0 and "pvgen-no-such-tool (test)" in str(info.value)
    monkeypatch.setattr(rules.shutil, "which", lambda name: f"/opt/{name}")
    assert rules.need_tool("as") == "/opt/as"        # present: no skip, no failure, the path


PROBE = """
def test_needs_as(gnu_as):
    assert gnu_as


def test_needs_gcc(gcc):
    assert gcc
"""


def run_probe(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess:
    """pytest on a two-test file with the real conftest and a PATH where no tool is found."""
    d = tmp_path / ("ci" if ci else "local")
    d.mkdir()
    shutil.copy(CONFTEST, d / "conftest.py")
    (d / "pytest.ini").write_text("[pytest]\n")
    (d / "test_probe.py").write_text(PROBE)
    (tmp_path / "no-tools").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PATH"] = str(tmp_path / "no-tools")
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(d)],
                          capture_output=True, text=True, cwd=d, env=env, timeout=120)


def test_missing_as_and_gcc_fail_the_run_on_ci(tmp_path):
    r = run_probe(tmp_path, ci=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "2 error" in r.stdout and "skipped" not in r.stdout, r.stdout
    assert "CI requires GNU as (binutils), and it is missing" in r.stdout
    assert "CI requires gcc (build-essential), and it is missing" in r.stdout


def test_missing_as_and_gcc_skip_with_one_line_elsewhere(tmp_path):
    r = run_probe(tmp_path, ci=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 skipped" in r.stdout, r.stdout
    skips = [line for line in r.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skips) == 2 and any(s.endswith("GNU as (binutils) is missing") for s in skips) and \
        any(s.endswith("gcc (build-essential) is missing") for s in skips), r.stdout
