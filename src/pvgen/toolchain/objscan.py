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
RUNTIME_PREFIXES = ("__pvio_", "__pvio16_", "pvio_")


@dataclass(frozen=True)
class IoHit:
    """One port-I/O instruction found in an object."""

    section: str
    offset: int
    mnemonic: str  # as capstone prints it, prefixes included ("rep insw")
    kind: str  # in, out, ins, outs, rep-ins, rep-outs, hlt
    symbol: str | None  # the function containing it

    def __str__(self) -> str:
        where = f"{self.symbol}+" if self.symbol else ""
        return f"{self.section}:{where}{self.offset:#x}: {self.mnemonic}"


def _kind(mnemonic: str) -> str | None:
    words = mnemonic.split()
    base = IO_MNEMONICS.get(words[-1])
    if base is None:
        return None
    return f"rep-{base}" if any(w.startswith("rep") for w in words[:-1]) and base in ("ins", "outs") else base


def scan(path: Path) -> list[IoHit]:
    """Every port-I/O instruction of every executable section of an ELF object (x86-64 or i386)."""
    import capstone
    from elftools.common.exceptions import ELFError
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    hits: list[IoHit] = []
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            mode = capstone.CS_MODE_64 if elf.elfclass == 64 else capstone.CS_MODE_32
            md = capstone.Cs(capstone.CS_ARCH_X86, mode)
            md.skipdata = True
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
                for ins in _disassemble(md, sec.data(), syms):
                    kind = _kind(ins[1])
                    if kind is not None:
                        hits.append(IoHit(sec.name, ins[0], ins[1], kind, _containing(syms, ins[0])))
    except (OSError, ELFError) as exc:
        raise PvgenError(f"{path}: cannot read ELF object: {exc}") from None
    return hits


def _disassemble(md, data: bytes, syms: list[tuple[int, int, str]]):
    """(offset, mnemonic-with-prefixes) for each instruction; resynchronised at every function start."""
    starts = sorted({0} | {a for a, _, _ in syms if a < len(data)})
    bounds = starts[1:] + [len(data)]
    for a, b in zip(starts, bounds):
        for ins in md.disasm_lite(data[a:b], a):
            yield ins[0], ins[2]


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


def count_kinds(hits: list[IoHit]) -> Counter:
    return Counter(h.kind for h in hits)


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
