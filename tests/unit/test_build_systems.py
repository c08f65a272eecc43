"""Builds other than `gcc -B` on one file: clang, LTO, a Makefile's $(AS), two installations, `pvgen check-object`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from pvgen.cli import cli
from pvgen.toolchain.launcher import installation_bdir
from pvgen.toolchain.objscan import is_runtime_symbol, scan, undefined_symbols

DRIVER = """static inline unsigned char inb(unsigned short p)
{ unsigned char v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline void outb(unsigned char v, unsigned short p) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(p)); }
int poll_port(unsigned short base) { outb(1, base + 1); return inb(base) & 0x80; }
"""
MAIN = "int poll_port(unsigned short);\nint main(void) { return poll_port(0x3f8); }\n"


@pytest.fixture
def bdir(tmp_path, monkeypatch) -> Path:
    """This installation's -B directory in a private cache."""
    from pvgen.toolchain import kbuild

    monkeypatch.setenv("PVGEN_CACHE", str(tmp_path / "cache"))
    return kbuild.bdir()


@pytest.fixture
def driver(tmp_path) -> Path:
    src = tmp_path / "drv.c"
    src.write_text(DRIVER)
    (tmp_path / "main.c").write_text(MAIN)
    return src


def io_left(obj: Path) -> list:
    return [h for h in scan(obj) if not is_runtime_symbol(h.symbol)]


def check_object(*objs: Path):
    return CliRunner().invoke(cli, ["check-object", *map(str, objs)], obj={})


def rewritten(obj: Path) -> bool:
    return not io_left(obj) and {"__pvio_inb_dx", "__pvio_outb_dx"} <= set(undefined_symbols(obj))


def test_clang_integrated_assembler_bypasses_b_and_check_object_says_so(tmp_path, driver, bdir, prerequisite):
    clang = shutil.which("clang")
    prerequisite(clang is not None, "clang (Debian package clang, scripts/setup-host.sh)")
    plain, viaas = tmp_path / "ias.o", tmp_path / "gas.o"
    subprocess.run([clang, "-O2", "-g", f"-B{bdir}", "-c", str(driver), "-o", str(plain)], check=True)
    assert len(io_left(plain)) == 2  # the integrated assembler never ran `as`: both sites are still there
    r = check_object(plain)
    assert r.exit_code == 1
    assert "drv.c:3: error: port I/O `out dx, al` in poll_port outside the runtime" in r.output
    assert "drv.c:2: error: port I/O `in al, dx`" in r.output and "-no-integrated-as" in r.output
    subprocess.run([clang, "-O2", "-no-integrated-as", f"-B{bdir}", "-c", str(driver), "-o", str(viaas)],
                   check=True, capture_output=True)
    assert rewritten(viaas)
    r = check_object(viaas)
    assert r.exit_code == 0 and "no port I/O outside the runtime (2 references" in r.output


@pytest.mark.parametrize("link_b", [True, False])
def test_lto_generates_code_at_link_time_so_b_belongs_on_the_link_line(tmp_path, driver, bdir, gcc, link_b):
    objs = []
    for name in ("drv", "main"):
        obj = tmp_path / f"{name}.o"
        subprocess.run([gcc, "-flto", "-O2", f"-B{bdir}", "-c", str(tmp_path / f"{name}.c"), "-o", str(obj)],
                       check=True, capture_output=True)
        objs.append(obj)
    assert not scan(objs[0])  # LTO IR only: no code was assembled at compile time
    final = tmp_path / "final.o"
    link = [gcc, "-flto", "-O2", "-r", "-flinker-output=nolto-rel", "-nostdlib", *map(str, objs), "-o", str(final)]
    subprocess.run(link + ([f"-B{bdir}"] if link_b else []), check=True, capture_output=True)
    assert rewritten(final) == link_b
    assert check_object(final).exit_code == (0 if link_b else 1)


def test_a_makefile_running_its_own_assembler_takes_as_from_the_bdir(tmp_path, bdir, prerequisite):
    prerequisite(shutil.which("make") is not None, "make")
    (tmp_path / "x.s").write_text("\t.text\n\t.globl f\n\t.type f,@function\nf:\n\tinb %dx, %al\n\toutb %al, $0x80\n"
                                  "\tret\n\t.size f,.-f\n")
    (tmp_path / "Makefile").write_text("x.o: x.s\n\t$(AS) --64 -o $@ $<\n")
    r = subprocess.run(["make", "-s", f"AS={bdir / 'as'}"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert not io_left(tmp_path / "x.o")
    assert {"__pvio_inb_dx", "__pvio_outb_imm"} <= set(undefined_symbols(tmp_path / "x.o"))


def _fake_installation(root: Path, name: str) -> tuple[Path, Path]:
    """A pvgen-as that records which installation ran it, then assembles; and a package directory."""
    bindir, pkg = root / name / "bin", root / name / "pkg"
    bindir.mkdir(parents=True)
    pkg.mkdir()
    pvas = bindir / "pvgen-as"
    pvas.write_text(f'#!/bin/sh\necho {name} >> "{root}/ran"\nexec /usr/bin/as "$@"\n')
    pvas.chmod(0o755)
    return pvas, pkg


def test_two_installations_sharing_a_cache_get_their_own_launcher(tmp_path, gcc):
    cache = tmp_path / "cache"
    a, b = _fake_installation(tmp_path, "a"), _fake_installation(tmp_path, "b")
    da, db = installation_bdir(cache, *a), installation_bdir(cache, *b)
    assert da != db and da.parent == db.parent == cache
    assert installation_bdir(cache, *a) == da  # the same installation finds its launcher again
    assert f"PVGEN_AS={a[0]}\n" in (da / "as").read_text() and f"PVGEN_AS={b[0]}\n" in (db / "as").read_text()
    assert installation_bdir(cache, a[0], b[1]) not in (da, db)  # another package behind the same pvgen-as
    src = tmp_path / "s.s"
    src.write_text("\t.text\nf:\n\tinb %dx, %al\n\tret\n")
    for d in (da, db, da):
        subprocess.run([gcc, f"-B{d}", "-c", str(src), "-o", str(tmp_path / "s.o")], check=True,
                       env={**os.environ, "PVGEN_REAL_AS": "/usr/bin/as"})
    assert (tmp_path / "ran").read_text().split() == ["a", "b", "a"]


def test_check_object_needs_an_elf_object(tmp_path):
    (tmp_path / "x.c").write_text("int x;\n")
    r = check_object(tmp_path / "x.c")
    assert r.exit_code == 1 and "x.c: not an ELF file" in r.output and "Traceback" not in r.output
