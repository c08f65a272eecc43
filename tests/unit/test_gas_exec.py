"""pvgen-as end to end: a drop-in `as` for files, stdin and `gcc -B`, rewriting only what holds a site."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from pvgen.toolchain.kbuild import pvgen_as_path
from pvgen.toolchain.objscan import scan, undefined_symbols

SITE_FREE = "\t.text\n\t.globl f\nf:\n\tmovl %edi, %eax\n\taddl $1, %eax\n\tret\n"
WITH_SITES = "\t.text\n\t.globl g\ng:\n\tmovw $0x3f8, %dx\n\tinb %dx, %al\n\toutb %al, $0x80\n\trep insw\n\tret\n"


def pvgen_as(args: list[str], *, stdin: bytes | None = None, env: dict | None = None, cwd=None):
    e = dict(os.environ)
    e.pop("PVGEN_SITES_DIR", None)
    e.update(env or {})
    return subprocess.run([str(pvgen_as_path()), *args], input=stdin, capture_output=True, env=e, cwd=cwd)


def gnu_as(args: list[str], *, stdin: bytes | None = None, cwd=None):
    return subprocess.run(["/usr/bin/as", *args], input=stdin, capture_output=True, cwd=cwd)


def test_site_free_file_gives_the_same_object_as_gnu_as(tmp_path):
    src = tmp_path / "a.s"
    src.write_text(SITE_FREE)
    assert gnu_as(["--64", "--gdwarf-5", "-o", str(tmp_path / "ref.o"), str(src)]).returncode == 0
    r = pvgen_as(["--64", "--gdwarf-5", "-o", str(tmp_path / "out.o"), str(src)])
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.o").read_bytes() == (tmp_path / "ref.o").read_bytes()


@pytest.mark.parametrize("args", [[], ["-"], ["--"]])
def test_stdin_input(tmp_path, args):
    ref, out = tmp_path / "ref.o", tmp_path / "out.o"
    assert gnu_as(["-o", str(ref), *args], stdin=SITE_FREE.encode()).returncode == 0
    r = pvgen_as(["-o", str(out), *args], stdin=SITE_FREE.encode())
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == ref.read_bytes()


def test_sites_are_rewritten_into_thunk_calls(tmp_path):
    src = tmp_path / "io.s"
    src.write_text(WITH_SITES)
    out = tmp_path / "io.o"
    assert scan_text_io(tmp_path, WITH_SITES) == ["in", "out", "rep-ins"]
    r = pvgen_as(["--64", "-o", str(out), str(src)])
    assert r.returncode == 0, r.stderr
    assert scan(out) == []
    assert {"__pvio_inb_dx", "__pvio_outb_imm", "__pvio_rep_insw"} <= set(undefined_symbols(out))


def scan_text_io(tmp_path: Path, text: str) -> list[str]:
    """The I/O instruction kinds GNU as itself produces from text (the reference for the rewrite)."""
    src, obj = tmp_path / "ref.s", tmp_path / "ref.o"
    src.write_text(text)
    assert gnu_as(["--64", "-o", str(obj), str(src)]).returncode == 0
    return [h.kind for h in scan(obj)]


def test_sites_from_stdin_are_rewritten_and_recorded(tmp_path):
    out, sites = tmp_path / "s.o", tmp_path / "sites"
    r = pvgen_as(["--64", "-o", str(out)], stdin=WITH_SITES.encode(), env={"PVGEN_SITES_DIR": str(sites)})
    assert r.returncode == 0, r.stderr
    assert scan(out) == []
    (doc_path,) = sites.glob("*.json")
    doc = json.loads(doc_path.read_text())
    assert doc["object"] == str(out)
    assert [s["kind"] for s in doc["sites"]] == ["in", "out", "rep-ins"]
    assert all(s["rewritten"] for s in doc["sites"])


def test_excluded_objects_are_assembled_unchanged(tmp_path):
    src = tmp_path / "rt.s"
    src.write_text(WITH_SITES)
    out = tmp_path / "m-pvio-direct.o"
    r = pvgen_as(["-o", str(out), str(src)], env={"PVGEN_AS_EXCLUDE": "*-pvio-*.o"})
    assert r.returncode == 0, r.stderr
    assert [h.kind for h in scan(out)] == ["in", "out", "rep-ins"]


def test_multiple_inputs_keep_their_order(tmp_path):
    a, b = tmp_path / "a.s", tmp_path / "b.s"
    a.write_text(SITE_FREE)
    b.write_text("\t.text\nh:\n\thlt\n\tnop\n")
    out = tmp_path / "ab.o"
    r = pvgen_as(["-o", str(out), str(a), str(b)])
    assert r.returncode == 0, r.stderr
    assert scan(out) == []
    assert "__pvio_hlt" in undefined_symbols(out)


def test_as_diagnostics_name_the_original_file_and_line(tmp_path):
    src = tmp_path / "bad.s"
    src.write_text("\t.text\n\tinb %dx, %al\n\tbogus_insn\n")
    r = pvgen_as(["-o", str(tmp_path / "bad.o"), str(src)])
    assert r.returncode != 0
    assert f"{src}:3:" in r.stderr.decode()


def test_rewrite_errors_are_one_line_file_line_message(tmp_path):
    src = tmp_path / "arm.s"
    src.write_text("\t.text\n\tinb %dx, %al\n\tldr r0, [r1]\n")
    r = pvgen_as(["-o", str(tmp_path / "arm.o"), str(src)])
    assert r.returncode == 1
    err = r.stderr.decode().strip()
    assert err.startswith(f"{src}:3: ") and "\n" not in err and "Traceback" not in err


def test_missing_input_is_reported_by_gnu_as(tmp_path):
    r = pvgen_as(["-o", str(tmp_path / "x.o"), str(tmp_path / "missing.s")])
    assert r.returncode != 0
    assert b"missing.s" in r.stderr


def test_version_passes_through():
    r = pvgen_as(["--version"])
    assert r.returncode == 0 and r.stdout.startswith(b"GNU assembler")


def test_response_file(tmp_path):
    src = tmp_path / "r.s"
    src.write_text(WITH_SITES)
    rsp = tmp_path / "args"
    rsp.write_text(f"--64 -o {tmp_path / 'r.o'} {src}\n")
    r = pvgen_as([f"@{rsp}"])
    assert r.returncode == 0, r.stderr
    assert scan(tmp_path / "r.o") == []


def test_gcc_with_b_dir_uses_pvgen_as(gcc, tmp_path):
    bdir = tmp_path / "bdir"
    bdir.mkdir()
    (bdir / "as").symlink_to(pvgen_as_path())
    c = tmp_path / "io.c"
    c.write_text('void put(unsigned short p, unsigned char v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(p)); }\n'
                 'unsigned char get(void) { unsigned char v; __asm__ volatile("inb $0x60, %0" : "=a"(v)); return v; }\n')
    out = tmp_path / "io.o"
    r = subprocess.run([gcc, f"-B{bdir}", "-O2", "-c", str(c), "-o", str(out)], capture_output=True)
    assert r.returncode == 0, r.stderr
    assert scan(out) == []
    assert {"__pvio_outb_dx", "__pvio_inb_imm"} <= set(undefined_symbols(out))


def test_intel_syntax_from_the_command_line_is_refused_with_one_line(tmp_path):
    src = tmp_path / "i.s"
    src.write_text("\t.text\n\tin al, dx\n")
    r = pvgen_as(["-msyntax=intel", "-mnaked-reg", "-o", str(tmp_path / "i.o"), str(src)])
    assert r.returncode == 1
    assert b"-msyntax=intel is not supported" in r.stderr and r.stderr.count(b"\n") == 1
    src.write_text("\t.text\n\t.intel_syntax noprefix\n\tin al, dx\n\tout 0x80, al\n")
    r = pvgen_as(["-o", str(tmp_path / "i.o"), str(src)])
    assert r.returncode == 0, r.stderr
    assert scan(tmp_path / "i.o") == []


def test_32_bit_mode_follows_the_command_line(tmp_path):
    src, out = tmp_path / "m32.s", tmp_path / "m32.o"
    src.write_text("\t.text\n\tmovl $0x1f0, %edx\n\tinb %dx, %al\n\trep outsw\n\tret\n")
    r = pvgen_as(["--32", "-o", str(out), str(src)])
    assert r.returncode == 0, r.stderr
    assert scan(out) == []
    assert {"__pvio32_inb_dx", "__pvio32_rep_outsw"} <= set(undefined_symbols(out))
