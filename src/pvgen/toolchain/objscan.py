"""Find port-I/O instructions in ELF objects (capstone over every executable section) and check linked modules."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pvgen.errors import PvgenError

# capstone mnemonics of the instructions a rewritten driver must no longer contain (Intel SDM vol. 2: IN E4/E5/EC/ED,
# OUT E6/E7/EE/EF, INS 6C/6D, OUTS 6E/6F, HLT F4), with the site kind each one counts as.
IO_MNEMONICS = {
    "in": "in", "out": "out",
    "insb": "ins", "insw": "ins", "insd": "ins", "outsb": "outs", "outsw": "outs", "outsd": "outs",
    "hlt": "hlt",
}

# Symbols of the runtime: the only place a rewritten module may execute a real I/O instruction.
RUNTIME_PREFIXES = ("__pvio_", "__pvio32_", "__pvio16_", "pvio_")


@dataclass(frozen=True)
class IoHit:
    """One port-I/O instruction found in an object."""

    section: str
    offset: int
    mnemonic: str  # as capstone prints it, prefixes included ("rep insw")
    kind: str  # in, out, ins, outs, rep-ins, rep-outs, hlt
    symbol: str | None  # the function containing it
    kept: bool = False  # a kept site's tag names this address (tagged objects, asm/sites.py)
    bits: int = 64  # the code size it was decoded in
    operands: str = ""  # as capstone prints them (Intel syntax)

    def __str__(self) -> str:
        where = f"{self.symbol}+" if self.symbol else ""
        return f"{self.section}:{where}{self.offset:#x}: {self.mnemonic}"


def _kind(mnemonic: str) -> str | None:
    words = mnemonic.split()
    base = IO_MNEMONICS.get(words[-1])
    if base is None:
        return None
    return f"rep-{base}" if any(w.startswith("rep") for w in words[:-1]) and base in ("ins", "outs") else base


def scan(path: Path | str) -> list[IoHit]:
    """Every port-I/O instruction of every executable section of an ELF object (x86-64 or i386).

    Sections are decoded in the object's code size, or, in a tagged object, in the size each mode tag names
    from its address on; kept-site tags mark their instructions (IoHit.kept)."""
    import capstone
    from elftools.common.exceptions import ELFError
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    from pvgen.asm.sites import KEPT_SECTION, MODE_SECTION, mode_of_tag

    hits: list[IoHit] = []
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            default = 64 if elf.elfclass == 64 else 32
            decoders = {bits: capstone.Cs(capstone.CS_ARCH_X86, mode) for bits, mode in (
                (16, capstone.CS_MODE_16), (32, capstone.CS_MODE_32), (64, capstone.CS_MODE_64))}
            for md in decoders.values():
                md.skipdata = True
            kept = {at for at, _ in _tags(elf, KEPT_SECTION, 0)}
            modes: dict[int, list[tuple[int, int]]] = {}
            for (shndx, off), code in _tags(elf, MODE_SECTION, 8):
                modes.setdefault(shndx, []).append((off, mode_of_tag(code)))
            funcs: dict[int, list[tuple[int, int, str]]] = {}
            symtab = elf.get_section_by_name(".symtab")
            if isinstance(symtab, SymbolTableSection):
                for sym in symtab.iter_symbols():
                    shndx = sym["st_shndx"]
                    if sym["st_info"]["type"] == "STT_FUNC" and isinstance(shndx, int):
                        funcs.setdefault(shndx, []).append((sym["st_value"], sym["st_size"], sym.name))
            for idx, sec in enumerate(elf.iter_sections()):
                if not sec["sh_flags"] & SH_FLAGS.SHF_EXECINSTR or sec["sh_type"] == "SHT_NOBITS":
                    continue
                syms = sorted(funcs.get(idx, []))
                for off, mnemonic, ops, bits in _disassemble(decoders, sec.data(), syms, modes.get(idx, []),
                                                             default):
                    kind = _kind(mnemonic)
                    if kind is not None:
                        hits.append(IoHit(sec.name, off, mnemonic, kind, _containing(syms, off),
                                          (idx, off) in kept, bits, ops))
    except (OSError, ELFError) as exc:
        raise PvgenError(f"{path}: cannot read ELF object: {exc}") from None
    return hits


def _tags(elf, name: str, extra: int) -> list[tuple[tuple[int, int], bytes]]:
    """((section index, offset), the `extra` bytes after the address) of each record of a tag section."""
    from elftools.elf.relocation import RelocationSection

    sec = elf.get_section_by_name(name)
    if sec is None:
        return []
    idx = next(i for i, s in enumerate(elf.iter_sections()) if s.name == name)
    data = sec.data()
    width = 8 if elf.elfclass == 64 else 4
    symtab = elf.get_section_by_name(".symtab")
    out = []
    for rsec in elf.iter_sections():
        if not isinstance(rsec, RelocationSection) or rsec["sh_info"] != idx:
            continue
        for r in sorted(rsec.iter_relocations(), key=lambda r: r["r_offset"]):  # records in assembly order
            off = r["r_offset"]
            addend = r["r_addend"] if r.is_RELA() else int.from_bytes(data[off : off + width], "little")
            sym = symtab.get_symbol(r["r_info_sym"])
            if isinstance(sym["st_shndx"], int):
                out.append(((sym["st_shndx"], sym["st_value"] + addend), data[off + width : off + width + extra]))
    return out


def _disassemble(decoders: dict, data: bytes, syms: list[tuple[int, int, str]], modes: list[tuple[int, int]],
                 default: int):
    """(offset, mnemonic with prefixes, operands, bits) per instruction; resynchronised at each function and mode tag."""
    modes = sorted(modes, key=lambda m: m[0])  # stable: of two tags at one address, the later one holds
    starts = sorted({0} | {a for a, _, _ in syms if a < len(data)} | {a for a, _ in modes if a < len(data)})
    bounds = starts[1:] + [len(data)]
    k, bits = 0, default
    for a, b in zip(starts, bounds):
        while k < len(modes) and modes[k][0] <= a:
            bits = modes[k][1]
            k += 1
        for ins in decoders[bits].disasm_lite(data[a:b], a):
            yield ins[0], ins[2], ins[3], bits


def _containing(syms: list[tuple[int, int, str]], off: int) -> str | None:
    best = None
    for a, size, name in syms:
        if a <= off < a + max(size, 1):
            best = name
    return best


def is_runtime_symbol(name: str | None) -> bool:
    return bool(name) and name.startswith(RUNTIME_PREFIXES)  # type: ignore[union-attr]


def undefined_symbols(path: Path) -> list[str]:
    """Names of the undefined symbols of an ELF object (what modpost must resolve)."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        if symtab is None:
            return []
        return sorted({s.name for s in symtab.iter_symbols() if s["st_shndx"] == "SHN_UNDEF" and s.name})


def code_sections(path: Path | str) -> list[tuple[str, bytes]]:
    """(name, contents) of each executable section, in order."""
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        return [(s.name, s.data()) for s in ELFFile(f).iter_sections()
                if s["sh_flags"] & SH_FLAGS.SHF_EXECINSTR and s["sh_type"] != "SHT_NOBITS"]


def count_kinds(hits: list[IoHit]) -> Counter:
    return Counter(h.kind for h in hits)


def source_lines(path: Path | str, hits: list[IoHit]) -> dict[IoHit, str]:
    """`file:line` of each hit from the object's DWARF line table (addr2line), where it has one."""
    import subprocess
    from shutil import which

    tool = which("addr2line")
    by_section: dict[str, list[IoHit]] = {}
    for h in hits:
        by_section.setdefault(h.section, []).append(h)
    out: dict[IoHit, str] = {}
    if tool is None:
        return out
    for name, group in by_section.items():
        proc = subprocess.run([tool, "-e", str(path), "-j", name, *(f"{h.offset:#x}" for h in group)],
                              capture_output=True, text=True, errors="replace")
        answers = proc.stdout.splitlines()
        if proc.returncode != 0 or len(answers) != len(group):
            continue
        for h, ans in zip(group, answers):
            where = ans.split(" (discriminator")[0].strip()
            if not where.startswith("??") and not where.endswith((":0", ":?")):
                out[h] = where
    return out


def symbol_references(path: Path, names: frozenset[str]) -> Counter:
    """Relocations against each of `names` in an ELF object, outside debug information: the places that call or take
    the address of those functions (each reference in the assembly is one relocation)."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection

    out: Counter = Counter()
    with open(path, "rb") as f:
        elf = ELFFile(f)
        for sec in elf.iter_sections():
            if not isinstance(sec, RelocationSection) or ".debug" in sec.name:
                continue
            symtab = elf.get_section(sec["sh_link"])
            for rel in sec.iter_relocations():
                name = symtab.get_symbol(rel["r_info_sym"]).name
                if name in names:
                    out[name] += 1
    return out
