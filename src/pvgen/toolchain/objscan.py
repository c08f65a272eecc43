"""Find port-I/O instructions in ELF objects (capstone over every executable section) and check linked modules."""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass

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


# The opcode byte of every instruction above: IN/OUT/INS/OUTS/HLT are one-byte opcodes without ModRM (SDM vol. 2),
# so the byte is part of each encoding whatever prefixes precede it. A range of code without any of these bytes
# cannot decode to one of them, and is not decoded at all (an object without any does not load capstone).
IO_OPCODE_BYTES = re.compile(rb"[\x6c-\x6f\xe4-\xe7\xec-\xef\xf4]")


def scan(path: str | os.PathLike, *, prescan: bool = True, binding: bool = False) -> list[IoHit]:
    """Every port-I/O instruction of every executable section of an ELF object (x86-64 or i386).

    Sections are decoded in the object's code size, or, in a tagged object, in the size each mode tag names
    from its address on; kept-site tags mark their instructions (IoHit.kept). prescan=False decodes every range
    even without an I/O opcode byte; binding=True uses capstone's Python binding (both for tests)."""
    from pvgen.asm.sites import KEPT_SECTION, MODE_SECTION, mode_of_tag
    from pvgen.toolchain import elfread

    elf = elfread.read(path)
    hits: list[IoHit] = []
    decoders = _Decoders(binding)
    kept = {at for at, _ in _tags(elf, KEPT_SECTION, 0)}
    modes: dict[int, list[tuple[int, int]]] = {}
    for (shndx, off), code in _tags(elf, MODE_SECTION, 8):
        modes.setdefault(shndx, []).append((off, mode_of_tag(code)))
    funcs: dict[int, list[tuple[int, int, str]]] = {}
    for sym in elf.symbols():
        if sym.type == elfread.STT_FUNC:
            funcs.setdefault(sym.shndx, []).append((sym.value, sym.size, sym.name))
    for sec in elf.sections:
        if not sec.executable:
            continue
        syms = sorted(funcs.get(sec.index, []))
        for off, mnemonic, ops, bits in _disassemble(decoders, elf.data(sec), syms, modes.get(sec.index, []),
                                                     elf.bits, prescan):
            kind = _kind(mnemonic)
            if kind is not None:
                hits.append(IoHit(sec.name, off, mnemonic, kind, _containing(syms, off),
                                  (sec.index, off) in kept, bits, ops))
    return hits


class _Decoders(dict):
    """bits -> capstone decoder, each created when first needed."""

    def __init__(self, binding: bool):
        super().__init__()
        self.binding = binding

    def __missing__(self, bits: int):
        from pvgen.toolchain.capstone_c import decoder

        self[bits] = md = decoder(bits, binding=self.binding)
        return md


def _tags(elf, name: str, extra: int) -> list[tuple[tuple[int, int], bytes]]:
    """((section index, offset), the `extra` bytes after the address) of each record of a tag section.

    elf is an elfread.ElfFile, or a pyelftools ELFFile (rewrite/verify.py reads its objects with pyelftools)."""
    from pvgen.toolchain import elfread

    if not isinstance(elf, elfread.ElfFile):
        elf.stream.seek(0)
        elf = elfread.ElfFile(elf.stream.read(), getattr(elf.stream, "name", "<object>"))
    sec = elf.section(name)
    if sec is None:
        return []
    data = elf.data(sec)
    width = 8 if elf.bits == 64 else 4
    symbols = elf.symbols()
    out = []
    for rsec in elf.relocation_sections(sec):
        for r in sorted(elf.relocations(rsec), key=lambda r: r.offset):  # records in assembly order
            off = r.offset
            addend = r.addend if r.addend is not None else int.from_bytes(data[off : off + width], "little")
            if r.symbol >= len(symbols):
                raise PvgenError(f"{elf.path}: relocation at {off:#x} of {rsec.name} names missing symbol "
                                 f"{r.symbol}")
            sym = symbols[r.symbol]
            if 0 < sym.shndx < len(elf.sections):
                out.append(((sym.shndx, sym.value + addend), data[off + width : off + width + extra]))
    return out


def _disassemble(decoders, data: bytes, syms: list[tuple[int, int, str]], modes: list[tuple[int, int]],
                 default: int, prescan: bool = True):
    """(offset, mnemonic with prefixes, operands, bits) per instruction; resynchronised at each function and mode
    tag. Each range between two resynchronisation points is decoded on its own, so a range without an I/O opcode
    byte is skipped (prescan) without changing what the others yield."""
    modes = sorted(modes, key=lambda m: m[0])  # stable: of two tags at one address, the later one holds
    starts = sorted({0} | {a for a, _, _ in syms if a < len(data)} | {a for a, _ in modes if a < len(data)})
    bounds = starts[1:] + [len(data)]
    k, bits = 0, default
    for a, b in zip(starts, bounds):
        while k < len(modes) and modes[k][0] <= a:
            bits = modes[k][1]
            k += 1
        if prescan and not IO_OPCODE_BYTES.search(data, a, b):
            continue
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


def undefined_symbols(path: str | os.PathLike) -> list[str]:
    """Names of the undefined symbols of an ELF object (what modpost must resolve)."""
    from pvgen.toolchain import elfread

    return sorted({s.name for s in elfread.read(path).symbols() if s.shndx == elfread.SHN_UNDEF and s.name})


def code_sections(path: str | os.PathLike) -> list[tuple[str, bytes]]:
    """(name, contents) of each executable section, in order."""
    from pvgen.toolchain import elfread

    elf = elfread.read(path)
    return [(s.name, elf.data(s)) for s in elf.sections if s.executable]


def count_kinds(hits: list[IoHit]) -> Counter:
    return Counter(h.kind for h in hits)


def source_lines(path: str | os.PathLike, hits: list[IoHit]) -> dict[IoHit, str]:
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


def symbol_references(path: str | os.PathLike, names: frozenset[str]) -> Counter:
    """Relocations against each of `names` in an ELF object, outside debug information: the places that call or take
    the address of those functions (each reference in the assembly is one relocation)."""
    from pvgen.toolchain import elfread

    elf = elfread.read(path)
    out: Counter = Counter()
    for sec in elf.sections:
        if sec.type not in (elfread.SHT_REL, elfread.SHT_RELA) or ".debug" in sec.name:
            continue
        if sec.link >= len(elf.sections):
            raise elfread.ElfError(f"{path}: section {sec.index} ({sec.name}) links to missing section {sec.link}")
        symbols = elf.symbols(elf.sections[sec.link])
        for rel in elf.relocations(sec):
            if rel.symbol < len(symbols) and symbols[rel.symbol].name in names:
                out[symbols[rel.symbol].name] += 1
    return out
