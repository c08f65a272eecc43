"""Split GNU as source into statements: comments, strings, `;` separators, labels, prefixes, mnemonic."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator

from pvgen.asm.table import PREFIXES

# A label at the start of a statement: a symbol, a numeric local label (`1:`) or a quoted name.
_LABEL = re.compile(r'[ \t]*(?:[A-Za-z_.$][\w.$@]*|\d+|"[^"\n]*")[ \t]*:(?!:)')
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


# Lexical state at a unit boundary: in code, inside a `/* */` comment, inside a string (GNU as's strings run
# across newlines to the next unescaped `"`, or to the end of the file: `as` warns and keeps them as data).
CODE, COMMENT, STRING = 0, 1, 2
_STRING_REST = re.compile(r'[^"\\]*+(?:\\[\s\S][^"\\]*+)*+')  # a string's characters up to its closing quote
_LEXICAL = re.compile(r"[\"'#]|/\*")


def _blank(s: str) -> str:
    """Spaces for every character of s but newlines."""
    if "\n" not in s:
        return " " * len(s)
    return "\n".join(" " * len(part) for part in s.split("\n"))


def string_end(text: str, pos: int) -> int:
    """Offset of the `"` that closes a string whose characters start at pos; -1 when none does (end of text)."""
    e = _STRING_REST.match(text, pos).end()
    return e if e < len(text) else -1


def blank_comments(text: str, state: int = CODE) -> tuple[str, int]:
    """Return text with comments (and strings that span lines) replaced by spaces (same length, newlines kept),
    and the lexical state at its end (CODE, COMMENT: a `/*` left open, STRING: a `"` left open).

    `#` starts a comment to the end of the line (x86 GNU as, both syntaxes); `/* */` may span lines;
    quotes protect both; a `'c` character constant protects its character. A string that stays on its line is
    kept (split_statements reads it); one that spans lines or runs to the end of the text is data to `as`, so it
    is blanked like a comment. Time is linear in len(text).
    """
    if state == CODE and '"' not in text and "'" not in text and "/*" not in text:
        if "#" not in text:
            return text, CODE
        lines = text.split("\n")
        for k, ln in enumerate(lines):
            c = ln.find("#")
            if c >= 0:
                lines[k] = ln[:c] + " " * (len(ln) - c)
        return "\n".join(lines), CODE
    n = len(text)
    parts: list[str] = []
    last = i = 0  # text[last:i] is copied as it is
    if state == COMMENT:
        j = text.find("*/")
        last = i = n if j < 0 else j + 2
        parts.append(_blank(text[:i]))
        state = COMMENT if j < 0 else CODE
    elif state == STRING:
        j = string_end(text, 0)
        last = i = n if j < 0 else j + 1
        parts.append(_blank(text[:i]))
        state = STRING if j < 0 else CODE
    while state == CODE:
        m = _LEXICAL.search(text, i)
        if m is None:
            break
        p, c = m.start(), m.group()
        if c == '"':
            j = string_end(text, p + 1)
            if j >= 0 and text.find("\n", p, j) < 0:
                i = j + 1  # a string on one line: kept
                continue
            end = n if j < 0 else j + 1
            state = STRING if j < 0 else CODE
        elif c == "'":
            i = p + (3 if text.startswith("\\", p + 1) else 2)
            continue
        elif c == "#":
            end = text.find("\n", p)
            end = n if end < 0 else end
        else:
            j = text.find("*/", p + 2)
            end = n if j < 0 else j + 2
            state = COMMENT if j < 0 else CODE
        parts.append(text[last:p])
        parts.append(_blank(text[p:end]))
        last = i = end
    parts.append(text[last:])
    return "".join(parts), state


_SEPARATORS = re.compile(r"[;\n]")
_SPLIT = re.compile(r"[\"';\n]")
_LINE_STRING_REST = re.compile(r'[^"\\\n]*+(?:\\.[^"\\\n]*+)*+')  # up to the closing quote or the line end


def split_statements(code: str) -> list[Statement]:
    """Split comment-free code on newlines and on `;` outside strings; parse labels, prefixes and the first word."""
    return list(iter_statements(code))


def iter_statements(code: str):
    """split_statements one statement at a time (a unit may be one line of 400 000 statements)."""
    if '"' not in code and "'" not in code:  # no string: every `;` and newline separates
        start = 0
        for m in _SEPARATORS.finditer(code):
            st = parse_statement(code, start, m.start())
            if st is not None:
                yield st
            start = m.end()
        st = parse_statement(code, start, len(code))
        if st is not None:
            yield st
        return
    start = i = 0
    n = len(code)
    while True:
        m = _SPLIT.search(code, i)
        if m is None:
            break
        p, c = m.start(), m.group()
        if c == '"':  # a string ends at its closing quote or at the end of its line
            i = _LINE_STRING_REST.match(code, p + 1).end()
            if i < n and code[i] == '"':
                i += 1
            continue
        if c == "'":
            i = p + (3 if code.startswith("\\", p + 1) else 2)
            continue
        st = parse_statement(code, start, p)
        if st is not None:
            yield st
        start = i = p + 1
    st = parse_statement(code, start, n)
    if st is not None:
        yield st


_QUOTED = re.compile(r"""\"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+\"?|'\\?[\s\S]""")


def _neutral(m: re.Match) -> str:
    t = m.group()
    return t[0] + "_" * (len(t) - 1)


def skeleton(code: str) -> str:
    """`code` (comments blanked) with the characters of its strings and character constants replaced by `_`:
    same length, and its `;` and newlines are exactly the statement separators split_statements sees."""
    if '"' not in code and "'" not in code:
        return code
    return _QUOTED.sub(_neutral, code)


_SEPARATOR = re.compile(r"[;\n]")


def statements_at(code: str, skel: str, offsets) -> Iterator[Statement]:
    """The statements of `code` that hold one of the sorted `offsets` (for an offset on a `;`, the statement
    after it), each once, in order; `skel` is skeleton(code). Time is linear in len(code) plus the number of
    offsets: the statements in between are never parsed (a line of 400 000 `nop;` with one site costs little)."""
    floor = 0  # every statement before floor has been produced or passed over
    n = len(code)
    for off in offsets:
        p = off + 1 if off < n and skel[off] == ";" else off
        if p < floor:
            continue
        start = max(skel.rfind(";", floor, p), skel.rfind("\n", floor, p)) + 1
        if start < floor:
            start = floor
        m = _SEPARATOR.search(skel, p)
        end = n if m is None else m.start()
        floor = end + 1
        st = parse_statement(code, start, end)
        if st is not None:
            yield st


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
