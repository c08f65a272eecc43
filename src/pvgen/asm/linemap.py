"""Logical source lines: gcc's `# N "file" flags` markers, `.linefile`, and `.file`/`.loc`, as GNU as reads them."""

# gcc writes `# 9 "x86.h" 1` before the text of an inline asm statement and `# 0 "" 2` after it; cpp writes the
# same markers into a preprocessed .S (GNU cpp manual, "Preprocessor Output": flag 1 enters a file, flag 2
# returns to one). GNU as names diagnostics and -g line tables after them, and so does pvgen: a site in
# `/tmp/ccXYZ.s` (deleted when gcc exits) is reported as `x86.h:9`. Outside any marker, the last `.loc`
# (DWARF line of the compiler, `.file N "name"` table) names the C line; without either, the physical line.

from __future__ import annotations

import re
from bisect import bisect_left

_MARKER = re.compile(r'^(?:#[ \t]*|[ \t]*\.linefile[ \t]+)(\d+)[ \t]+"((?:[^"\\\n]|\\.)*)"([ \t\d]*)$', re.M)
_FILE = re.compile(r'^[ \t]*\.file[ \t]+(\d+)[ \t]+(?:"(?:[^"\\\n]|\\.)*"[ \t]+)?"((?:[^"\\\n]|\\.)*)"', re.M)
_LOC = re.compile(r"^[ \t]*\.loc[ \t]+(\d+)[ \t]+(\d+)", re.M)
# Words a line of one of the three kinds starts with. Searching for these literals and matching the expressions
# above at the start of their lines is several times faster than running the `^`-anchored expressions over a
# large file (the re engine tries those at every position).
_HINTS = tuple(re.compile(re.escape(w)) for w in ("#", ".linefile", ".file", ".loc"))


class LineMap:
    """Physical line of an assembly file -> (file, line) a user recognises."""

    def __init__(self, path: str, events: list[tuple[int, tuple]]):
        self.path = path
        self._lines = [p for p, _ in events]
        self._states = [s for _, s in events]

    @property
    def logical(self) -> bool:
        """Whether any line is named other than by its physical position."""
        return bool(self._lines)

    @classmethod
    def of(cls, text: str, path: str) -> LineMap:
        if "#" not in text and ".loc" not in text and ".linefile" not in text:
            return cls(path, [])
        found: list[tuple[int, str, re.Match]] = []
        for start in _line_starts(text):
            for kind, rx in (("mark", _MARKER), ("file", _FILE), ("loc", _LOC)):
                m = rx.match(text, start)
                if m:
                    found.append((start, kind, m))
                    break
        if not found:
            return cls(path, [])
        found.sort(key=lambda f: f[0])
        events: list[tuple[int, tuple]] = []
        stack: list[tuple[str, int, int]] = []  # (file, line of the next physical line, that physical line)
        files: dict[str, str] = {}
        loc: tuple[str, int] | None = None
        pos, phys = 0, 1
        for start, kind, m in found:
            phys += text.count("\n", pos, start)
            pos = start
            if kind == "file":
                files[m.group(1)] = _unquote(m.group(2))
                continue
            if kind == "loc":
                loc = (files.get(m.group(1), f"file {m.group(1)}"), int(m.group(2)))
            else:
                name, line, flags = _unquote(m.group(2)), int(m.group(1)), m.group(3).split()
                if "2" in flags:
                    if stack:
                        stack.pop()
                    if name:
                        stack[-1:] = [(name, line, phys + 1)]
                elif "1" in flags or not stack:
                    stack.append((name, line, phys + 1))
                else:
                    stack[-1] = (name, line, phys + 1)
            events.append((phys, stack[-1] if stack else loc))
        return cls(path, events)

    def locate(self, phys: int) -> tuple[str, int]:
        """(file, line) of physical line `phys` (1-based)."""
        k = bisect_left(self._lines, phys) - 1
        state = self._states[k] if k >= 0 else None
        if state is None:
            return self.path, phys
        if len(state) == 2:
            return state  # a .loc: the compiler's line
        name, line, first = state
        return name, line + (phys - first)


def _line_starts(text: str) -> list[int]:
    """Offsets of the lines that may be a marker, `.file` or `.loc`: a hint word behind blanks only."""
    out: set[int] = set()
    for rx in _HINTS:
        for m in rx.finditer(text):
            start = text.rfind("\n", 0, m.start()) + 1
            if not text[start : m.start()].strip(" \t"):
                out.add(start)
    return sorted(out)


def _unquote(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s) if "\\" in s else s
