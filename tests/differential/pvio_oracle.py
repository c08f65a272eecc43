"""Differential oracle: run original and rewritten x86 code in unicorn with the direct runtime, compare everything."""

from __future__ import annotations

import atexit
import functools
import random
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from elftools.elf.elffile import ELFFile
from unicorn import UC_ARCH_X86, UC_HOOK_CODE, UC_HOOK_INSN, UC_MODE_16, UC_MODE_32, UC_MODE_64, Uc, UcError
from unicorn import x86_const as X

RUNTIME = Path(__file__).resolve().parents[2] / "src" / "pvgen" / "runtime"

@dataclass(frozen=True)
class Layout:
    """Guest memory layout, identical for both runs: code sections at fixed addresses (linker script), data, stack."""

    orig: int
    rw: int
    rt: int
    code_size: int
    data_base: int
    data_size: int
    stack_base: int
    stack_size: int
    top_reserve: int        # bytes above the initial stack pointer (pops past it stay mapped and compared)

    @property
    def rsp0(self) -> int:
        return self.stack_base + self.stack_size - self.top_reserve

    @property
    def stack_top(self) -> int:
        return self.stack_base + self.stack_size

    def linker_script(self) -> str:
        return (f"ENTRY(orig_start)\nSECTIONS {{\n"
                f"  . = {self.orig:#x}; .text.orig : {{ *(.text.orig) }}\n"
                f"  . = {self.rw:#x}; .text.rw : {{ *(.text.rw) }}\n"
                f"  . = {self.rt:#x}; .text : {{ *(.text) *(.text.*) }}\n"
                f"  /DISCARD/ : {{ *(.note*) *(.eh_frame) *(.comment) *(.data*) *(.bss*) }}\n}}\n")


FLAT = Layout(0x400000, 0x410000, 0x420000, 0x30000, 0x600000, 0x10000, 0x700000, 0x10000, 0x1000)
# 16-bit (real mode, all segment bases 0): everything below 64 KiB; the runtime gets 24 KiB.
LOW = Layout(0x1000, 0x2000, 0x3000, 0x8000, 0x9000, 0x3000, 0xC000, 0x3000, 0x400)
# Segment bases and the other address size (test_diff_strx.py): 128 KiB of data from 0 (32/64-bit: a 16-bit
# offset wraps inside it from any base below 64 KiB), or from 64 KiB in real mode (ES, FS, GS bases from 64 KiB
# up; DS = SS = CS = 0 for the runtime, so a 32-bit offset from DS reaches it too).
FLATX = replace(FLAT, data_base=0, data_size=0x20000)
LOWX = Layout(0x1000, 0x2000, 0x3000, 0x8000, 0x10000, 0x30000, 0x9000, 0x7000, 0x400)
GDT_BASE = 0x800000  # 32-bit segment bases come from descriptors here

CFLAGS = ["-O2", "-ffreestanding", "-fno-pic", "-fno-stack-protector", "-mgeneral-regs-only",
          "-fno-asynchronous-unwind-tables", "-fcf-protection=none", "-Wall", "-Wextra", "-Werror"]


@dataclass(frozen=True)
class Mode:
    """One x86 code mode: how to assemble, link and emulate it."""

    bits: int
    as_flag: str
    cc_flags: tuple[str, ...]
    ld_emul: str
    uc_mode: int
    regs: tuple[tuple[str, int], ...]
    pc_reg: int
    sp_reg: int
    layout: Layout = FLAT
    directive: str = ""

    @property
    def name(self) -> str:
        return f"x86-{self.bits}"

    @property
    def code_mode(self) -> str:
        return f"code{self.bits}"


def _regs(names: str) -> tuple[tuple[str, int], ...]:
    return tuple((n, getattr(X, f"UC_X86_REG_{n.upper()}")) for n in names.split())


MODE64 = Mode(64, "--64", ("-m64", "-mpreferred-stack-boundary=3"), "elf_x86_64", UC_MODE_64,
              _regs("rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15"),
              X.UC_X86_REG_RIP, X.UC_X86_REG_RSP)
MODE32 = Mode(32, "--32", ("-m32",), "elf_i386", UC_MODE_32,
              _regs("eax ebx ecx edx esi edi ebp esp"), X.UC_X86_REG_EIP, X.UC_X86_REG_ESP)
# Real-mode 16-bit code; the back end is gcc -m16 code (.code16gcc), which needs PVIO_CODE16 encodings (ioinsn.h).
MODE16 = Mode(16, "--32", ("-m16", "-DPVIO_CODE16"), "elf_i386", UC_MODE_16,
              _regs("eax ebx ecx edx esi edi ebp esp"), X.UC_X86_REG_EIP, X.UC_X86_REG_ESP, LOW, ".code16")
# gcc -m16 output: .code16gcc makes push/pop/call/ret 32-bit by default; sites are rewritten as in .code16.
MODE16GCC = replace(MODE16, directive=".code16gcc")
MODES = {64: MODE64, 32: MODE32, 16: MODE16}
THUNKS = {64: "thunks64.S", 32: "thunks32.S", 16: "thunks16.S"}


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr}")


@functools.lru_cache(maxsize=None)
def workdir() -> Path:
    """One temporary directory per test process for runtime objects and per-sequence builds, removed when the
    process exits (a killed process leaves it: /tmp is the system's to clean)."""
    d = Path(tempfile.mkdtemp(prefix="pvgen-diff-"))
    atexit.register(shutil.rmtree, d, ignore_errors=True)
    return d


# Back ends the thunks are linked with: the shipped direct one, and a test double around it that reaches memory
# through DS as C code does (cptr_backend.c).
BACKENDS = {
    "direct": ((RUNTIME / "direct.c", ()),),
    "cptr": ((RUNTIME / "direct.c", tuple(f"-D{f}=direct_{f}" for f in ("pvio_in", "pvio_out", "pvio_ins",
                                                                          "pvio_outs"))),
             (Path(__file__).resolve().parent / "cptr_backend.c", ())),
}


def build_runtime(mode: Mode, thunks_source: Path | None = None, extra: tuple[str, ...] = (),
                  backend: str = "direct") -> tuple[Path, ...]:
    """Compile the thunks and a back end (BACKENDS) for `mode`; thunks_source replaces the shipped thunks
    (self-tests)."""
    return _build_runtime(mode.bits, str(thunks_source or RUNTIME / THUNKS[mode.bits]), extra, backend)


@functools.lru_cache(maxsize=None)
def _build_runtime(bits: int, thunks: str, extra: tuple[str, ...], backend: str) -> tuple[Path, ...]:
    mode = MODES[bits]
    out = workdir() / f"rt{bits}-{abs(hash((thunks, extra, backend))):x}"
    out.mkdir(exist_ok=True)
    objs = []
    for src, flags in ((Path(thunks), ()), *BACKENDS[backend]):
        obj = out / (src.stem + ".o")
        _run(["gcc", *mode.cc_flags, *CFLAGS, *extra, *flags, f"-I{RUNTIME}", "-c", str(src), "-o", str(obj)], out)
        objs.append(obj)
    return tuple(objs)


@dataclass
class Image:
    """A linked test image: raw bytes per loaded section and the symbol table."""

    chunks: list[tuple[int, bytes]]
    symbols: dict[str, int]
    sizes: dict[str, int] = field(default_factory=dict)


def link_pair(mode: Mode, original: str, rewritten: str, runtime: tuple[Path, ...] | None = None,
              extra_asm: str = "") -> Image:
    """Assemble original and rewritten text into one image (sections .text.orig / .text.rw) with the runtime."""
    code = f"{mode.directive or f'.code{mode.bits}'}\n"
    src = (f"{code}\t.section .text.orig,\"ax\",@progbits\n\t.globl orig_start, orig_end\norig_start:\n"
           f"{original}\n\tnop\norig_end:\n\tnop\n"
           f"\t.section .text.rw,\"ax\",@progbits\n\t.globl rw_start, rw_end\nrw_start:\n"
           f"{rewritten}\n\tnop\nrw_end:\n\tnop\n{extra_asm}\n")
    # A nop before each end marker: unicorn stops *after* a hlt, which must not look like reaching the end.
    d = Path(tempfile.mkdtemp(dir=workdir()))
    try:
        (d / "seq.s").write_text(src)
        (d / "link.ld").write_text(mode.layout.linker_script())
        _run(["as", mode.as_flag, "-o", "seq.o", "seq.s"], d)
        objs = [str(o) for o in (runtime or build_runtime(mode))]
        _run(["ld", "-m", mode.ld_emul, "-static", "-nostdlib", "-T", "link.ld", "-o", "img", "seq.o", *objs], d)
        with open(d / "img", "rb") as f:
            elf = ELFFile(f)
            chunks = [(s["sh_addr"], s.data()) for s in elf.iter_sections()
                      if s["sh_flags"] & 2 and s["sh_type"] == "SHT_PROGBITS" and s["sh_size"]]
            symtab = elf.get_section_by_name(".symtab")
            symbols = {s.name: s["st_value"] for s in symtab.iter_symbols() if s.name}
            sizes = {s.name: s["st_size"] for s in symtab.iter_symbols() if s.name}
        return Image(chunks, symbols, sizes)
    finally:
        shutil.rmtree(d, ignore_errors=True)


class PortDevice:
    """Deterministic device model: the k-th read of port p returns a fixed function of (seed, p, k)."""

    def __init__(self, seed: int):
        self.seed = seed
        self.reads: dict[int, int] = {}
        self.trace: list[tuple] = []

    def read(self, port: int, size: int) -> int:
        k = self.reads.get(port, 0)
        self.reads[port] = k + 1
        v = ((port * 0x9E3779B1) ^ (k * 0x85EBCA77) ^ self.seed) * 0xC2B2AE3D & 0xFFFFFFFF
        v = (v ^ (v >> 15)) & ((1 << (8 * size)) - 1)
        self.trace.append(("in", port, size, v))
        return v

    def write(self, port: int, size: int, value: int) -> None:
        self.trace.append(("out", port, size, value & ((1 << (8 * size)) - 1)))


@dataclass
class Machine:
    """Initial state shared by both runs: registers, flags, memory contents and the device seed."""

    regs: dict[str, int]
    eflags: int
    seed: int
    data: bytes = field(repr=False, default=b"")
    stack: bytes = field(repr=False, default=b"")
    segs: dict[str, int] = field(default_factory=dict)  # segment bases (ds, es, fs, gs, ss); the others stay 0

    @staticmethod
    def make(mode: Mode, seed: int, regs: dict[str, int] | None = None, eflags: int = 0x202,
             segs: dict[str, int] | None = None) -> "Machine":
        rnd = random.Random(seed)
        lay, width = mode.layout, 64 if mode.bits == 64 else 32
        r = {n: rnd.getrandbits(width) for n, _ in mode.regs}
        sp, si, di, cx = (("r" if mode.bits == 64 else "e") + x for x in ("sp", "si", "di", "cx"))
        # 16-bit code addresses with %si/%di/%cx only: random upper halves must survive untouched.
        upper = (lambda: rnd.getrandbits(16) << 16) if mode.bits == 16 else (lambda: 0)
        r[sp] = lay.rsp0
        r[si] = upper() | (lay.data_base + lay.data_size * 5 // 8 + rnd.randrange(0, 64))
        r[di] = upper() | (lay.data_base + lay.data_size * 5 // 16 + rnd.randrange(0, 64))
        r[cx] = upper() | rnd.randrange(0, 6)
        r.update(regs or {})
        return Machine(r, eflags, seed, rnd.randbytes(lay.data_size), rnd.randbytes(lay.stack_size), dict(segs or {}))


@dataclass
class Outcome:
    """What one run produced: the I/O trace, final registers and flags, memory that must match, and the stop PC."""

    trace: list[tuple]
    regs: dict[str, int]
    eflags: int
    data: bytes
    stack_live: bytes
    pc: int
    error: str = ""
    data_base: int = 0
    stack_top: int = 0


# Flags the comparison covers: CF PF AF ZF SF TF IF DF OF (and the always-one bit 1).
EFLAGS_MASK = 0x0DD5 | 0x0300 | 0x0002


def run(mode: Mode, image: Image, start: int, end: int, m: Machine, max_stops: int = 10000,
        on_insn: Callable[[int], None] | None = None) -> Outcome:
    """Emulate [start, end) from machine state m; every hlt is recorded in the trace and stepped over.
    on_insn(address) is called before every instruction (slow; for instruction counts)."""
    lay = mode.layout
    uc = Uc(UC_ARCH_X86, mode.uc_mode)
    uc.mem_map(lay.orig, lay.code_size)
    uc.mem_map(lay.data_base, lay.data_size)
    uc.mem_map(lay.stack_base, lay.stack_size)
    for addr, blob in image.chunks:
        uc.mem_write(addr, blob)
    uc.mem_write(lay.data_base, m.data)
    uc.mem_write(lay.stack_base, m.stack)
    for name, rid in mode.regs:
        uc.reg_write(rid, m.regs[name])
    uc.reg_write(X.UC_X86_REG_EFLAGS, m.eflags)
    _load_segments(uc, mode, m.segs)
    dev = PortDevice(m.seed)
    uc.hook_add(UC_HOOK_INSN, lambda u, port, size, ud: dev.read(port, size), None, 1, 0, X.UC_X86_INS_IN)
    uc.hook_add(UC_HOOK_INSN, lambda u, port, size, val, ud: dev.write(port, size, val), None, 1, 0,
                X.UC_X86_INS_OUT)
    if on_insn is not None:
        uc.hook_add(UC_HOOK_CODE, lambda u, addr, size, ud: on_insn(addr))
    pc, error = start, ""
    for _ in range(max_stops):
        try:
            uc.emu_start(pc, end, timeout=2_000_000)
        except UcError as exc:
            error = f"{exc} at {uc.reg_read(mode.pc_reg):#x}"
            break
        pc = uc.reg_read(mode.pc_reg)
        if pc == end:
            break
        if bytes(uc.mem_read(pc - 1, 1)) != b"\xf4":
            error = f"emulation stopped at {pc:#x}"
            break
        dev.trace.append(("hlt",))          # unicorn stops after hlt: record it and go on
    else:
        error = "too many stops"
    regs = {n: uc.reg_read(rid) for n, rid in mode.regs}
    sp = regs["rsp" if mode.bits == 64 else "esp"] + (m.segs.get("ss", 0) if mode.bits != 64 else 0)
    # Memory below the final stack pointer is dead (the 64-bit red zone is checked by the sequences themselves:
    # values stored below %rsp are loaded back after I/O sites); everything from the final %rsp up must match.
    live_from = min(max(sp, lay.stack_base), lay.stack_top)
    return Outcome(dev.trace, regs, uc.reg_read(X.UC_X86_REG_EFLAGS) & EFLAGS_MASK,
                   bytes(uc.mem_read(lay.data_base, lay.data_size)),
                   bytes(uc.mem_read(live_from, lay.stack_top - live_from)),
                   uc.reg_read(mode.pc_reg), error, lay.data_base, lay.stack_top)


def _descriptor(base: int) -> bytes:
    """A flat-limit (4 GiB) writable data segment descriptor with this base (SDM Vol. 3 §3.4.5)."""
    limit, access, flags = 0xFFFFF, 0x93, 0xC
    return struct.pack("<Q", (limit & 0xFFFF) | (base & 0xFFFFFF) << 16 | access << 40 | (limit >> 16) << 48
                       | flags << 52 | (base >> 24) << 56)


def _load_segments(uc: Uc, mode: Mode, segs: dict[str, int]) -> None:
    """Give ES/FS/GS the bases in segs: selectors in real mode (base = 16 * selector), descriptors of a GDT in
    32-bit mode, the FS/GS base registers in 64-bit mode."""
    if not segs:
        return
    regs = {"ds": X.UC_X86_REG_DS, "ss": X.UC_X86_REG_SS, "es": X.UC_X86_REG_ES, "fs": X.UC_X86_REG_FS, "gs": X.UC_X86_REG_GS}
    if mode.bits == 16:
        for seg, base in segs.items():
            assert base % 16 == 0 and base < 0x100000, base
            uc.reg_write(regs[seg], base >> 4)
    elif mode.bits == 32:
        # unicorn starts with null selectors: DS, ES and SS get real (flat) descriptors, so that code may reload
        # a segment register (QEMU then recomputes the stack size from SS's descriptor: 16-bit for a null one)
        segs = {"ds": 0, "es": 0, "ss": 0, **segs}
        names = sorted(segs)
        gdt = bytes(8) + b"".join(_descriptor(segs[n]) for n in names)
        uc.mem_map(GDT_BASE, 0x1000)
        uc.mem_write(GDT_BASE, gdt)
        uc.reg_write(X.UC_X86_REG_GDTR, (0, GDT_BASE, len(gdt) - 1, 0))
        for i, n in enumerate(names):
            uc.reg_write(regs[n], 8 * (i + 1))
    else:
        for seg, base in segs.items():
            if seg in ("fs", "gs"):
                uc.reg_write(X.UC_X86_REG_FS_BASE if seg == "fs" else X.UC_X86_REG_GS_BASE, base)


def differences(a: Outcome, b: Outcome, end_a: int, end_b: int) -> list[str]:
    """Human-readable list of every way outcome b differs from outcome a (empty when they agree)."""
    out = []
    for o, end, who in ((a, end_a, "original"), (b, end_b, "rewritten")):
        if o.error or o.pc != end:
            out.append(f"{who} did not reach its end marker: {o.error or hex(o.pc)}")
    if a.trace != b.trace:
        n = next((i for i, (x, y) in enumerate(zip(a.trace, b.trace)) if x != y), min(len(a.trace), len(b.trace)))
        out.append(f"I/O trace differs at event {n}: {a.trace[n:n + 3]} vs {b.trace[n:n + 3]} "
                   f"(lengths {len(a.trace)}, {len(b.trace)})")
    for r in a.regs:
        if a.regs[r] != b.regs[r]:
            out.append(f"{r}: {a.regs[r]:#x} vs {b.regs[r]:#x}")
    if a.eflags != b.eflags:
        out.append(f"eflags: {a.eflags:#x} vs {b.eflags:#x}")
    for what, x, y, base in (("data", a.data, b.data, a.data_base),
                             ("stack", a.stack_live, b.stack_live, a.stack_top - len(a.stack_live))):
        if x != y:
            i = next(i for i, (p, q) in enumerate(zip(x, y)) if p != q) if len(x) == len(y) else 0
            out.append(f"{what} memory differs at {base + i:#x}")
    return out


def compare(mode: Mode, original: str, rewritten: str, m: Machine,
            runtime: tuple[Path, ...] | None = None) -> list[str]:
    """Link, run both versions from the same state, and return the differences."""
    img = link_pair(mode, original, rewritten, runtime)
    s = img.symbols
    a = run(mode, img, s["orig_start"], s["orig_end"], m)
    b = run(mode, img, s["rw_start"], s["rw_end"], m)
    return differences(a, b, s["orig_end"], s["rw_end"])
