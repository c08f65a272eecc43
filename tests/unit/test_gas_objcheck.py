"""pvgen-as checks the object it assembled: no port-I/O instruction is left silently, whatever `as` expanded."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pvgen.toolchain.kbuild import pvgen_as_path
from pvgen.toolchain.launcher import write_launcher
from pvgen.toolchain.objscan import scan

MACRO_OP = "\t.macro X op\n\t\\op %dx,%al\n\t.endm\n"

# Inputs that GNU as turns into raw I/O while the text scan sees no site (issue 11): (files, line of the error).
SILENT = {
    "macro argument": ({"t.s": f"\t.text\n{MACRO_OP}f:\tnop\n\tX inb\n\tret\n"}, "t.s:6"),
    "rep and a macro argument": ({"t.s": "\t.text\n\t.macro R op\n\trep \\op\n\t.endm\n\tR insw\n"}, "t.s:5"),
    "vararg wrapper": ({"t.s": "\t.text\n\t.macro V a:vararg\n\t\\a\n\t.endm\n\tV outb %al,%dx\n"}, "t.s:5"),
    "irp list": ({"t.s": "\t.text\n\t.irp op,inb\n\t\\op %dx,%al\n\t.endr\n"}, "t.s:3"),
    ".include": ({"t.s": '\t.text\n\tnop\n\t.include "io.inc"\n', "io.inc": "\tnop\n\tinb %dx,%al\n"}, "io.inc:2"),
    "rex.W": ({"t.s": "\t.text\n\trex.W outsl\n"}, "t.s:2"),
    "{disp32}": ({"t.s": "\t.text\n\t{disp32} inb $0x60,%al\n"}, "t.s:2"),
    "form feed": ({"t.s": "\t.text\n\f inb %dx,%al\n"}, "t.s:2"),
}


def pvgen_as(args: list[str], *, cwd: Path, env: dict | None = None, stdin: bytes | None = None):
    e = {k: v for k, v in os.environ.items() if k not in ("PVGEN_SITES_DIR", "PVGEN_STRICT")}
    e.update(env or {})
    return subprocess.run([str(pvgen_as_path()), *args], capture_output=True, text=True, cwd=cwd, env=e,
                          input=stdin)


def write(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)


@pytest.mark.parametrize("case", sorted(SILENT))
def test_io_the_text_scan_cannot_see_fails_the_build_with_file_and_line(gnu_as, tmp_path, case):
    files, where = SILENT[case]
    write(tmp_path, files)
    plain = subprocess.run([gnu_as, "--64", "-o", "ref.o", "t.s"], cwd=tmp_path, capture_output=True)
    assert plain.returncode == 0 and scan(tmp_path / "ref.o"), "GNU as must produce the I/O instruction"
    r = pvgen_as(["--64", "-o", "t.o", "t.s"], cwd=tmp_path)
    assert r.returncode == 1
    errors = r.stderr.splitlines()
    assert errors and all(e.startswith(f"pvgen-as: {where}: error: port I/O") for e in errors), r.stderr
    assert not (tmp_path / "t.o").exists()


KEPT = ("\t.text\n\t.macro RD reg\n\tin %dx,\\reg\n\t.endm\nf:\tRD %al\n\tRD %ax\n"
        "\trep insw (%dx),%es:(%edi)\n\tinb %dx,%al\n\tret\n")


def test_kept_sites_warn_and_are_told_apart_from_leftovers(tmp_path):
    (tmp_path / "k.s").write_text(KEPT)
    r = pvgen_as(["--64", "-o", "k.o", "k.s"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert [ln.split(": warning:")[0] for ln in lines if "warning" in ln] == ["pvgen-as: k.s:3", "pvgen-as: k.s:7"]
    assert lines[-1] == ("pvgen-as: k.o: 1 port-I/O sites rewritten (in 1), 2 kept (3 instructions in the object); "
                         "no other port I/O in the object")
    assert sorted(h.kind for h in scan(tmp_path / "k.o")) == ["in", "in", "rep-ins"]
    # the same instruction from a macro argument, next to the kept expansions, is still a leftover
    (tmp_path / "k.s").write_text(KEPT.replace("\tret\n", f"{MACRO_OP}\tX inb\n\tret\n"))
    r = pvgen_as(["--64", "-o", "k.o", "k.s"], cwd=tmp_path)
    assert r.returncode == 1 and "pvgen-as: k.s:12: error: port I/O `in al, dx`" in r.stderr


@pytest.mark.parametrize("how", ["--strict", "PVGEN_STRICT=1"])
def test_strict_fails_on_a_kept_site(tmp_path, how):
    (tmp_path / "k.s").write_text(KEPT)
    args, env = (["--strict"], {}) if how == "--strict" else ([], {"PVGEN_STRICT": "1"})
    r = pvgen_as(["--64", *args, "-o", "k.o", "k.s"], cwd=tmp_path, env=env)
    assert r.returncode == 1 and not (tmp_path / "k.o").exists()
    assert [ln.split(": error:")[0] for ln in r.stderr.splitlines()] == ["pvgen-as: k.s:3", "pvgen-as: k.s:7"]


def test_quiet_hides_the_summary_not_the_warnings(tmp_path):
    (tmp_path / "k.s").write_text(KEPT)
    r = pvgen_as(["--64", "--quiet", "-o", "k.o", "k.s"], cwd=tmp_path)
    assert r.returncode == 0
    assert len(r.stderr.splitlines()) == 2 and all("warning" in ln for ln in r.stderr.splitlines())
    (tmp_path / "s.s").write_text("\t.text\n\tinb %dx,%al\n")
    r = pvgen_as(["--64", "--quiet", "-o", "s.o", "s.s"], cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == ""


def test_16bit_code_is_checked_in_its_own_code_size(tmp_path):
    # `.code16` in a --32 object: decoded as 32-bit code, `movl $0xec0000,%ecx` (66 b9 00 00 ec 00) would end in
    # an `in al, dx`; the kept 32-bit-address string site must decode as one 16-bit instruction
    text = ("\t.text\n\t.code16\nf:\tmovw $0x1f0,%dx\n\tmovl $0xec0000,%ecx\n\trep insw (%dx),%es:(%edi)\n"
            "\tinb $0x60,%al\n\t.code32\ng:\tmovl $0xec, %eax\n\tinb %dx,%al\n\tret\n")
    (tmp_path / "m.s").write_text(text)
    r = pvgen_as(["--32", "-o", "m.o", "m.s"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "2 port-I/O sites rewritten (in 2), 1 kept (1 instructions in the object)" in r.stderr


def test_stdin_input_is_checked(tmp_path):
    r = pvgen_as(["--64", "-o", "s.o"], cwd=tmp_path, stdin=f"\t.text\n{MACRO_OP}\tX inb\n")
    assert r.returncode == 1 and "{standard input}:5: error: port I/O" in r.stderr, r.stderr


HEADER = """static inline void slow(void *p) { asm volatile("rep insw (%%dx),%%es:(%%edi)" : "+D"(p) : "d"(0x1f0) : "cx"); }
static inline void bad(void) { asm volatile(".irp op,inb\\n\\t\\\\op %%dx,%%al\\n\\t.endr" ::: "ax"); }
"""


# the asm of bad() starts on line 2: its second line, the .irp body that `as` expands, is io.h:3
@pytest.mark.parametrize("call,message", [("slow(p)", "io.h:1: warning"), ("bad()", "io.h:3: error")])
def test_gcc_inline_asm_is_named_by_its_header_line(gcc, tmp_path, call, message):
    (tmp_path / "io.h").write_text(HEADER)
    (tmp_path / "d.c").write_text(f'#include "io.h"\nvoid f(void *p) {{ {call}; }}\n')
    bdir = write_launcher(tmp_path / "bdir", pvgen_as_path()).parent
    r = subprocess.run([gcc, f"-B{bdir}", "-O2", "-c", "d.c", "-o", "d.o"], cwd=tmp_path, capture_output=True,
                       text=True)
    assert f"pvgen-as: {message}" in r.stderr, r.stderr
    assert (r.returncode == 0) == ("warning" in message)
