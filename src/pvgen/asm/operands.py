"""Parse an instruction's operand text with the lark grammar (operands.lark) into operand shapes."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

_GRAMMAR = os.path.join(os.path.dirname(__file__), "operands.lark")  # no pathlib: it costs pvgen-as start-up

# Register names (Intel noprefix spelling; AT&T adds `%`).
GP_REGS = frozenset(
    "al ah ax eax rax bl bh bx ebx rbx cl ch cx ecx rcx dl dh dx edx rdx si esi rsi sil di edi rdi dil "
    "sp esp rsp spl bp ebp rbp bpl rip eip ip".split()
    + [f"r{i}{s}" for i in range(8, 16) for s in ("", "d", "w", "b")]
)
SEG_REGS = frozenset("cs ds es fs gs ss".split())
_SIZES = {"byte": 1, "word": 2, "dword": 4, "qword": 8, "tbyte": 10, "xmmword": 16}


@dataclass(frozen=True)
class Operand:
    """The shape of one operand: kind is reg, imm, mem, macro (a bare macro argument) or other."""

    kind: str
    text: str  # the operand as written (stripped)
    reg: str | None = None  # kind reg: lower-case name without `%`
    seg: str | None = None  # mem: segment override, lower-case, without `%`
    base: str | None = None  # mem: base register
    index: str | None = None  # mem: index register
    value: str | None = None  # imm: the expression text (without `$`)
    size: int | None = None  # Intel mem: bytes from `BYTE PTR` etc.


class OperandSyntaxError(ValueError):
    """Operand text the grammar does not accept; carries the column."""

    def __init__(self, message: str, col: int | None):
        super().__init__(message)
        self.col = col


def _grammar_text() -> str:
    with open(_GRAMMAR, encoding="utf-8") as f:
        return f.read()


@lru_cache(maxsize=1)
def parser():
    """The LALR parser, built once per process (lark is imported only when a candidate needs it, and its
    grammar analysis is cached on disk by lark, so a short-lived `pvgen-as` pays little for it)."""
    global lark
    import lark as _lark

    lark = _lark
    options = dict(parser="lalr", start=["att_operands", "intel_operands"], propagate_positions=True,
                   maybe_placeholders=True)
    try:
        return lark.Lark(_grammar_text(), cache=True, **options)
    except OSError:
        return lark.Lark(_grammar_text(), **options)


lark = None  # the lark module, set by parser()


def _span(node) -> tuple[int, int]:
    if isinstance(node, lark.Token):
        return node.start_pos, node.end_pos
    return node.meta.start_pos, node.meta.end_pos


def _regname(tok) -> str | None:
    return None if tok is None else str(tok).lstrip("%").lower()


def _mem(node, text: str, seg: str | None) -> Operand:
    if node.data == "mem_abs":
        if len(node.children) == 1 and isinstance(node.children[0], lark.Token) \
                and node.children[0].type == "MACRO_ARG":
            return Operand("macro", text)
        return Operand("mem", text, seg=seg)
    kids = node.children  # [disp] base index scale (the bracketed parts are placeholders)
    base, index = (kids[0], kids[1]) if len(kids) == 3 else (kids[1], kids[2])
    return Operand("mem", text, seg=seg, base=_regname(base), index=_regname(index))


def _att(node, src: str) -> Operand:
    s, e = _span(node)
    text = src[s:e].strip()
    kind = node.data
    if kind == "imm":
        vs, ve = _span(node.children[0])
        return Operand("imm", text, value=src[vs:ve].strip())
    if kind == "reg":
        return Operand("reg", text, reg=_regname(node.children[0]))
    if kind == "indirect":
        return Operand("other", text)
    if kind == "seg_mem":
        m = _mem(node.children[1], text, _regname(node.children[0]))
        return m
    return _mem(node, text, None)


def _intel_mem(node, src: str, text: str) -> Operand:
    seg = None
    if node.data == "intel_mem_any":
        node = node.children[0]
    if node.data == "seg_mem":
        seg = str(node.children[0]).lower()
        node = node.children[1]
    inner = node.children[-1]
    s, e = _span(inner)
    regs = [w for w in _words(src[s:e]) if w in GP_REGS]
    return Operand("mem", text, seg=seg, base=regs[0] if regs else None,
                   index=regs[1] if len(regs) > 1 else None)


def _words(s: str) -> list[str]:
    out, cur = [], ""
    for ch in s.lower() + " ":
        if ch.isalnum() or ch == "_":
            cur += ch
        else:
            if cur:
                out.append(cur)
            cur = ""
    return out


def _intel(node, src: str) -> Operand:
    s, e = _span(node)
    text = src[s:e].strip()
    if isinstance(node, lark.Token) or node.data == "word_or_imm":
        tok = node if isinstance(node, lark.Token) else node.children[0]
        if isinstance(tok, lark.Token) and tok.type == "NAME" and str(tok).lower() in GP_REGS | SEG_REGS:
            return Operand("reg", text, reg=str(tok).lower())
        if isinstance(tok, lark.Token) and tok.type == "NAME" and _is_special_reg(str(tok).lower()):
            return Operand("reg", text, reg=str(tok).lower())
        if isinstance(tok, lark.Token) and tok.type == "MACRO_ARG":
            return Operand("macro", text)
        return Operand("imm", text, value=text)
    if node.data == "sized_mem":
        m = _intel_mem(node.children[1], src, text)
        size = _SIZES.get(str(node.children[0]).lower())
        return Operand("mem", text, seg=m.seg, base=m.base, index=m.index, size=size)
    return _intel_mem(node, src, text)


def _is_special_reg(name: str) -> bool:
    return len(name) >= 3 and name[:2] in ("cr", "dr", "db") and name[2:].isdigit()


# The spellings compilers emit for port I/O (`%dx, %al`, `$96, %al`, `%al, (%dx)`, `al, dx`) are
# recognised by this one regex without loading lark; their shapes are exactly what the grammar gives
# (tests/unit/test_asm_lexer.py checks both paths agree). Everything else goes to the grammar.
_SIMPLE_ATT = re.compile(r"%([a-z]{2,3})|\$(0x[0-9a-f]+|[0-9]+)|\(%(dx)\)", re.I)
_SIMPLE_INTEL = re.compile(r"([a-z]{2,3})|(0x[0-9a-f]+|[0-9]+)", re.I)


def _simple(text: str, syntax: str) -> tuple[Operand, ...] | None:
    parts = text.split(",")
    if len(parts) > 2:
        return None
    out = []
    for part in parts:
        t = part.strip()
        m = (_SIMPLE_ATT if syntax == "att" else _SIMPLE_INTEL).fullmatch(t)
        if m is None:
            return None
        if syntax == "att":
            if m.group(1):
                out.append(Operand("reg", t, reg=m.group(1).lower()))
            elif m.group(2):
                out.append(Operand("imm", t, value=m.group(2)))
            else:
                out.append(Operand("mem", t, base="dx"))
        elif m.group(1):
            if m.group(1).lower() not in GP_REGS:
                return None
            out.append(Operand("reg", t, reg=m.group(1).lower()))
        else:
            out.append(Operand("imm", t, value=t))
    return tuple(out)


@lru_cache(maxsize=4096)
def parse_operands(text: str, syntax: str = "att") -> tuple[Operand, ...]:
    """Parse operand text in `att` or `intel` (noprefix) syntax; raises OperandSyntaxError."""
    if not text.strip():
        return ()
    simple = _simple(text, syntax)
    if simple is not None:
        return simple
    return parse_with_grammar(text, syntax)


def parse_with_grammar(text: str, syntax: str = "att") -> tuple[Operand, ...]:
    """parse_operands without the fast path: always the lark grammar."""
    p = parser()
    try:
        tree = p.parse(text, start=f"{syntax}_operands")
    except lark.exceptions.UnexpectedInput as exc:
        col = getattr(exc, "column", None)
        raise OperandSyntaxError(f"cannot parse operands `{text}`", col) from None
    conv = _att if syntax == "att" else _intel
    return tuple(conv(k, text) for k in tree.children if k is not None)
