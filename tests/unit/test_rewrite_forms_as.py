"""Forms real code needs, checked with the real GNU as: a string left open, an external port symbol."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from elftools.elf.descriptions import describe_reloc_type
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection

from pvgen.rewrite import rewrite_text
from pvgen.rewrite.verify import verify_text

pytestmark = pytest.mark.usefixtures("gnu_as")  # tests/conftest.py: a failure on CI, a skip elsewhere


def _as(tmp: Path, name: str, text: str, flag: str = "--64") -> Path:
    (tmp / f"{name}.s").write_text(text)
    proc = subprocess.run(["as", flag, str(tmp / f"{name}.s"), "-o", str(tmp / f"{name}.o")], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    return tmp / f"{name}.o"


def _text_bytes(obj: Path) -> bytes:
    with open(obj, "rb") as f:
        return ELFFile(f).get_section_by_name(".text").data()


def test_a_string_left_open_is_data_to_the_end(tmp_path: Path) -> None:
    """GNU as reads `.ascii "abc` on to the end of the file (with warnings): the I/O words in it are bytes."""
    src = '\t.text\n\tnop\n\t.ascii "abc\n\tinb %dx,%al\n\trep insw\n\toutb %al,$0x80\n'
    r = rewrite_text(src, "open.s")
    assert r.text == src and r.sites == []
    assert _text_bytes(_as(tmp_path, "a", src)) == _text_bytes(_as(tmp_path, "b", r.text))


def test_a_string_closed_on_a_later_line_ends_there() -> None:
    src = '\t.ascii "abc\n\tinb %dx,%al\n\tdef" ; inb %dx,%al\n\toutb %al,$0x80\n'
    r = rewrite_text(src, "s.s")
    assert [(s.line, s.text) for s in r.sites] == [(3, "inb %dx,%al"), (4, "outb %al,$0x80")]
    assert r.text.split("\n")[1] == "\tinb %dx,%al"


@pytest.mark.parametrize("flag,mode,reloc", [("--64", "code64", "R_X86_64_32S"), ("--32", "code32", "R_386_32"),
                                             ("--32", "code16", "R_386_32")])
def test_an_external_port_symbol_still_assembles(tmp_path: Path, flag: str, mode: str, reloc: str) -> None:
    """`inb $port,%al` with `port` defined elsewhere: the pushed port is relocated against `port` (the thunk reads
    its low byte, the byte of the original's R_*_8 field)."""
    head = ".code16\n" if mode == "code16" else ""
    src = f"{head}\t.text\nf:\tinb $ext_port,%al\n\toutw %ax,$ext_port+2\n"
    r = rewrite_text(src, "ext.s", mode=mode)
    assert all(s.rewritten for s in r.sites) and len(r.sites) == 2
    with open(_as(tmp_path, "x", r.text, flag), "rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        names = [describe_reloc_type(rel["r_info_type"], elf) for sec in elf.iter_sections()
                 if isinstance(sec, RelocationSection) for rel in sec.iter_relocations()
                 if symtab.get_symbol(rel["r_info_sym"]).name == "ext_port"]
    assert names == [reloc, reloc]


def test_an_external_port_symbol_verifies(tmp_path: Path) -> None:
    report, _ = verify_text("\t.text\nf:\tinb $ext_port,%al\n\toutb %al,$ext_port+1\n", "ext.s", 64)
    assert report.replaced_total == 2
