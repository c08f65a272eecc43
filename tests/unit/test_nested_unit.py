"""pvgen nested without booting anything: the guest's run script, the probe's code, the direct mode."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pvgen.errors import PvgenError
from pvgen.nested import platform
from pvgen.nested.probe import probe_code


def test_leading_pvgen_is_this_python():
    assert platform.command_argv(["pvgen", "bench", "micro"]) == [sys.executable, "-m", "pvgen", "bench", "micro"]
    assert platform.command_argv(["true"]) == ["true"]
    with pytest.raises(PvgenError):
        platform.command_argv([])


def test_run_script_round_trips_environment_and_argv(tmp_path):
    env = {"A_VAR": "it's $HOME \"quoted\"", "PWD": "/elsewhere", "BAD-NAME": "x"}
    argv = ["printf", "%s|", "a b", "c'd", "$X"]
    script = platform.run_script(argv, tmp_path, env)
    assert "PWD" not in script and "BAD-NAME" not in script
    got = subprocess.run(["sh", "-c", script + 'printf "%s|%s" "$A_VAR" "$(pwd)"'], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"})
    assert got.stdout == f"a b|c'd|$X|{env['A_VAR']}|{tmp_path}"


def test_probe_code_counts_outs():
    code = probe_code(0x1234)
    assert code[1:3] == bytes([0x34, 0x12]) and code.endswith(b"\xf4")


def test_direct_mode_on_a_host_with_hardware_virtualization(monkeypatch, tmp_path):
    monkeypatch.setattr(platform, "hardware_accel", lambda: True)
    out = (tmp_path / "o").open("wb")
    res = platform.run_nested([sys.executable, "-c", "print('hi'); raise SystemExit(7)"], stdout=out)
    out.close()
    assert (res.mode, res.status) == ("direct", 7)
    assert (tmp_path / "o").read_text() == "hi\n"


def test_missing_output_folder_is_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setattr(platform, "hardware_accel", lambda: False)
    with pytest.raises(PvgenError, match="does not exist"):
        platform.run_nested(["true"], out_dir=tmp_path / "nope")
