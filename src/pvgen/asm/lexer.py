"""Split GNU as source into statements: comments, strings, `;` separators, labels, prefixes, mnemonic."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pvgen.asm.table import PREFIXES

# A label at the start of a statement: a symbol, a numeric local label (`1:`) or a quoted name.
_LABEL = re.compile(r'[ \t]*(?:[A-Za-z_.$][\w.$@]*|\d+|"[^"\n]*")[ \t]*:(?!:)')
_SEPARATORS = re.compile(r"[;\n]")
_WORD = re.compile(r"[ \t]*([A-Za-z_.][\w.]*|\\[A-Za-z_]\w*)")


@dataclass
class Statement:
    """One statement of a unit of source text; offsets index the unit's text."""

    start: int  # first character (labels included)
    body_start: int  # first character after the labels
    end: int  # one past the last code character (comments and separators excluded)
    labels: list[str] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    prefix_starts: list[int] = field(default_factory=list)
    word: str | None = None  # mnemonic or directive, as written
    operands: str = ""  # operand text, comments blanked out
    operands_start: int = 0

    @property
    def is_directive(self) -> bool:
        return self.word is not None and self.word.startswith(".")

    @property
    def prefix_only(self) -> bool:
        return self.word is None and bool(self.prefixes)


def blank_comments(text: str, in_comment: bool = False) -> tuple[str, bool]:
    """Return text with comments replaced by spaces (same length, newlines kept) and whether a `/*` is left open.

    `#` starts a comment to the end of the line (x86 GNU as, both syntaxes); `/* */` may span lines;
    quotes protect both; a `'c` character constant protects its character.
    """
    if not in_comment and '"' not in text and "'" not in text and "/*" not in text:
        if "#" not in text:
            return text, False
        lines = text.split("\n")
        for k, ln in enumerate(lines):
            c = ln.find("#")
            if c >= 0:
                lines[k] = ln[:c] + " " * (len(ln) - c)
        return "\n".join(lines), False
    out = list(text)
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_comment:
            if c == "*" and text.startswith("*/", i):
                out[i] = out[i + 1] = " "
                in_comment = False
                i += 2
                continue
            if c != "\n":
                out[i] = " "
            i += 1
        elif in_string:
            if c == "\\":
                i += 2
                continue
            if c == '"' or c == "\n":
                in_string = False
            i += 1
        elif c == '"':
            in_string = True
            i += 1
        elif c == "'":
            i += 3 if text.startswith("\\", i + 1) else 2
        elif c == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                out[k] = " "
            i = j
        elif c == "/" and text.startswith("/*", i):
            out[i] = out[i + 1] = " "
            in_comment = True
            i += 2
        else:
            i += 1
    return "".join(out), in_comment


def split_statements(code: str) -> list[Statement]:
    """Split comment-free code on newlines and on `;` outside strings; parse labels, prefixes and the first word."""
    stmts: list[Statement] = []
    if '"' not in code and "'" not in code:  # no string: every `;` and newline separates
        start = 0
        for piece in _SEPARATORS.split(code):
            st = parse_statement(code, start, start + len(piece))
            if st is not None:
                stmts.append(st)
            start += len(piece) + 1
        return stmts
    start, i, n = 0, 0, len(code)
    in_string = False
    while i <= n:
        c = code[i] if i < n else "\n"
        if in_string:
            if c == "\\":
                i += 2
                continue
            if c == '"' or c == "\n":
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "'":
            i += 3 if code.startswith("\\", i + 1) else 2
            continue
        elif c == ";" or c == "\n":
            st = parse_statement(code, start, i)
            if st is not None:
                stmts.append(st)
            start = i + 1
        i += 1
    return stmts


def parse_statement(code: str, start: int, end: int) -> Statement | None:
    """Parse labels, prefixes and the mnemonic or directive of code[start:end]; None for an empty statement."""
    st = Statement(start=start, body_start=start, end=end)
    pos = start
    while True:
        m = _LABEL.match(code, pos, end)
        if not m:
            break
        st.labels.append(code[pos : m.end()].strip()[:-1].strip())
        pos = m.end()
    st.body_start = pos
    while True:
        m = _WORD.match(code, pos, end)
        if not m:
            break
        word = m.group(1)
        if word.lower() in PREFIXES and st.word is None:
            st.prefixes.append(word.lower())
            st.prefix_starts.append(m.start(1))
            pos = m.end()
            continue
        st.word = word
        pos = m.end()
        break
    rest_end = end
    while rest_end > pos and code[rest_end - 1] in " \t\r":
        rest_end -= 1
    st.end = rest_end
    lead = len(code[pos:rest_end]) - len(code[pos:rest_end].lstrip())
    st.operands_start = pos + lead
    st.operands = code[pos + lead : rest_end]
    if st.word is None and not st.prefixes and not st.labels:
        if code[pos:rest_end].strip():
            st.word = ""  # something that is neither label, prefix nor word (e.g. a stray number)
            st.operands = code[pos:rest_end].strip()
        else:
            return None
    return st
