"""The object scanner finds every port-I/O encoding and names the function it sits in; linuxsrc names what is missing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pvgen.errors import EnvironmentMissing
from pvgen.toolchain.linuxsrc import ensure_extracted
from pvgen.toolchain.objscan import is_runtime_symbol, scan, undefined_symbols

# Every encoding of Intel SDM vol. 2 IN/OUT/INS/OUTS/HLT, with the kind the scanner must report.
ENCODINGS = [
    ("inb $0x60, %al", "in"), ("inw $0x60, %ax", "in"), ("inl $0x60, %eax", "in"),
    ("inb %dx, %al", "in"), ("inw %dx, %ax", "in"), ("inl %dx, %eax", "in"),
    ("outb %al, $0x80", "out"), ("outw %ax, $0x80", "out"), ("outl %eax, $0x80", "out"),
    ("outb %al, %dx", "out"), ("outw %ax, %dx", "out"), ("outl %eax, %dx", "out"),
    ("insb", "ins"), ("insw", "ins"), ("insl", "ins"), ("outsb", "outs"), ("outsw", "outs"), ("outsl", "outs"),
    ("rep insb", "rep-ins"), ("rep insw", "rep-ins"), ("rep insl", "rep-ins"),
    ("rep outsb", "rep-outs"), ("rep outsw", "rep-outs"), ("rep outsl", "rep-outs"),
    ("hlt", "hlt"),
]


def assemble(tmp_path: Path, text: str, *, bits: int = 64) -> Path:
    src, obj = tmp_path / "t.s", tmp_path / "t.o"
    src.write_text(text)
    subprocess.run(["as", f"--{bits}", "-o", str(obj), str(src)], check=True)
    return obj


@pytest.mark.parametrize("bits", [64, 32])
def test_every_encoding_is_found_with_its_kind_and_function(tmp_path, bits):
    body = "".join(f"\t{insn}\n\tnop\n" for insn, _ in ENCODINGS)
    text = f"\t.text\n\t.type drv,@function\ndrv:\n\tmovl $1, %eax\n{body}\tret\n\t.size drv,.-drv\n"
    hits = scan(assemble(tmp_path, text, bits=bits))
    assert [h.kind for h in hits] == [k for _, k in ENCODINGS]
    assert {h.symbol for h in hits} == {"drv"}


def test_other_sections_and_runtime_symbols(tmp_path):
    text = ("\t.section .init.text,\"ax\",@progbits\n\t.type pvio_in,@function\npvio_in:\n\t.byte 0xec\n\tret\n"
            "\t.size pvio_in,.-pvio_in\n"
            "\t.text\n\t.type f,@function\nf:\n\tcall __pvio_outb_dx\n\tret\n\t.size f,.-f\n"
            "\t.data\n\t.byte 0xec, 0xee\n")
    obj = assemble(tmp_path, text)
    (hit,) = scan(obj)  # the bytes in .data are not code
    assert (hit.section, hit.kind, hit.symbol) == (".init.text", "in", "pvio_in")
    assert is_runtime_symbol(hit.symbol) and not is_runtime_symbol("f") and not is_runtime_symbol(None)
    assert undefined_symbols(obj) == ["__pvio_outb_dx"]


def test_disassembly_resynchronises_at_each_function(tmp_path):
    # A stray prefix byte at the end of g would swallow h's first byte in a plain linear sweep.
    text = ("\t.text\n\t.type g,@function\ng:\n\tret\n\t.byte 0x0f\n\t.size g,.-g\n"
            "\t.type h,@function\nh:\n\tinb %dx, %al\n\tret\n\t.size h,.-h\n")
    hits = scan(assemble(tmp_path, text))
    assert [(h.kind, h.symbol) for h in hits] == [("in", "h")]


def test_missing_tarball_names_the_debian_package(tmp_path):
    with pytest.raises(EnvironmentMissing, match="apt-get install linux-source-6.1"):
        ensure_extracted(["drivers/rtc"], tarball=tmp_path / "linux-source-6.1.tar.xz")


def test_paths_inside_extracted_directories_need_no_new_pass():
    from pvgen.toolchain.linuxsrc import _covered

    have = {"drivers/ata", "lib/iomap.c"}
    assert _covered(["drivers/ata/libata.h", "drivers/ata", "lib/iomap.c"], have)
    assert not _covered(["drivers/atari"], have)
    assert not _covered(["lib"], have)


def test_one_tar_pass_asks_only_for_outermost_paths():
    from pvgen.toolchain.linuxsrc import _outermost

    assert _outermost({"lib", "lib/iomap.c", "drivers/ata", "drivers/atari/x.c"}) == ["drivers/ata",
                                                                                      "drivers/atari/x.c", "lib"]
