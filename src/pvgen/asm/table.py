"""The x86 port-I/O instruction forms and the other sensitive instructions, as one declarative table."""

from __future__ import annotations

from dataclasses import dataclass

# Intel SDM Vol. 2: IN (E4/E5 imm8, EC/ED DX), OUT (E6/E7, EE/EF), INS (6C/6D), OUTS (6E/6F), HLT (F4).
# A 0x66 operand-size prefix selects the 16-bit form of the 32-bit opcodes.


@dataclass(frozen=True)
class IoForm:
    """One port-I/O mnemonic spelling: operation, width in bytes (None: from the register), syntaxes."""

    mnemonic: str
    op: str  # "in" | "out" | "ins" | "outs" | "hlt"
    width: int | None
    syntaxes: tuple[str, ...] = ("att", "intel")


IO_FORMS: dict[str, IoForm] = {
    f.mnemonic: f
    for f in (
        IoForm("in", "in", None),
        IoForm("inb", "in", 1, ("att",)),
        IoForm("inw", "in", 2, ("att",)),
        IoForm("inl", "in", 4, ("att",)),
        IoForm("out", "out", None),
        IoForm("outb", "out", 1, ("att",)),
        IoForm("outw", "out", 2, ("att",)),
        IoForm("outl", "out", 4, ("att",)),
        # `ins`/`outs` with no suffix: the width comes from the memory operand's size (Intel) or
        # defaults to 32 bits with a warning (AT&T, as GNU as 2.40 does).
        IoForm("ins", "ins", None),
        IoForm("insb", "ins", 1),
        IoForm("insw", "ins", 2),
        IoForm("insl", "ins", 4, ("att",)),
        IoForm("insd", "ins", 4, ("intel",)),
        IoForm("outs", "outs", None),
        IoForm("outsb", "outs", 1),
        IoForm("outsw", "outs", 2),
        IoForm("outsl", "outs", 4, ("att",)),
        IoForm("outsd", "outs", 4, ("intel",)),
        IoForm("hlt", "hlt", None),
    )
}

# The accumulator registers that carry IN/OUT data, by width.
ACCUMULATORS: dict[str, int] = {"al": 1, "ax": 2, "eax": 4}

WIDTH_SUFFIX: dict[int, str] = {1: "b", 2: "w", 4: "l"}

# Instruction prefixes GNU as accepts as separate words (or statements: `rep; insb`).
REP_PREFIXES = frozenset({"rep", "repe", "repz", "repne", "repnz"})
SEGMENT_PREFIXES = frozenset({"cs", "ds", "es", "fs", "gs", "ss"})
PREFIXES = REP_PREFIXES | SEGMENT_PREFIXES | frozenset(
    {"lock", "data16", "data32", "addr16", "addr32", "rex", "rex64", "notrack", "bnd", "xacquire", "xrelease"}
)

# Instructions that are sensitive under virtualization (they trap, or behave differently at CPL3 or in a
# guest) but are not rewritten: they are listed in the site table as kind "report-only".
REPORT_ONLY: dict[str, str] = {
    "cli": "interrupt flag",
    "sti": "interrupt flag",
    "pushf": "reads IF/IOPL",
    "pushfw": "reads IF/IOPL",
    "pushfl": "reads IF/IOPL",
    "pushfq": "reads IF/IOPL",
    "pushfd": "reads IF/IOPL",
    "popf": "writes IF/IOPL",
    "popfw": "writes IF/IOPL",
    "popfl": "writes IF/IOPL",
    "popfq": "writes IF/IOPL",
    "popfd": "writes IF/IOPL",
    "lgdt": "descriptor table",
    "lidt": "descriptor table",
    "lldt": "descriptor table",
    "ltr": "task register",
    "sgdt": "descriptor table",
    "sidt": "descriptor table",
    "sldt": "descriptor table",
    "str": "task register",
    "lmsw": "control register",
    "smsw": "control register",
    "clts": "control register",
    "wrmsr": "model-specific register",
    "rdmsr": "model-specific register",
    "rdpmc": "performance counter",
    "rdtsc": "time-stamp counter",
    "rdtscp": "time-stamp counter",
    "cpuid": "always exits",
    "invlpg": "TLB",
    "invd": "cache",
    "wbinvd": "cache",
    "iret": "privilege change",
    "iretw": "privilege change",
    "iretl": "privilege change",
    "iretd": "privilege change",
    "iretq": "privilege change",
    "sysret": "privilege change",
    "sysretl": "privilege change",
    "sysretq": "privilege change",
    "sysexit": "privilege change",
    "sysenter": "privilege change",
    "syscall": "privilege change",
    "swapgs": "segment base",
    "int": "software interrupt",
    "int3": "software interrupt",
    "into": "software interrupt",
    "int1": "software interrupt",
    "xsetbv": "extended control register",
    "vmcall": "hypercall",
    "vmmcall": "hypercall",
    "monitor": "monitor/mwait",
    "mwait": "monitor/mwait",
}

# `mov` to or from a control or debug register is report-only too (detected from its operands).
MOV_MNEMONICS = frozenset({"mov", "movl", "movq"})
SPECIAL_REG_PREFIXES = ("cr", "dr", "db")

# Mnemonics that only another architecture has: an input using them is not x86 assembly.
FOREIGN_MNEMONICS = frozenset(
    {
        # ARM / AArch64
        "ldr", "ldrb", "ldrh", "ldrd", "strb", "strh", "strd", "ldm", "ldmia", "ldmfd", "stm", "stmia",
        "stmfd", "stmdb", "bx", "blx", "bl", "ldp", "stp", "adrp", "movt", "cbz", "cbnz", "vldr",
        "vstr", "svc",
        # RISC-V
        "addi", "addiw", "jalr", "auipc", "ecall", "lui", "sd", "lw", "sw", "li", "la",
    }
)
FOREIGN_DIRECTIVES = frozenset({".syntax", ".thumb", ".thumb_func", ".arm", ".cpu", ".fpu", ".eabi_attribute",
                                ".aarch64", ".option", ".attribute"})
