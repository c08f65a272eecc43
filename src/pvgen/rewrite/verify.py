"""`pvgen verify`: assemble original and rewritten source, disassemble both, and explain every difference by a site."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from shutil import which

import capstone
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import SymbolTableSection

from pvgen.asm.sites import MODE_SECTION, STRING_REGS, THUNK_PREFIX, mode_of_tag, string_tail
from pvgen.errors import EnvironmentMissing, PvgenError, RewriteError
from pvgen.rewrite.core import RewriteResult
from pvgen.toolchain.objscan import _tags

SHF_EXECINSTR = 0x4
# PC-relative relocation types (their addend is relative to the end of the field's instruction).
_PCREL = {"EM_X86_64": {2, 4, 9, 13, 15, 24, 41, 42}, "EM_386": {2, 4, 10, 21, 23}}
# Width of a relocated field (System V ABI i386 and x86-64 supplements, relocation types); 4 unless listed.
# An i386 REL relocation keeps its addend in the field itself, so the width decides what is read.
_RELOC_WIDTH = {"EM_386": {20: 2, 21: 2, 22: 1, 23: 1},  # R_386_16, R_386_PC16, R_386_8, R_386_PC8
                "EM_X86_64": {1: 8, 24: 8, 25: 8, 33: 8, 12: 2, 13: 2, 14: 1, 15: 1}}  # _64, _PC64, _GOTOFF64,
#                                                          _SIZE64, _16, _PC16, _8, _PC8
# Sections whose contents as regenerates from directives that reference code addresses (.loc, .cfi_*):
# they change with the code size and are not compared (see docs/rewriter.md, limitations).
_SKIP_SECTIONS = re.compile(r"^\.(debug_|eh_frame|rela?\.|symtab|strtab|shstrtab|group|note\.gnu\.property)")
_IO_MNEMONICS = re.compile(r"^(?:rep |repe |repne )?(in|out|ins[bwd]|outs[bwd]|hlt)$")
_PADDING = re.compile(r"^(?:nop\w*(?: .*)?|xchg ax, ax|lea (\w+), \[\1(?: \+ eiz(?:\*1)?)?(?: \+ 0)?\]|mov (\w+), \2)$")
_HEX = re.compile(r"-?0x[0-9a-f]+|\b\d+\b")
_WIDTH = {"al": "b", "ax": "w", "eax": "l", "b": "b", "w": "w", "d": "l"}
_STRING_MEM = re.compile(r"ptr (?:([cdefgs]s):)?\[(\w+)\]")  # capstone: `byte ptr es:[edi]`, `dword ptr [rsi]`
_ASIZE = {reg: size for size, regs in STRING_REGS.items() for reg in regs}


@dataclass
class VerifyReport:
    """What `pvgen verify` checked."""

    path: str
    bits: int
    sections: int = 0
    instructions: int = 0
    replaced: dict[str, int] = field(default_factory=dict)  # thunk -> instructions replaced by a call to it
    kept_io: int = 0  # port-I/O instructions left unchanged (sites recorded as not rewritten)

    @property
    def replaced_total(self) -> int:
        return sum(self.replaced.values())


class Mismatch(RewriteError):
    """An unexplained difference between the original and the rewritten object."""


def assemble(src_text: str, as_flags: list[str], tmp: str, name: str, path: str) -> str:
    if which("as") is None:
        raise EnvironmentMissing("GNU as", "apt-get install binutils")
    s = os.path.join(tmp, name + ".s")
    o = os.path.join(tmp, name + ".o")
    with open(s, "wb") as f:
        f.write(src_text.encode("utf-8", errors="surrogateescape"))
    proc = subprocess.run(["as", *as_flags, s, "-o", o], capture_output=True, text=True)
    if proc.returncode != 0:
        errs = [ln for ln in proc.stderr.splitlines() if "Error" in ln] or proc.stderr.splitlines() or ["?"]
        first = errs[0].replace(s, path)
        if "--64" in as_flags and subprocess.run(["as", "--32", s, "-o", os.devnull],
                                                     capture_output=True).returncode == 0:
            raise RewriteError(f"{first} (and {len(errs) - 1} more): {path} is 32-bit code; verify it with --32 "
                               "(or --16)")
        raise RewriteError(f"{name} file does not assemble: {first}")
    return o


class _Obj:
    """One relocatable object: sections by (name, ordinal), relocations by section index, symbols."""

    def __init__(self, path: str, bits: int):
        self.f = open(path, "rb")
        self.elf = ELFFile(self.f)
        self.machine = self.elf["e_machine"]
        self.sections: dict[tuple[str, int], int] = {}
        seen: dict[str, int] = {}
        for i, sec in enumerate(self.elf.iter_sections()):
            k = seen.get(sec.name, 0)
            seen[sec.name] = k + 1
            self.sections[(sec.name, k)] = i
        self.relocs: dict[int, list] = {}
        self.symtab = None
        for sec in self.elf.iter_sections():
            if isinstance(sec, RelocationSection):
                self.relocs.setdefault(sec["sh_info"], []).extend(sec.iter_relocations())
            if isinstance(sec, SymbolTableSection):
                self.symtab = sec
        self.decoders = {}
        for size, cs_mode in ((16, capstone.CS_MODE_16), (32, capstone.CS_MODE_32), (64, capstone.CS_MODE_64)):
            self.decoders[size] = capstone.Cs(capstone.CS_ARCH_X86, cs_mode)
            self.decoders[size].skipdata = True
        self.bits = bits
        # A file with `.codeNN` is assembled with mode tags (toolchain/objcheck.py, with_mode_tags): each range of
        # a code section is decoded in its own size; insn_bits gives the size of every decoded instruction.
        self.modes: dict[int, list[tuple[int, int]]] = {}
        for (shndx, off), tag in _tags(self.elf, MODE_SECTION, 8):
            self.modes.setdefault(shndx, []).append((off, mode_of_tag(tag)))
        self.insn_bits: dict[tuple[int, int], int] = {}

    def sym(self, idx: int):
        return self.symtab.get_symbol(idx)

    def reloc_list(self, secidx: int) -> list[tuple[int, int, str, int, bool, int]]:
        """(offset, type, symbol name, addend, symbol is a section symbol, section index of the symbol)."""
        out = []
        for r in self.relocs.get(secidx, []):
            s = self.sym(r["r_info_sym"])
            issec = s["st_info"]["type"] == "STT_SECTION"
            name = self.elf.get_section(s["st_shndx"]).name if issec else s.name
            add = r["r_addend"] if r.is_RELA() else None
            shndx = s["st_shndx"] if isinstance(s["st_shndx"], int) else -1
            out.append((r["r_offset"], r["r_info_type"], name, add, issec, shndx))
        return sorted(out)

    def symbolize(self, secidx: int, addr: int) -> str:
        """` (func+0x1a)` for the nearest named symbol at or before addr in the section, or ``."""
        best = None
        if self.symtab is not None:
            for sym in self.symtab.iter_symbols():
                if sym["st_shndx"] == secidx and sym.name and sym["st_info"]["type"] in ("STT_FUNC", "STT_NOTYPE") \
                        and sym["st_value"] <= addr and (best is None or sym["st_value"] > best[1]):
                    best = (sym.name, sym["st_value"])
        return f" ({best[0]}+{addr - best[1]:#x})" if best else ""

    def insns(self, secidx: int) -> list:
        data = self.elf.get_section(secidx).data()
        modes = sorted(self.modes.get(secidx, []), key=lambda m: m[0])  # of two tags at one address, the later
        starts = sorted({0} | {a for a, _ in modes if a < len(data)})
        out, k, size = [], 0, self.bits
        for a, b in zip(starts, starts[1:] + [len(data)]):
            while k < len(modes) and modes[k][0] <= a:
                size = modes[k][1]
                k += 1
            for i in self.decoders[size].disasm(data[a:b], a):
                self.insn_bits[(secidx, i.address)] = size
                out.append(i)
        return out


def _is_padding(insn) -> bool:
    return _PADDING.match(f"{insn.mnemonic} {insn.op_str}".strip()) is not None


def _is_io(insn) -> bool:
    return _IO_MNEMONICS.match(insn.mnemonic) is not None


def expected_thunk(insn, bits: int) -> tuple[str, int | None]:
    """The thunk a port-I/O instruction (as disassembled by capstone, Intel syntax) must become, and its port."""
    prefix = THUNK_PREFIX[f"code{bits}"]
    words = insn.mnemonic.split()
    base, rep = words[-1], words[0].startswith("rep")
    ops = [o.strip() for o in insn.op_str.split(",")]
    if base == "hlt":
        return prefix + "hlt", None
    if base in ("in", "out"):
        reg, port = (ops[0], ops[1]) if base == "in" else (ops[1], ops[0])
        if port == "dx":
            return f"{prefix}{base}{_WIDTH[reg]}_dx", None
        return f"{prefix}{base}{_WIDTH[reg]}_imm", int(port, 0)
    mem = _STRING_MEM.search(insn.op_str)
    tail = ""
    if mem is not None and mem.group(2) in _ASIZE:  # the address size and, for outs, the source segment
        tail = string_tail(f"code{bits}", _ASIZE[mem.group(2)], mem.group(1) if base.startswith("outs") else None)
    return f"{prefix}{'rep_' if rep else ''}{base[:-1]}{_WIDTH[base[-1]]}{tail}", None


def _sequence_len(bits: int, port: int | None) -> int:
    """Instructions of a site's call sequence: [lea down] [push port] call [lea up] (docs/thunk-abi.md)."""
    if bits == 64:
        return 3 + (1 if port is not None else 0)
    return 1 + (2 if port is not None else 0)


# The stack step after the call, as capstone prints it (Intel syntax): the caller pops the pushed port.
_LEA_UP = {(64, False): "rsp, [rsp + 0x80]", (64, True): "rsp, [rsp + 0x88]",
           (32, True): "esp, [esp + 4]", (16, True): "sp, [esp + 4]"}


class _Section:
    """The aligned instruction streams of one executable section."""

    def __init__(self, name: str, oidx: int, ridx: int, orig: _Obj, rew: _Obj, bits: int):
        self.name, self.oidx, self.ridx = name, oidx, ridx
        self.O = [i for i in orig.insns(oidx) if not _is_padding(i)]
        self.R = [i for i in rew.insns(ridx) if not _is_padding(i)]
        self.osize = orig.elf.get_section(oidx)["sh_size"]
        self.rsize = rew.elf.get_section(ridx)["sh_size"]
        self.amap: dict[int, int] = {}
        self.pairs: list[tuple[int, int, int]] = []  # (index in O, first index in R, count in R)
        self.kept: set[int] = set()  # indices in O of port-I/O instructions left unchanged
        j = 0
        for i, o in enumerate(self.O):
            n = 1
            if _is_io(o):
                if j < len(self.R) and self.R[j].bytes == o.bytes:
                    self.kept.add(i)
                else:
                    size = orig.insn_bits[(oidx, o.address)]
                    n = _sequence_len(size, expected_thunk(o, size)[1])
            self.amap[o.address] = self.R[j].address if j < len(self.R) else self.rsize
            self.pairs.append((i, j, n))
            j += n
        self.extra = self.R[j:]
        # NOP padding in the original maps to where the rewritten padding starts: the end of the
        # rewritten counterpart of the previous instruction.
        rew_end: dict[int, int] = {}
        for i, j, n in self.pairs:
            last = j + n - 1
            rew_end[self.O[i].address] = self.R[last].address + self.R[last].size if last < len(self.R) else self.rsize
        prev_end = 0
        self.end_map: dict[int, int] = {0: 0}  # orig end address of an instruction -> rewritten end
        for ins in orig.insns(oidx):
            if ins.address in rew_end:
                prev_end = rew_end[ins.address]
            else:
                self.amap[ins.address] = prev_end
            self.end_map[ins.address + ins.size] = prev_end
        self.amap[self.osize] = self.rsize


def verify_objects(orig_o: str, rew_o: str, result: RewriteResult, path: str, bits: int) -> VerifyReport:
    """Compare two objects; raise Mismatch with the first unexplained difference."""
    orig, rew = _Obj(orig_o, bits), _Obj(rew_o, bits)
    report = VerifyReport(path=path, bits=bits)
    pcrel = _PCREL.get(orig.machine, set())
    code: dict[int, _Section] = {}
    for key, oidx in orig.sections.items():
        sec = orig.elf.get_section(oidx)
        if sec["sh_flags"] & SHF_EXECINSTR and sec["sh_type"] == "SHT_PROGBITS":
            if key not in rew.sections:
                raise Mismatch(f"{path}: section {key[0]} is missing from the rewritten object")
            code[oidx] = _Section(key[0], oidx, rew.sections[key], orig, rew, bits)

    def amap(shndx: int, addr: int, where: str) -> int:
        sec = code[shndx]
        if addr not in sec.amap:
            raise Mismatch(f"{path}: {where}: reference to {sec.name}+{addr:#x}, inside an instruction")
        return sec.amap[addr]

    def reloc_key(obj: _Obj, secidx: int, rels, base: int, end: int, is_orig: bool, where: str, data: bytes):
        items = []
        for off, typ, name, add, issec, shndx in rels:
            if add is None:  # REL (i386): the addend is in the section contents
                add = _implicit_addend(obj.machine, typ, data, off)
            if is_orig and issec and shndx in code:
                k = (end - off) if (typ in pcrel and end > base) else 0
                add = amap(shndx, add + k, where) - k
            items.append((off - base, typ, name, add))
        return tuple(items)

    for sec in code.values():
        report.sections += 1
        odata = orig.elf.get_section(sec.oidx).data()
        rdata = rew.elf.get_section(sec.ridx).data()
        orel, rrel = orig.reloc_list(sec.oidx), rew.reloc_list(sec.ridx)

        def rels_in(rels, a, b):
            return [r for r in rels if a <= r[0] < b]

        def key(ins, is_orig: bool):
            obj, rels, data = (orig, orel, odata) if is_orig else (rew, rrel, rdata)
            where = f"{sec.name}+{ins.address:#x}"
            end = ins.address + ins.size
            rr = rels_in(rels, ins.address, end)
            if rr:
                return (ins.mnemonic, _HEX.sub("#", ins.op_str),
                        reloc_key(obj, sec.oidx, rr, ins.address, end, is_orig, where, data))
            if (ins.mnemonic.startswith(("j", "loop", "call", "xbegin"))) and re.fullmatch(r"0x[0-9a-f]+|\d+",
                                                                                          ins.op_str):
                t = int(ins.op_str, 0)
                return (ins.mnemonic, "->", amap(sec.oidx, t, where) if is_orig else t)
            m = re.search(r"rip(?: ([+-]) (0x[0-9a-f]+|\d+))?\]", ins.op_str)
            if m:
                disp = int(m.group(2), 0) * (-1 if m.group(1) == "-" else 1) if m.group(2) else 0
                t = end + disp
                return (ins.mnemonic, _HEX.sub("#", ins.op_str), amap(sec.oidx, t, where) if is_orig else t)
            return (ins.mnemonic, ins.op_str)

        for i, j, n in sec.pairs:
            o = sec.O[i]
            where = f"{path}: {sec.name}+{o.address:#x}{orig.symbolize(sec.oidx, o.address)}"
            if j + n > len(sec.R):
                raise Mismatch(f"{where}: original `{o.mnemonic} {o.op_str}` has no counterpart (rewritten code ends)")
            report.instructions += 1
            if _is_io(o):
                if i in sec.kept:
                    report.kept_io += 1
                    continue
                size = orig.insn_bits[(sec.oidx, o.address)]
                thunk, port = expected_thunk(o, size)
                seq = sec.R[j : j + n]
                _check_sequence(seq, thunk, port, size, rrel, where, o)
                report.replaced[thunk] = report.replaced.get(thunk, 0) + 1
                continue
            r = sec.R[j]
            if o.bytes == r.bytes and not rels_in(orel, o.address, o.address + o.size) \
                    and not rels_in(rrel, r.address, r.address + r.size) and o.address == r.address:
                continue
            ko, kr = key(o, True), key(r, False)
            if ko != kr:
                raise Mismatch(f"{where}: original `{o.mnemonic} {o.op_str}` but rewritten "
                               f"`{r.mnemonic} {r.op_str}` at {sec.name}+{r.address:#x} (not a site)")
        if sec.extra:
            r = sec.extra[0]
            raise Mismatch(f"{path}: {sec.name}+{r.address:#x}: extra instruction `{r.mnemonic} {r.op_str}` "
                           "in the rewritten code")

    _compare_data(orig, rew, code, path)
    _compare_symbols(orig, rew, code, path)
    _check_sites(report, result, path)
    return report


def _implicit_addend(machine: str, typ: int, data: bytes, off: int) -> int:
    """The addend a REL relocation keeps in its field, read at the field's width."""
    w = _RELOC_WIDTH.get(machine, {}).get(typ, 4)
    return int.from_bytes(data[off : off + w], "little", signed=True)


def _check_sequence(seq, thunk: str, port: int | None, bits: int, rrel, where: str, o) -> None:
    k = 0
    bad = f"{where}: site `{o.mnemonic} {o.op_str}` became `" + "; ".join(
        f"{s.mnemonic} {s.op_str}" for s in seq) + f"`, not the call sequence of {thunk}"
    if bits == 64:
        if (seq[0].mnemonic, seq[0].op_str) != ("lea", "rsp, [rsp - 0x80]"):
            raise Mismatch(bad)
        k = 1
    up = _LEA_UP.get((bits, port is not None))
    if up is not None and (seq[-1].mnemonic, seq[-1].op_str) != ("lea", up):
        raise Mismatch(bad)
    if port is not None:
        p = seq[k]
        if p.mnemonic != "push" or (int(p.op_str, 0) & 0xFF) != port:  # the thunk reads the low byte
            raise Mismatch(bad)
        k += 1
    call = seq[k]
    names = [r[2] for r in rrel if call.address <= r[0] < call.address + call.size]
    if call.mnemonic != "call" or names != [thunk]:
        raise Mismatch(bad)


def _data_addend_ok(sec: _Section, oadd: int, radd: int, pcrel: bool, offset: int) -> bool:
    """A data relocation against a rewritten code section: its addend must follow the code.

    An absolute reference's addend is the target offset. A PC-relative one (`.long .L5 - .L4`, a
    relative jump table) is target + (P - B) with B the table base, unknown here: accept it if some
    c = P - B in [0, P] maps the target onto the rewritten addend.
    """
    if not pcrel:
        return oadd in sec.amap and sec.amap[oadd] == radd
    for c in range(0, min(offset, 1 << 16) + 1):
        t = oadd - c
        if t in sec.amap and sec.amap[t] + c == radd:
            return True
    return False


def _compare_data(orig: _Obj, rew: _Obj, code, path: str) -> None:
    for key, oidx in orig.sections.items():
        sec = orig.elf.get_section(oidx)
        if oidx in code or not key[0] or _SKIP_SECTIONS.match(key[0]):
            continue
        if key not in rew.sections:
            raise Mismatch(f"{path}: section {key[0]} is missing from the rewritten object")
        rsec = rew.elf.get_section(rew.sections[key])
        if sec["sh_type"] == "SHT_NOBITS" or sec["sh_type"] != "SHT_PROGBITS":
            if sec["sh_size"] != rsec["sh_size"]:
                raise Mismatch(f"{path}: section {key[0]}: size {sec['sh_size']} became {rsec['sh_size']}")
            continue
        od, rd = bytearray(sec.data()), bytearray(rsec.data())
        orl, rrl = orig.reloc_list(oidx), rew.reloc_list(rew.sections[key])
        if len(od) != len(rd) or len(orl) != len(rrl):
            raise Mismatch(f"{path}: data section {key[0]} changed size or relocation count")
        pcrel = _PCREL.get(orig.machine, set())
        for o, r in zip(orl, rrl):
            oadd = o[3] if o[3] is not None else _implicit_addend(orig.machine, o[1], od, o[0])
            radd = r[3] if r[3] is not None else _implicit_addend(rew.machine, r[1], rd, r[0])
            same = o[:3] == r[:3]
            if same and o[4] and o[5] in code:
                same = _data_addend_ok(code[o[5]], oadd, radd, o[1] in pcrel, o[0])
            elif same:
                same = oadd == radd
            if not same:
                raise Mismatch(f"{path}: data section {key[0]}+{o[0]:#x}: relocation {o[2]}{oadd:+#x} (type {o[1]}) "
                               f"became {r[2]}{radd:+#x} (type {r[1]}) at +{r[0]:#x}")
        for off, typ, *_ in orl:
            w = _RELOC_WIDTH.get(orig.machine, {}).get(typ, 4)
            od[off : off + w] = bytes(w)
            rd[off : off + w] = bytes(w)
        if od != rd:
            at = next(i for i in range(len(od)) if od[i] != rd[i])
            raise Mismatch(f"{path}: data section {key[0]}+{at:#x} differs")


def _compare_symbols(orig: _Obj, rew: _Obj, code, path: str) -> None:
    if orig.symtab is None or rew.symtab is None:
        return
    rsyms: dict[str, list] = {}
    for s in rew.symtab.iter_symbols():
        rsyms.setdefault(s.name, []).append(s)
    used: dict[str, int] = {}
    for s in orig.symtab.iter_symbols():
        if not s.name or s["st_info"]["type"] in ("STT_SECTION", "STT_FILE"):
            continue
        k = used.get(s.name, 0)
        used[s.name] = k + 1
        cands = rsyms.get(s.name, [])
        if k >= len(cands):
            raise Mismatch(f"{path}: symbol {s.name} is missing from the rewritten object")
        r = cands[k]
        v, size = s["st_value"], s["st_size"]
        if isinstance(s["st_shndx"], int) and s["st_shndx"] in code:
            m, e = code[s["st_shndx"]].amap, code[s["st_shndx"]].end_map
            if v not in m or (size and v + size not in e):
                raise Mismatch(f"{path}: symbol {s.name} does not start/end on an instruction boundary")
            v, size = m[v], (e[v + size] - m[v]) if size else 0
        if (v, size) != (r["st_value"], r["st_size"]):
            raise Mismatch(f"{path}: symbol {s.name}: expected value {v:#x} size {size}, "
                           f"found {r['st_value']:#x} size {r['st_size']}")


def _check_sites(report: VerifyReport, result: RewriteResult, path: str) -> None:
    thunks = {s.thunk for s in result.sites if s.rewritten}
    # a macro-argument port becomes the _dx or the _imm thunk, per expansion
    thunks |= {s.thunk[: -len("_dx")] + "_imm" for s in result.sites if s.rewritten and s.port_form == "macro"}
    for t in report.replaced:
        if t not in thunks:
            raise Mismatch(f"{path}: instructions were replaced by calls to {t}, which no recorded site names")
    io_sites = [s for s in result.sites if s.kind != "report-only"]
    expanded = any(s.in_macro for s in io_sites)
    if not expanded:
        want = sum(1 for s in io_sites if s.rewritten)
        if want != report.replaced_total:
            raise Mismatch(f"{path}: {want} sites were rewritten but {report.replaced_total} instructions "
                           "were replaced in the object")
        kept = sum(1 for s in io_sites if not s.rewritten)
        if kept != report.kept_io:
            raise Mismatch(f"{path}: {report.kept_io} port-I/O instructions are unchanged in the object, "
                           f"but {kept} sites are recorded as not rewritten")


def _auto_bits(text: str) -> int:
    """64 for a file with `.code64` (or none at all), else 16 or 32 after its first `.code16*`/`.code32`."""
    if re.search(r"^[ \t]*\.code64", text, re.M):
        return 64
    m = re.search(r"^[ \t]*\.code(16|32)", text, re.M)
    return int(m.group(1)) if m else 64


def verify_text(text: str, path: str, bits: int | None = None) -> tuple[VerifyReport, RewriteResult]:
    """Rewrite `text`, assemble both versions with GNU as, and check every difference is a recorded site."""
    from pvgen.rewrite.core import rewrite_text
    from pvgen.toolchain.objcheck import has_mode_switch, leftovers, tagged_copy, with_mode_tags
    from pvgen.toolchain.objscan import code_sections, is_runtime_symbol, scan

    bits = bits or _auto_bits(text)
    mode = {64: "code64", 32: "code32", 16: "code16"}[bits]
    m = re.search(r"^[ \t]*\.code64(?![\w.$])", text, re.M)
    if bits != 64 and m:
        raise PvgenError(f"{path}:{text.count(chr(10), 0, m.start()) + 1}: `.code64` contradicts --{bits}: a 32-bit "
                         "object holds no 64-bit code; verify it with --64")
    result = rewrite_text(text, path, mode=mode)
    as_flags = ["--64"] if bits == 64 else ["--32"]
    mixed = has_mode_switch([text])
    orig_text, rew_text = (with_mode_tags(text), with_mode_tags(result.text)) if mixed else (text, result.text)
    with tempfile.TemporaryDirectory(prefix="pvgen-verify-") as tmp:
        orig_o = assemble(orig_text, as_flags, tmp, "original", path)
        rew_o = assemble(rew_text, as_flags, tmp, "rewritten", path)
        report = verify_objects(orig_o, rew_o, result, path, bits)
        bad = []
        if any(not is_runtime_symbol(h.symbol) for h in scan(rew_o)) or re.search(r"^[ \t]*\.code", text, re.M):
            # every I/O instruction left must be a kept site: ask a tagged copy (toolchain/objcheck.py)
            tagged = assemble(tagged_copy(text, path, mode), [*as_flags, "--gdwarf-5"], tmp, "tagged", path)
            if code_sections(tagged) != code_sections(rew_o):
                raise Mismatch(f"{path}: the tagged copy of the rewrite assembles to other code; cannot tell "
                               "kept sites from leftovers")
            bad, _ = leftovers(tagged)
    if bad:
        raise Mismatch(f"{bad[0]}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))
    return report, result
