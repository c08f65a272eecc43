"""A small ELF32/ELF64 reader for x86 objects: sections, symbols, relocations (struct only, no pyelftools)."""

# pvgen-as checks every object it writes (objcheck.py); importing pyelftools costs about as much CPU as the
# rewriting of a driver, so the scanner reads the few tables it needs itself. Layouts from the System V gABI,
# "Object Files" chapter (ELF header, section header, symbol table, relocation entries); little-endian only
# (x86). Every malformed input raises ElfError naming the file and the part that is wrong.

from __future__ import annotations

import struct
from collections import namedtuple

from pvgen.errors import PvgenError

SHT_SYMTAB, SHT_STRTAB, SHT_RELA, SHT_NOBITS, SHT_REL, SHT_SYMTAB_SHNDX = 2, 3, 4, 8, 9, 18
SHF_EXECINSTR = 0x4
SHN_UNDEF, SHN_LORESERVE, SHN_XINDEX = 0, 0xFF00, 0xFFFF
STT_FUNC = 2

# (ELF header, section header, symbol, REL entry, RELA entry) per class; field order as in the gABI.
_LAYOUT = {
    32: (struct.Struct("<16sHHIIIIIHHHHHH"), struct.Struct("<IIIIIIIIII"), struct.Struct("<IIIBBH"),
         struct.Struct("<II"), struct.Struct("<IIi")),
    64: (struct.Struct("<16sHHIQQQIHHHHHH"), struct.Struct("<IIQQQQIIQQ"), struct.Struct("<IBBHQQ"),
         struct.Struct("<QQ"), struct.Struct("<QQq")),
}


class ElfError(PvgenError):
    """The file is not a well-formed little-endian ELF object."""


# Plain tuples: pvgen-as imports this module for every object it checks, and a dataclass costs a compile each.
class Section(namedtuple("Section", "index name type flags offset size link info")):
    """One section header (sh_name resolved)."""

    __slots__ = ()

    @property
    def executable(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR) and self.type != SHT_NOBITS


# shndx: the section index (extended indices resolved), SHN_UNDEF or a reserved index; type: STT_*.
Symbol = namedtuple("Symbol", "name value size type shndx")
# symbol: index into the linked symbol table; addend: None for REL (the addend is in the relocated field).
Relocation = namedtuple("Relocation", "offset symbol type addend")


class ElfFile:
    """An ELF object read into memory."""

    def __init__(self, data: bytes, path: str = "<bytes>"):
        self.path = path
        self._data = data
        self._symtab: list[Symbol] | None = None
        if len(data) < 52 or data[:4] != b"\x7fELF":
            raise ElfError(f"{path}: not an ELF file")
        if data[5] != 1:
            raise ElfError(f"{path}: big-endian ELF is not an x86 object")
        if data[4] not in (1, 2):
            raise ElfError(f"{path}: ELF class {data[4]}, expected 1 (ELF32) or 2 (ELF64)")
        self.bits = 32 if data[4] == 1 else 64
        ehdr, self._shdr, self._sym, self._rel, self._rela = _LAYOUT[self.bits]
        fields = self._unpack(ehdr, 0, "ELF header")
        shoff, shentsize, shnum, shstrndx = fields[6], fields[11], fields[12], fields[13]
        self.machine = fields[2]
        if shoff == 0:
            self.sections: list[Section] = []
            return
        if shentsize != self._shdr.size:
            raise ElfError(f"{path}: section header size {shentsize}, expected {self._shdr.size}")
        first = self._header(shoff, 0)
        if shnum == 0:  # extended numbering: the count is in section 0's sh_size (gABI, "Sections")
            shnum = first[5]
        if shstrndx == SHN_XINDEX:
            shstrndx = first[6]
        if shnum > len(data) // shentsize + 1:
            raise ElfError(f"{path}: {shnum} section headers do not fit in {len(data)} bytes")
        raw = [first] + [self._header(shoff, i) for i in range(1, shnum)]
        if not 0 <= shstrndx < shnum:
            raise ElfError(f"{path}: section name table index {shstrndx} out of range (0..{shnum - 1})")
        names = self._bytes(raw[shstrndx][4], raw[shstrndx][5], f"section {shstrndx} (section names)")
        self.sections = [
            Section(i, _cstr(names, h[0], path, f"name of section {i}"), h[1], h[2], h[4], h[5], h[6], h[7])
            for i, h in enumerate(raw)
        ]

    def _unpack(self, layout: struct.Struct, offset: int, what: str) -> tuple:
        if offset < 0 or offset + layout.size > len(self._data):
            raise ElfError(f"{self.path}: {what} at offset {offset:#x} runs past the end of the file")
        return layout.unpack_from(self._data, offset)

    def _header(self, shoff: int, i: int) -> tuple:
        return self._unpack(self._shdr, shoff + i * self._shdr.size, f"section header {i}")

    def _bytes(self, offset: int, size: int, what: str) -> bytes:
        if offset + size > len(self._data):
            raise ElfError(f"{self.path}: {what} ({size} bytes at {offset:#x}) runs past the end of the file")
        return self._data[offset : offset + size]

    def data(self, sec: Section) -> bytes:
        if sec.type == SHT_NOBITS:
            return b""
        return self._bytes(sec.offset, sec.size, f"section {sec.index} ({sec.name})")

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def symbols(self, sec: Section | None = None) -> list[Symbol]:
        """The symbols of sec (default: the SHT_SYMTAB section), index 0 included."""
        if sec is None:
            if self._symtab is None:
                sec = next((s for s in self.sections if s.type == SHT_SYMTAB), None)
                self._symtab = self.symbols(sec) if sec is not None else []
            return self._symtab
        if sec.link >= len(self.sections):
            raise ElfError(f"{self.path}: section {sec.index} ({sec.name}) links to missing section {sec.link}")
        strtab = self.data(self.sections[sec.link])
        data = self.data(sec)
        xindex = next((self.data(s) for s in self.sections if s.type == SHT_SYMTAB_SHNDX and s.link == sec.index),
                      b"")
        out = []
        for i, off in enumerate(range(0, len(data) - self._sym.size + 1, self._sym.size)):
            f = self._sym.unpack_from(data, off)
            if self.bits == 64:
                name, info, shndx, value, size = f[0], f[1], f[3], f[4], f[5]
            else:
                name, value, size, info, shndx = f[0], f[1], f[2], f[3], f[5]
            if shndx == SHN_XINDEX and len(xindex) >= 4 * i + 4:
                shndx = int.from_bytes(xindex[4 * i : 4 * i + 4], "little")
            out.append(Symbol(_cstr(strtab, name, self.path, f"name of symbol {i}"), value, size, info & 0xF,
                              shndx))
        return out

    def relocations(self, sec: Section) -> list[Relocation]:
        """The entries of a SHT_REL or SHT_RELA section."""
        rela = sec.type == SHT_RELA
        layout = self._rela if rela else self._rel
        data = self.data(sec)
        shift, mask = (32, 0xFFFFFFFF) if self.bits == 64 else (8, 0xFF)
        out = []
        for off in range(0, len(data) - layout.size + 1, layout.size):
            f = layout.unpack_from(data, off)
            out.append(Relocation(f[0], f[1] >> shift, f[1] & mask, f[2] if rela else None))
        return out

    def relocation_sections(self, target: Section) -> list[Section]:
        return [s for s in self.sections if s.type in (SHT_REL, SHT_RELA) and s.info == target.index]


def read(path) -> ElfFile:
    """The ELF object at path; OSError and ElfError become one ElfError naming the path."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ElfError(f"{path}: cannot read ELF object: {exc.strerror or exc}") from None
    return ElfFile(data, str(path))


def _cstr(table: bytes, offset: int, path: str, what: str) -> str:
    if offset >= len(table) and offset:
        raise ElfError(f"{path}: {what} at string offset {offset} is past the string table ({len(table)} bytes)")
    end = table.find(b"\0", offset)
    return table[offset : end if end >= 0 else len(table)].decode("utf-8", "replace")
