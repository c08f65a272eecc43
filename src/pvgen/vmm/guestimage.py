"""Guest ELF images, checked before anything is loaded: a linked x86-64 executable, whole, that starts in its code.

The checks follow the ELF-64 object file format (System V gABI, "ELF Header", "Program Header", "Sections"): a file
the monitor would otherwise boot into KVM_EXIT_INTERNAL_ERROR (a relocatable .o, an entry point outside the loaded
segments) or hand to pyelftools half-read (a truncated copy) is refused with one line that says what is wrong.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from pvgen.errors import PvgenError
from pvgen.vmm import layout

PF_X, PF_W, PF_R = 1, 2, 4
EM_X86_64 = 62
ET_EXEC = 2
# The ELF-64 header (gABI "ELF Header"), read before pyelftools so that its tables are known to be inside the file:
# e_ident, e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags, e_ehsize, e_phentsize, e_phnum,
# e_shentsize, e_shnum, e_shstrndx.
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR64, _SHDR64 = 56, 64
_TYPES = {0: "an ELF file of no type (ET_NONE)",
          1: "a relocatable object (ET_REL), not a linked guest image: link it with the harness "
             "(guest/build.py link_image, or `pvgen linux build NAME --image FILE`)",
          3: "a shared object or PIE (ET_DYN); a guest image is a static executable linked at "
             f"{layout.KERNEL_BASE + layout.IMAGE_GPA:#x} (guest/link.ld)",
          4: "a core dump (ET_CORE), not a guest image"}


class GuestImageError(PvgenError):
    """A guest ELF that cannot be loaded (not ELF, not x86-64, truncated, a segment outside guest RAM...)."""


@dataclass(frozen=True)
class Segment:
    vaddr: int
    gpa: int
    data: bytes        # p_filesz bytes from the file; the rest of memsz is zero (.bss)
    memsz: int
    flags: int


@dataclass(frozen=True)
class GuestImage:
    path: Path
    entry: int
    segments: list[Segment]
    symbols: dict[str, int]


def _flags(f: int) -> str:
    return ("r" if f & PF_R else "-") + ("w" if f & PF_W else "-") + ("x" if f & PF_X else "-")


def read_image(path: Path, ram_size: int) -> GuestImage:
    """The checked image: raises GuestImageError naming the file and the first problem found."""
    path = Path(path)

    def bad(problem: str) -> GuestImageError:
        return GuestImageError(f"{path}: {problem}")

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise bad(f"cannot read: {exc.strerror}") from None
    size = len(raw)
    if raw[:4] != b"\x7fELF":
        head = raw[:8].hex(" ") if raw else "nothing: the file is empty"
        raise bad(f"not an ELF file (it starts with {head}); expected a guest image linked with the harness")
    if size < _EHDR.size:
        raise bad(f"truncated: {size} bytes, shorter than an ELF header")
    if raw[4:6] != b"\x02\x01":
        raise bad("not a 64-bit little-endian ELF file; expected an x86-64 guest image")
    (_, e_type, machine, _, entry, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum,
     _) = _EHDR.unpack_from(raw)
    if machine != EM_X86_64:
        raise bad(f"ELF machine {machine}, expected x86-64 ({EM_X86_64})")
    if e_type != ET_EXEC:
        raise bad(_TYPES.get(e_type, f"an ELF file of type {e_type:#x}, not an executable (ET_EXEC)"))
    _check_table(bad, "program header", phoff, phnum, phentsize, _PHDR64, size)
    if shoff:
        _check_table(bad, "section header", shoff, shnum, shentsize, _SHDR64, size)
    try:
        elf = ELFFile(io.BytesIO(raw))
        segments = _segments(elf, bad, size, ram_size)
        if not any(s.flags & PF_X and s.vaddr <= entry < s.vaddr + s.memsz for s in segments):
            have = ", ".join(f"{s.vaddr:#x}+{s.memsz:#x} {_flags(s.flags)}" for s in segments)
            raise bad(f"entry point {entry:#x} is not inside an executable loaded segment ({have})")
        symbols = _symbols(elf, bad, size)
    except (ELFError, ValueError) as exc:     # pyelftools on a header it cannot parse
        raise bad(f"malformed ELF file: {exc}") from None
    return GuestImage(path, entry, segments, symbols)


def _check_table(bad, what: str, offset: int, count: int, entsize: int, want: int, size: int) -> None:
    if count and entsize != want:
        raise bad(f"{what} entries of {entsize} bytes, expected {want} (ELF-64)")
    if offset + count * entsize > size:
        raise bad(f"truncated: the {what} table ({count} entries at {offset:#x}) ends past the end of the file "
                  f"({size} bytes)")


def _segments(elf: ELFFile, bad, size: int, ram_size: int) -> list[Segment]:
    out = []
    for i, seg in enumerate(elf.iter_segments()):
        if seg["p_type"] != "PT_LOAD" or seg["p_memsz"] == 0:
            continue
        va, off, filesz, memsz = seg["p_vaddr"], seg["p_offset"], seg["p_filesz"], seg["p_memsz"]
        where = f"segment {i} ({va:#x}+{memsz:#x})"
        if off + filesz > size:
            raise bad(f"truncated: {where} has its bytes at {off:#x}+{filesz:#x}, past the end of the file "
                      f"({size} bytes)")
        if filesz > memsz:
            raise bad(f"{where}: {filesz:#x} bytes in the file but only {memsz:#x} in memory")
        gpa = layout.virt_to_phys(va)
        if gpa is None or gpa < layout.IMAGE_GPA or gpa + memsz > ram_size:
            raise bad(f"{where} is outside guest RAM above 1 MiB (0x100000..{ram_size:#x})")
        out.append(Segment(va, gpa, seg.data(), memsz, seg["p_flags"]))
    if not out:
        raise bad("no loadable segment (PT_LOAD): nothing to run")
    return out


def _symbols(elf: ELFFile, bad, size: int) -> dict[str, int]:
    """Function and object symbols, for naming addresses in messages; sections checked to lie inside the file."""
    for i, sec in enumerate(elf.iter_sections()):
        if sec["sh_type"] != "SHT_NOBITS" and sec["sh_offset"] + sec["sh_size"] > size:
            raise bad(f"truncated: section {i} ends past the end of the file ({size} bytes)")
    symtab = elf.get_section_by_name(".symtab")
    if symtab is None or not hasattr(symtab, "iter_symbols"):
        return {}
    return {s.name: s["st_value"] for s in symtab.iter_symbols()
            if s.name and s["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE")}
