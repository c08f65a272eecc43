"""The gcc -B launcher: site-free inputs skip Python, everything else reaches pvgen-as; its filter matches gas.py's."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from pvgen.toolchain.gas import _CANDIDATE
from pvgen.toolchain.kbuild import pvgen_as_path
from pvgen.toolchain.launcher import CANDIDATE_ERE, write_launcher
from pvgen.toolchain.objscan import scan, undefined_symbols

SITE_FREE = "\t.text\nf:\n\tmovl $1, %eax\n\tret\n"
WITH_SITE = "\t.text\ng:\n\tinb $0x60, %al\n\tret\n"

LINES = [
    "\tinb %dx, %al", "\tin %dx,%al", "\tOUTB %al,$0x80", "\trep insw", "\trep; outsl", "\thlt", "1:\tinl (%dx)",
    "\tinsd", "\tout 0x80, al", "\tcall in_x", "\tmovl $in, %eax", "init:", "\t.section .init.text", "\tinc %eax",
    "\t.string \"in\"", "x.in:", "\t$in", "\tjmp hltx", "\tnop # hlt", "\tinbx %al", "\toutsq", "\t.byte 0xec",
    "\t.ascii \"-mno-fp-ret-in-387\"", "foo: rep; insb", "/* c */ outw %ax,%dx", "\tLOCK\tHLT", "a:b: in al, dx",
    "\tcall in", "x;y;in",
]


@pytest.fixture
def launcher(tmp_path) -> Path:
    return write_launcher(tmp_path / "bdir", pvgen_as_path())


def run(cmd, *, env=None, stdin=None, cwd=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(cmd, env=e, input=stdin, capture_output=True, cwd=cwd)


def test_shell_filter_agrees_with_the_python_filter(tmp_path):
    f = tmp_path / "lines.s"
    f.write_text("\n".join(LINES) + "\n")
    r = run(["grep", "-niE", "-e", CANDIDATE_ERE, str(f)], env={"LC_ALL": "C"})
    by_grep = {int(ln.split(":", 1)[0]) for ln in r.stdout.decode().splitlines()}
    by_python = {i for i, ln in enumerate(LINES, 1) if _CANDIDATE.search(ln.encode())}
    assert by_grep == by_python
    assert {1, 2, 3, 4, 5, 6, 7, 8, 9, 24, 25, 26, 27} <= by_python
    assert not by_python & {10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23}


def test_site_free_input_bypasses_python(tmp_path, launcher):
    src, sites = tmp_path / "a.s", tmp_path / "sites"
    src.write_text(SITE_FREE)
    r = run([str(launcher), "--64", "-o", str(tmp_path / "a.o"), str(src)], env={"PVGEN_SITES_DIR": str(sites)})
    assert r.returncode == 0, r.stderr
    assert run(["as", "--64", "-o", str(tmp_path / "ref.o"), str(src)]).returncode == 0
    assert (tmp_path / "a.o").read_bytes() == (tmp_path / "ref.o").read_bytes()
    assert not sites.exists()  # pvgen-as (Python) would have written a site table


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_inputs_with_sites_reach_pvgen_as(tmp_path, launcher, how):
    src, sites, obj = tmp_path / "b.s", tmp_path / "sites", tmp_path / "b.o"
    src.write_text(WITH_SITE)
    args = [str(launcher), "-o", str(obj)] + ([str(src)] if how == "file" else [])
    r = run(args, env={"PVGEN_SITES_DIR": str(sites)}, stdin=None if how == "file" else WITH_SITE.encode())
    assert r.returncode == 0, r.stderr
    assert scan(obj) == [] and "__pvio_inb_imm" in undefined_symbols(obj)
    assert len(list(sites.glob("*.json"))) == 1


def test_launcher_on_path_does_not_loop(tmp_path, launcher):
    src, obj = tmp_path / "c.s", tmp_path / "c.o"
    src.write_text(WITH_SITE)
    env = {"PATH": f"{launcher.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env_no_real = {k: v for k, v in os.environ.items() if k != "PVGEN_REAL_AS"} | env
    r = subprocess.run([str(pvgen_as_path()), "-o", str(obj), str(src)], env=env_no_real, capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert scan(obj) == []


def test_gcc_b_with_the_launcher(tmp_path, launcher):
    c = tmp_path / "k.c"
    c.write_text('int plain(int x) { return x + 1; }\n'
                 'void beep(void) { __asm__ volatile("outb %%al, $0x61" :: "a"(3)); }\n')
    r = run(["gcc", f"-B{launcher.parent}", "-O2", "-c", str(c), "-o", str(tmp_path / "k.o")])
    assert r.returncode == 0, r.stderr
    assert scan(tmp_path / "k.o") == [] and "__pvio_outb_imm" in undefined_symbols(tmp_path / "k.o")


def test_launcher_is_rewritten_only_when_it_changes(tmp_path):
    a = write_launcher(tmp_path / "d", pvgen_as_path())
    mtime = a.stat().st_mtime_ns
    b = write_launcher(tmp_path / "d", pvgen_as_path())
    assert a == b and b.stat().st_mtime_ns == mtime
    assert re.match(r"#!/bin/sh\n", a.read_text())


def test_excluded_objects_go_straight_to_gnu_as(tmp_path, launcher):
    src, sites = tmp_path / "rt.s", tmp_path / "sites"
    src.write_text(WITH_SITE)
    env = {"PVGEN_AS_EXCLUDE": "x*.o:*-pvio-*.o", "PVGEN_SITES_DIR": str(sites)}
    r = run([str(launcher), str(src), "-o", str(tmp_path / "m-pvio-thunks.o")], env=env)
    assert r.returncode == 0, r.stderr
    assert [h.kind for h in scan(tmp_path / "m-pvio-thunks.o")] == ["in"]
    assert not sites.exists()
    r = run([str(launcher), str(src), f"-o{tmp_path / 'other.o'}"], env=env)
    assert r.returncode == 0, r.stderr
    assert scan(tmp_path / "other.o") == []
