"""Sites: the site-table record, and the classification of one parsed instruction into a port-I/O site."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pvgen.asm.operands import Operand
from pvgen.asm.table import ACCUMULATORS, SEGMENT_PREFIXES, WIDTH_SUFFIX, IoForm

CODE_MODES = ("code16", "code16gcc", "code32", "code64")

# The object check (docs/toolchain.md) assembles a second, tagged copy of the rewritten text: each kept site is
# preceded by a numeric local label no compiler writes, and its address is recorded in a non-allocated section.
# The code bytes are those of the real object; the tags say which I/O instructions are kept sites, also when a
# macro or .rept expands them several times.
TAG_LABEL = "91827364"
KEPT_SECTION = ".pvgen.kept"


def kept_tag(statement: str) -> str:
    """The tagged form of a kept statement (one line, whatever lines the statement spans)."""
    return (f"{TAG_LABEL}: {' '.join(statement.split())} ; .pushsection {KEPT_SECTION},\"\",@progbits; "
            f".dc.a {TAG_LABEL}b; .popsection")


# A mode tag, after each `.codeNN` and section switch of the tagged copy: the address where the mode (re)starts,
# then 8 bytes whose encoding tells the code size, whatever the syntax (`call` takes a rel16 in 16-bit code,
# `jecxz` an address-size prefix in 16- and 64-bit code):
#   16: e8 r16 67 e3 r8 cc   32: e8 r32 e3 r8 cc   64: e8 r32 67 e3 r8   .code16gcc: 66 e8 r32 67 e3
MODE_SECTION = ".pvgen.mode"
MODE_TAG = (f"; {TAG_LABEL}: .pushsection {MODE_SECTION},\"\",@progbits; .dc.a {TAG_LABEL}b; "
            f"{TAG_LABEL}5: call {TAG_LABEL}5b; jecxz {TAG_LABEL}5b; .balign 4,0xcc; .popsection")


def mode_of_tag(code: bytes) -> int:
    """The code size (16, 32, 64) a mode tag's 8 bytes were assembled in."""
    if code[0] == 0x66 or code[3] == 0x67:  # .code16gcc makes the call 32-bit (66 e8)
        return 16
    return 32 if code[5] == 0xE3 else 64


# Each code mode calls thunks built for it (runtime/thunks{16,32,64}.S): `.code32` code in a 64-bit object must not
# call a 64-bit thunk. .code16 and .code16gcc share one set (docs/thunk-abi.md).
THUNK_PREFIX = {"code64": "__pvio_", "code32": "__pvio32_", "code16": "__pvio16_", "code16gcc": "__pvio16_"}
# String I/O: the address size each code mode uses by default and the one a 67h prefix selects (SDM Vol. 1 §3.6,
# Vol. 2 INS/OUTS), and the index registers (destination, source) of each address size.
ADDRESS_SIZE = {"code64": (64, 32), "code32": (32, 16), "code16": (16, 32), "code16gcc": (16, 32)}
STRING_REGS = {64: ("rdi", "rsi"), 32: ("edi", "esi"), 16: ("di", "si")}
# The source segment of `outs` can be overridden (the destination of `ins` is always ES). In 64-bit mode the
# bases of CS, DS, ES and SS are zero, so only FS and GS change the address (SDM Vol. 3 §3.4.4).
OUTS_SEGMENTS = {"code64": ("fs", "gs")}
OUTS_SEGMENTS_LEGACY = ("es", "cs", "ss", "fs", "gs")


def string_tail(code_mode: str, asize: int, seg: str | None) -> str:
    """The thunk-name tail of a string form: `_a16`/`_a32` for the other address size, `_fs` etc. for a segment."""
    tail = "" if asize == ADDRESS_SIZE[code_mode][0] else f"_a{asize}"
    return tail + (f"_{seg}" if seg in OUTS_SEGMENTS.get(code_mode, OUTS_SEGMENTS_LEGACY) else "")


@dataclass
class Site:
    """One record of the site table."""

    file: str
    line: int
    text: str  # the original instruction, prefixes included, whitespace normalised
    kind: str  # in, out, ins, outs, rep-ins, rep-outs, hlt, report-only
    width: int | None  # bytes per element, None for hlt and report-only
    port_form: str | None  # "dx", "imm", "macro" (a macro argument, decided at expansion) or None
    code_mode: str  # code16, code16gcc, code32, code64
    rewritten: bool
    thunk: str | None = None  # the runtime thunk called (rewritten sites)
    reason: str | None = None  # why a site is not rewritten (report-only category, or the limitation)
    syntax: str = "att"
    in_macro: bool = False  # inside a .macro, .rept, .irp, .irpc or .if body (assembled 0..n times)
    asm_line: int = 0  # the line in the assembly input itself (`line` may follow a `# N "file"` marker or .loc)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class IoInstr:
    """A classified port-I/O instruction, ready to be turned into a thunk call."""

    op: str  # in, out, ins, outs, hlt
    width: int | None
    port_form: str | None  # dx, imm, macro
    port: Operand | None  # the port operand (imm and macro forms)
    rep: bool = False
    tail: str = ""  # string forms: another address size and/or a segment override (string_tail)

    @property
    def kind(self) -> str:
        return f"rep-{self.op}" if self.rep else self.op

    def thunk(self, code_mode: str) -> str:
        prefix = THUNK_PREFIX[code_mode]
        if self.op == "hlt":
            return prefix + "hlt"
        sfx = WIDTH_SUFFIX[self.width]  # type: ignore[index]
        if self.op in ("in", "out"):
            return f"{prefix}{self.op}{sfx}_{self.port_form if self.port_form != 'macro' else 'dx'}"
        return f"{prefix}{'rep_' if self.rep else ''}{self.op}{sfx}{self.tail}"


class Malformed(Exception):
    """An instruction GNU as would reject (reported as file:line: message)."""


class NotRewritable(Exception):
    """A valid instruction that cannot be rewritten exactly; the reason goes into the site table."""


def _port(op: Operand) -> tuple[str, Operand | None]:
    if op.kind == "reg" and op.reg == "dx":
        return "dx", None
    if op.kind == "mem" and op.base == "dx" and op.index is None and op.seg is None and op.text.startswith("("):
        return "dx", None
    if op.kind == "imm":
        value = number(op.value or "")
        if value is not None and not -0x80 <= value <= 0xFF:
            raise Malformed(f"immediate port `{op.text}` does not fit in 8 bits (ports above 0xff need %dx)")
        return "imm", op
    if op.kind == "macro":
        return "macro", op
    raise Malformed(f"port operand `{op.text}` must be %dx, (%dx) or an immediate")


def number(text: str) -> int | None:
    """The value of a plain numeric literal (decimal, 0x, 0b, 0 octal); None for an expression."""
    t = text.strip().lower()
    try:
        if t.startswith(("0x", "0b")):
            return int(t, 0)
        if t.startswith("0") and len(t) > 1:
            return int(t, 8)
        return int(t, 10)
    except ValueError:
        return None


def _data_width(op: Operand) -> int | None:
    """Width of the accumulator operand; None for a macro argument."""
    if op.kind == "macro":
        return None
    if op.kind == "reg" and op.reg in ACCUMULATORS:
        return ACCUMULATORS[op.reg]
    raise Malformed(f"data operand `{op.text}` must be %al, %ax or %eax")


def _string_mem(op: Operand, which: int, code_mode: str, allowed_seg: str | None) -> tuple[int, str | None]:
    """The address size and segment of a string operand (`%es:(%edi)`, `(%si)`)."""
    if op.kind == "macro":
        raise NotRewritable(f"string operand `{op.text}` is a macro argument: its address size is unknown")
    if op.kind != "mem":
        raise Malformed(f"operand `{op.text}` must be a memory operand")
    asize = next((a for a in ADDRESS_SIZE[code_mode] if STRING_REGS[a][which] == op.base), None)
    if asize is None or op.index is not None:
        if op.base in ("rdi", "edi", "di", "rsi", "esi", "si"):
            raise NotRewritable(f"`{op.text}` is not a string operand of {code_mode} code")
        raise Malformed(f"operand `{op.text}` must be ({'%' + STRING_REGS[ADDRESS_SIZE[code_mode][0]][which]})")
    if allowed_seg is not None and op.seg not in (None, allowed_seg):
        raise NotRewritable(f"segment `{op.seg}:` on the destination of `ins` (always %es)")
    return asize, op.seg


def classify_io(form: IoForm, prefixes: list[str], ops: tuple[Operand, ...], syntax: str, code_mode: str) -> IoInstr:
    """Classify one port-I/O instruction; raises Malformed or NotRewritable."""
    if syntax == "intel" and form.op in ("in", "out", "ins", "outs"):
        ops = tuple(reversed(ops))  # Intel writes destination first; use AT&T order below
    width = form.width
    rep = False
    asize, seg = ADDRESS_SIZE[code_mode][0], None
    for p in prefixes:
        if p in ("rep", "repe", "repz"):
            if form.op not in ("ins", "outs"):
                raise NotRewritable(f"`{p}` prefix on `{form.mnemonic}`")
            rep = True
        elif p in ("repne", "repnz"):
            raise NotRewritable(f"`{p}` on `{form.mnemonic}` is undefined in the SDM; left unchanged")
        elif p == "lock":
            raise Malformed(f"`lock` cannot prefix `{form.mnemonic}`")
        elif p in ("addr32", "addr16"):
            if form.op in ("ins", "outs"):
                asize = 32 if p == "addr32" else 16
                if asize == ADDRESS_SIZE[code_mode][0]:
                    raise Malformed(f"redundant `{p}` prefix")  # as says so too
                if asize not in ADDRESS_SIZE[code_mode]:
                    raise NotRewritable(f"`{p}` is not an address size of {code_mode} code")
        elif p in SEGMENT_PREFIXES:
            if code_mode == "code64" and p not in ("fs", "gs"):
                raise Malformed(f"`{p}` is not supported in 64-bit mode")  # as says so too
            if form.op == "outs":
                seg = p  # `ins` ignores a segment prefix: its destination is always ES
        elif p not in ("data16", "data32"):
            raise NotRewritable(f"prefix `{p}` on `{form.mnemonic}` is not supported")

    port_form: str | None = None
    port: Operand | None = None
    if form.op == "hlt":
        if ops:
            raise Malformed("`hlt` takes no operands")
        return IoInstr("hlt", None, None, None)
    if form.op == "in":
        if len(ops) not in (1, 2):
            raise Malformed(f"`{form.mnemonic}` needs a port operand")
        port_form, port = _port(ops[0])
        dw = _data_width(ops[1]) if len(ops) == 2 else None
        width = _merge_width(form, width, dw, len(ops) == 2)
    elif form.op == "out":
        if len(ops) not in (1, 2):
            raise Malformed(f"`{form.mnemonic}` needs a port operand")
        port_form, port = _port(ops[-1])
        dw = _data_width(ops[0]) if len(ops) == 2 else None
        width = _merge_width(form, width, dw, len(ops) == 2)
    elif form.op == "ins":
        if len(ops) not in (0, 2):
            raise Malformed(f"`{form.mnemonic}` takes no operands or (%dx),%es:(%rdi)")
        if ops:
            if _port(ops[0])[0] != "dx":
                raise Malformed(f"`{form.mnemonic}` reads port %dx only")
            asize = _operand_agrees(_string_mem(ops[1], 0, code_mode, "es"), asize, None, prefixes)[0]
            width = width or ops[1].size
        width = width or 4
        port_form = "dx"
    elif form.op == "outs":
        if len(ops) not in (0, 2):
            raise Malformed(f"`{form.mnemonic}` takes no operands or (%rsi),(%dx)")
        if ops:
            if _port(ops[1])[0] != "dx":
                raise Malformed(f"`{form.mnemonic}` writes port %dx only")
            asize, seg = _operand_agrees(_string_mem(ops[0], 1, code_mode, None), asize, seg, prefixes)
            width = width or ops[0].size
        width = width or 4
        port_form = "dx"
    if "data16" in prefixes and width != 1:
        width = 4 if code_mode.startswith("code16") else 2
    if "data32" in prefixes and width != 1:
        if not code_mode.startswith("code16"):
            raise NotRewritable(f"`data32` on `{form.mnemonic}` outside 16-bit code")
        width = 4
    if width not in (1, 2, 4):
        raise Malformed(f"bad operand size for `{form.mnemonic}`")
    tail = string_tail(code_mode, asize, seg) if form.op in ("ins", "outs") else ""
    return IoInstr(form.op, width, port_form, port, rep, tail)


def _operand_agrees(got: tuple[int, str | None], asize: int, seg: str | None,
                    prefixes: list[str]) -> tuple[int, str | None]:
    """The operand's address size and segment, when the prefix words say the same (or nothing)."""
    if any(p in ("addr16", "addr32") for p in prefixes) and got[0] != asize:
        raise NotRewritable(f"the address-size prefix contradicts the {got[0]}-bit register of the operand")
    if seg is not None and got[1] not in (None, seg):
        raise NotRewritable(f"two segment overrides (`{seg}` and `{got[1]}:`)")
    return got[0], got[1] or seg


def _merge_width(form: IoForm, suffix: int | None, reg: int | None, has_reg: bool) -> int:
    if suffix is not None and reg is not None and suffix != reg:
        raise Malformed(f"operand size mismatch for `{form.mnemonic}`")
    if suffix is not None:
        return suffix
    if reg is not None:
        return reg
    if has_reg:
        raise NotRewritable(f"`{form.mnemonic}` with a macro-argument register: width unknown until expansion")
    return 4  # GNU as: no suffix and no register operand: default (32-bit) with a warning
