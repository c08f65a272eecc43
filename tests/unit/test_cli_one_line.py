"""Careless input to `pvgen` and `pvgen-as`, run as processes: exit status 1 and one line naming the thing, before
any work is done (issue 12: output paths, --ram/--timeout, a full or closed stdout, $PVGEN_CACHE, $PVGEN_REAL_AS)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.one_line import assert_one_line, run_pvgen

DRV = "\t.text\n\t.globl f\nf:\n\tmovw $0x3f8, %dx\n\tinb %dx, %al\n\tret\n"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "drv.s").write_text(DRV)
    (tmp_path / "guest.elf").write_bytes(b"not looked at: the output path is checked first")
    return {"SRC": str(tmp_path / "drv.s"), "G": str(tmp_path / "guest.elf"), "OK": str(tmp_path / "ok.json")}


COMMANDS = {
    "run": ["run", "G", "--json", "P"],
    "bench net": ["bench", "net", "--ops", "1", "--variants", "pv-ideal", "--json", "P"],
    "bench disk --plot": ["bench", "disk", "--ops", "4", "--variants", "pv-ideal", "--json", "OK", "--plot", "P"],
    "bench micro": ["bench", "micro", "--outs", "1", "--json", "P"],
    "rewrite -o": ["rewrite", "SRC", "-o", "P"],
    "rewrite --sites": ["rewrite", "SRC", "--sites", "P"],
    "bench rewrite": ["bench", "rewrite", "SRC", "--json", "P"],
    "bench kbuild": ["bench", "kbuild", "--json", "P"],
}
BAD_OUTPUTS = {"/nonexistent/x.json": "No such file or directory", "/dev/full": "No space left on device",
               "DIR": "is a directory"}


def _argv(template: list[str], files: dict[str, str], path: str) -> list[str]:
    return [path if a == "P" else files.get(a, a) for a in template]


@pytest.mark.parametrize("path", list(BAD_OUTPUTS))
@pytest.mark.parametrize("command", ["run", "bench net"])
def test_unwritable_output_is_refused_before_the_run(files, tmp_path, command, path):
    target = str(tmp_path) if path == "DIR" else path
    proc = run_pvgen(*_argv(COMMANDS[command], files, target), timeout=60)
    assert_one_line(proc, target, BAD_OUTPUTS[path])


@pytest.mark.parametrize("command", [c for c in COMMANDS if c not in ("run", "bench net")])
def test_every_output_option_is_checked(files, command):
    proc = run_pvgen(*_argv(COMMANDS[command], files, "/nonexistent/x.json"), timeout=60)
    assert_one_line(proc, "/nonexistent/x.json", "No such file or directory")


def test_the_check_leaves_no_file_and_keeps_an_old_one(files, tmp_path):
    new, old = tmp_path / "new.json", tmp_path / "old.json"
    old.write_text("previous results\n")
    for out in (new, old):
        assert_one_line(run_pvgen("run", files["G"], "--json", str(out)), "not an ELF file")
    assert not new.exists()
    assert old.read_text() == "previous results\n"


@pytest.mark.parametrize("ram", ["0", "3", "999999999", "1048576", "-2"])
def test_guest_ram_out_of_range(files, ram):
    assert_one_line(run_pvgen("run", files["G"], "--ram", ram), f"guest RAM of {ram} MiB", "even number")


@pytest.mark.parametrize("timeout", ["-1", "nan", "inf", "1e300"])
def test_timeout_out_of_range(files, timeout):
    assert_one_line(run_pvgen("run", files["G"], "--timeout", timeout), "timeout", "seconds from 0 (no limit)")


def test_timeout_zero_is_documented_as_no_limit():
    proc = run_pvgen("run", "--help")
    assert proc.returncode == 0 and "0: no limit" in " ".join(proc.stdout.split())


def test_rewrite_to_a_full_stdout(files):
    with open("/dev/full", "w") as full:
        proc = run_pvgen("rewrite", files["SRC"], "--quiet", stdout=full)
    assert_one_line(proc, "standard output", "No space left on device")


def test_rewrite_with_stdout_closed(files):
    proc = run_pvgen("rewrite", files["SRC"], "--quiet", stdout=None, preexec_fn=lambda: os.close(1))
    assert_one_line(proc, "standard output is closed")


def test_help_to_a_full_stdout():
    with open("/dev/full", "w") as full:
        assert_one_line(run_pvgen("--help", stdout=full), "standard output", "No space left on device")


@pytest.mark.parametrize("value, problem", [("/proc/pvgen-cache", "cannot create the directory"),
                                            ("/proc", "cannot create files in it"),
                                            ("FILE", "not a directory"),
                                            ("FILE/sub", "Not a directory")])
def test_unusable_cache_is_named_before_any_variant_runs(files, tmp_path, value, problem):
    (tmp_path / "file").write_text("a file, not a directory\n")
    value = value.replace("FILE", str(tmp_path / "file"))
    proc = run_pvgen("bench", "net", "--ops", "1", "--variants", "pv-ideal", "--json", files["OK"],
                     env={"PVGEN_CACHE": value}, timeout=60)
    assert_one_line(proc, f"PVGEN_CACHE={value}", problem)
    assert not Path(files["OK"]).exists()


def _pvgen_as(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    from pvgen.toolchain.kbuild import pvgen_as_path

    e = {k: v for k, v in os.environ.items() if k not in ("PVGEN_SITES_DIR", "PVGEN_REAL_AS")} | env
    return subprocess.run([str(pvgen_as_path()), *args], capture_output=True, text=True, env=e, cwd=cwd)


@pytest.mark.parametrize("value, problem", [("/nonexistent/as", "no such file"),
                                            ("/etc/passwd", "not an executable program"),
                                            ("no-such-as-on-path", "not found on PATH")])
def test_pvgen_as_names_a_bad_real_as(files, tmp_path, value, problem):
    proc = _pvgen_as(["--64", "-o", "x.o", files["SRC"]], {"PVGEN_REAL_AS": value}, tmp_path)
    assert_one_line(proc, f"PVGEN_REAL_AS={value}", problem)


@pytest.mark.parametrize("value", ["FILE", "/proc/pvgen-sites"])
def test_pvgen_as_unwritable_sites_dir_warns_and_assembles(gnu_as, files, tmp_path, value):
    (tmp_path / "file").write_text("a file, not a directory\n")
    value = value.replace("FILE", str(tmp_path / "file"))
    proc = _pvgen_as(["--64", "-o", "x.o", files["SRC"]], {"PVGEN_SITES_DIR": value}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "x.o").read_bytes()[:4] == b"\x7fELF"
    named = [line for line in proc.stderr.splitlines() if "PVGEN_SITES_DIR" in line]
    assert len(named) == 1 and f"warning: PVGEN_SITES_DIR={value}:" in named[0], proc.stderr
    assert "Traceback" not in proc.stderr
