"""The `pvgen rewrite` / `pvgen verify` / `pvgen bench rewrite` command lines, as a new user meets them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pvgen.cli import cli


def run(*args: str):
    return CliRunner(mix_stderr=False).invoke(cli, list(args), obj={})


def one_line_error(res, *needles: str) -> None:
    assert res.exit_code != 0
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in err


def test_wrong_path(tmp_path: Path) -> None:
    one_line_error(run("rewrite", str(tmp_path / "nope.s")), "nope.s", "no such file")


def test_directory(tmp_path: Path) -> None:
    one_line_error(run("rewrite", str(tmp_path)), "directory")


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "e.s"
    p.write_text("")
    one_line_error(run("rewrite", str(p)), f"{p}:1:", "empty")


def test_binary_file(tmp_path: Path) -> None:
    p = tmp_path / "b.s"
    p.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)))
    one_line_error(run("rewrite", str(p)), "binary")


def test_intel_syntax_without_noprefix(tmp_path: Path) -> None:
    p = tmp_path / "i.s"
    p.write_text("\t.text\n\t.intel_syntax\n\tin al, dx\n")
    one_line_error(run("rewrite", str(p)), f"{p}:2:", "noprefix")


def test_arm_assembly(tmp_path: Path) -> None:
    p = tmp_path / "arm.s"
    p.write_text("\t.text\nf:\n\tldr r0, [r1]\n\tbx lr\n")
    one_line_error(run("rewrite", str(p)), f"{p}:3:", "ARM")


def test_malformed_site(tmp_path: Path) -> None:
    p = tmp_path / "m.s"
    p.write_text("\tnop\n\tinb %dx,%bl\n")
    one_line_error(run("rewrite", str(p)), f"{p}:2:")


def test_rewrite_writes_output_and_site_table(tmp_path: Path) -> None:
    src = tmp_path / "d.s"
    src.write_bytes(b"\t.text\n# caf\xe9 latin-1 comment\n\tinb %dx,%al\n\tcli\n\trep outsw\n")
    out, sites = tmp_path / "d.pv.s", tmp_path / "sites.json"
    res = run("rewrite", str(src), "-o", str(out), "--sites", str(sites))
    assert res.exit_code == 0, res.stderr
    assert b"# caf\xe9 latin-1 comment\n" in out.read_bytes()
    recs = json.loads(sites.read_text())
    assert [(r["line"], r["kind"], r["rewritten"]) for r in recs] == [
        (3, "in", True), (4, "report-only", False), (5, "rep-outs", True)]
    assert "report-only" in res.stderr and "total" in res.stderr


def test_rewrite_to_stdout(tmp_path: Path) -> None:
    src = tmp_path / "d.s"
    src.write_text("\thlt\n")
    res = run("rewrite", str(src), "--quiet", "--mode", "code32")
    assert res.exit_code == 0 and res.stdout == "\tcall __pvio32_hlt\n"


def test_not_rewritten_site_is_warned(tmp_path: Path) -> None:
    src = tmp_path / "d.s"
    src.write_text("\trepne insb\n")
    res = run("rewrite", str(src), "-o", str(tmp_path / "o.s"))
    assert res.exit_code == 0 and f"{src}:1: warning" in res.stderr


@pytest.mark.usefixtures("gnu_as")
def test_verify_ok_and_failure(tmp_path: Path) -> None:
    good = tmp_path / "g.s"
    good.write_text("\t.text\nf:\tinb $0x60,%al\n\trep insw\n\tret\n")
    res = run("verify", str(good))
    assert res.exit_code == 0 and "OK" in res.stdout and "2 port-I/O instructions replaced" in res.stdout
    bad = tmp_path / "b.s"
    bad.write_text("\t.text\n\tnosuchinsn %eax\n")
    one_line_error(run("verify", str(bad)), "does not assemble", "b.s:2")


def test_real_process_has_no_traceback(tmp_path: Path) -> None:
    p = tmp_path / "arm.s"
    p.write_text("\tldr r0, [r1]\n")
    proc = subprocess.run([sys.executable, "-m", "pvgen.cli", "rewrite", str(p)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.usefixtures("gnu_as")
def test_bench_rewrite_json(tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    res = run("bench", "rewrite", "--generate-lines", "2000", "--runs", "1", "--json", str(out))
    assert res.exit_code == 0, res.stderr
    fig = json.loads(out.read_text())
    assert fig["lines"] >= 2000 and fig["sites"] > 0
    assert fig["rewrite_seconds"] > 0 and fig["as_seconds"] > 0
    assert fig["ratio"] == pytest.approx(fig["rewrite_seconds"] / fig["as_seconds"])


@pytest.mark.usefixtures("gnu_as")
def test_verify_reports_first_unexplained_difference(tmp_path: Path, monkeypatch) -> None:
    import pvgen.rewrite.core as core

    real = core.rewrite_text

    def tampered(text, path="<input>", *, mode=None):
        r = real(text, path, mode=mode)
        r.text = r.text.replace("movl $1, %eax", "movl $2, %eax")
        return r

    monkeypatch.setattr(core, "rewrite_text", tampered)
    src = tmp_path / "t.s"
    src.write_text("\t.text\nf:\tinb %dx,%al\n\tmovl $1, %eax\n\tret\n")
    one_line_error(run("verify", str(src)), "t.s", ".text+0x1", "mov eax, 1", "mov eax, 2", "not a site")


def test_unwritable_output(tmp_path: Path) -> None:
    src = tmp_path / "d.s"
    src.write_text("\thlt\n")
    one_line_error(run("rewrite", str(src), "-o", str(tmp_path / "no" / "x.s")), "cannot write")


def test_strict_fails_on_a_site_left_unchanged(tmp_path: Path) -> None:
    src = tmp_path / "d.s"
    src.write_text("\thlt\n\trepne outsb\n")
    one_line_error(run("rewrite", str(src), "--strict", "-o", str(tmp_path / "o.s")), f"{src}:2:", "repne")


# 32-bit gcc output: `pushl` and stack arguments, which `as --64` rejects line after line
CODE32 = "\t.text\n\t.globl f\nf:\n" + "\tpushl %ebx\n\tmovl 8(%esp), %eax\n\tpopl %ebx\n" * 6 + \
    "\tinb %dx, %al\n\tret\n"


@pytest.mark.parametrize("spelling", [["--32"], ["--bits", "32"], ["--mode", "code32"]])
def test_one_spelling_of_the_code_size_across_commands(tmp_path: Path, spelling) -> None:
    src = tmp_path / "c.s"
    src.write_text(CODE32)
    assert run("rewrite", *spelling, "--quiet", str(src)).stdout.count("call __pvio32_inb_dx") == 1
    res = run("verify", *spelling, str(src))
    assert res.exit_code == 0 and "OK (32-bit)" in res.stdout, res.stderr
    one_line_error(run("verify", *spelling, "--16", str(src)), "contradictory code sizes")


def test_32bit_code_in_a_64bit_run_gets_one_hint(tmp_path: Path) -> None:
    src = tmp_path / "c.s"
    src.write_text(CODE32)
    one_line_error(run("verify", str(src)), f"{src}:4: Error: invalid instruction suffix", "(and 11 more)",
                   "is 32-bit code; verify it with --32")


def test_pvgen_as_gives_32bit_code_in_a_64bit_run_one_hint(tmp_path: Path) -> None:
    from pvgen.toolchain.kbuild import pvgen_as_path

    src = tmp_path / "c.s"
    src.write_text(CODE32)
    r = subprocess.run([str(pvgen_as_path()), "--64", "-o", str(tmp_path / "c.o"), str(src)], capture_output=True,
                       text=True)
    assert r.returncode != 0 and len(r.stderr.splitlines()) == 1, r.stderr
    assert "(and 11 more): this is 32-bit code; assemble it with --32" in r.stderr
    r = subprocess.run([str(pvgen_as_path()), "--32", "-o", str(tmp_path / "c.o"), str(src)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
