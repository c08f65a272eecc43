"""elfread against pyelftools (the pinned reference reader) on real objects; corrupt input raises ElfError only."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import SymbolTableSection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvgen.toolchain import elfread
from pvgen.toolchain.objscan import scan

C_SOURCE = """
static int counter;
int inc(int x) { return x + ++counter; }
static inline void outb(unsigned char v, unsigned short p) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(p)); }
void kick(void) { outb(1, 0x80); }
__attribute__((section(".text.other"))) long other(long a) { return a * 3; }
"""


def _shndx(v) -> int:
    return {"SHN_UNDEF": 0, "SHN_ABS": 0xFFF1, "SHN_COMMON": 0xFFF2}.get(v, v) if isinstance(v, str) else v


def reference(path: Path) -> tuple[list, list, list]:
    """(sections, symbols, relocations) as pyelftools reads them, in elfread's terms."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        secs = [(i, s.name, s["sh_type"], s["sh_flags"], s["sh_offset"], s["sh_size"], s["sh_link"], s["sh_info"])
                for i, s in enumerate(elf.iter_sections())]
        syms, relocs = [], []
        for s in elf.iter_sections():
            if isinstance(s, SymbolTableSection) and s["sh_type"] == "SHT_SYMTAB":
                syms = [(y.name, y["st_value"], y["st_size"], y["st_info"]["type"], _shndx(y["st_shndx"]))
                        for y in s.iter_symbols()]
            if isinstance(s, RelocationSection):
                relocs.append((s.name, [(r["r_offset"], r["r_info_sym"], r["r_info_type"],
                                         r["r_addend"] if r.is_RELA() else None) for r in s.iter_relocations()]))
        return secs, syms, relocs


STT = {"STT_NOTYPE": 0, "STT_OBJECT": 1, "STT_FUNC": 2, "STT_SECTION": 3, "STT_FILE": 4}
SHT = {"SHT_NULL": 0, "SHT_PROGBITS": 1, "SHT_SYMTAB": 2, "SHT_STRTAB": 3, "SHT_RELA": 4, "SHT_NOBITS": 8,
       "SHT_REL": 9, "SHT_GROUP": 17}


@pytest.fixture(scope="module", params=[64, 32])
def objects(request, tmp_path_factory, gcc) -> list[Path]:
    bits = request.param
    d = tmp_path_factory.mktemp(f"elf{bits}")
    (d / "t.c").write_text(C_SOURCE)
    out = []
    for opt in ("-O2", "-O0 -g"):
        obj = d / f"t{len(out)}.o"
        subprocess.run([gcc, f"-m{bits}", *opt.split(), "-c", str(d / "t.c"), "-o", str(obj)], check=True)
        out.append(obj)
    return out


def test_sections_symbols_and_relocations_match_pyelftools(objects):
    for obj in objects:
        secs, syms, relocs = reference(obj)
        elf = elfread.read(obj)
        assert [(s.index, s.name, s.type, s.flags, s.offset, s.size, s.link, s.info) for s in elf.sections] == [
            (i, n, SHT.get(t, t), f, o, z, lk, inf) for i, n, t, f, o, z, lk, inf in secs]
        assert [tuple(s) for s in elf.symbols()] == [(n, v, z, STT.get(t, t), x) for n, v, z, t, x in syms]
        mine = [(s.name, [tuple(r) for r in elf.relocations(s)]) for s in elf.sections
                if s.type in (elfread.SHT_REL, elfread.SHT_RELA)]
        assert mine == relocs
        assert elf.bits == (64 if ELFFile(open(obj, "rb")).elfclass == 64 else 32)


def test_kernel_module_matches_pyelftools():
    from pvgen.toolchain.linuxsrc import cache_root

    kos = sorted((cache_root() / "kbuild").glob("*/plain/*.ko"))
    if not kos:
        pytest.skip("no Kbuild corpus module built yet (`pvgen kbuild`)")
    secs, syms, _ = reference(kos[0])
    elf = elfread.read(kos[0])
    assert [s.name for s in elf.sections] == [s[1] for s in secs]
    assert [s.name for s in elf.symbols()] == [s[0] for s in syms]


def test_not_elf_and_missing_files_are_one_line_errors(tmp_path):
    (tmp_path / "x.o").write_bytes(b"hello world, not an object at all" * 3)
    with pytest.raises(elfread.ElfError, match="not an ELF file"):
        elfread.read(tmp_path / "x.o")
    with pytest.raises(elfread.ElfError, match="cannot read ELF object"):
        elfread.read(tmp_path / "missing.o")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupt_objects_raise_elferror_or_scan(objects, data, tmp_path):
    """Truncated or bit-flipped objects: the scanner either reads them or raises the reader's own error."""
    raw = bytearray(objects[0].read_bytes())
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    for _ in range(data.draw(st.integers(1, 8))):
        if raw:
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
    path = tmp_path / "c.o"
    path.write_bytes(bytes(raw))
    try:
        scan(path)
    except elfread.ElfError:
        pass


def test_symbol_references_match_pyelftools(objects):
    from pvgen.toolchain.objscan import symbol_references

    for obj in objects:
        want = {}
        with open(obj, "rb") as f:
            elf = ELFFile(f)
            for s in elf.iter_sections():
                if isinstance(s, RelocationSection) and ".debug" not in s.name:
                    symtab = elf.get_section(s["sh_link"])
                    for r in s.iter_relocations():
                        name = symtab.get_symbol(r["r_info_sym"]).name
                        if name:
                            want[name] = want.get(name, 0) + 1
        names = frozenset(want) | {"absent"}
        assert dict(symbol_references(obj, names)) == want
