"""The fast path: find the few lines the rewriter must look at with literal-prefixed regexes, compiled lazily."""

from __future__ import annotations

import re
from bisect import bisect_left
from functools import cache

from pvgen.asm.table import FOREIGN_DIRECTIVES, FOREIGN_MNEMONICS, IO_FORMS, PREFIXES, REPORT_ONLY

CONDITIONALS = ("if", "ifdef", "ifndef", "ifnotdef", "ifc", "ifnc", "ifeq", "ifeqs", "ifne", "ifnes", "ifge", "ifgt",
                "ifle", "iflt", "ifb", "ifnb")
STATE_DIRECTIVES = ("intel_syntax", "att_syntax", "code16gcc", "code16", "code32", "code64", "macro", "endm",
                    "endmacro", "rept", "irp", "irpc", "endr", "endif") + CONDITIONALS
_END = r"(?![\w.$])"


def _trie(words) -> str:
    """A regex alternation of `words` as a trie (much faster in `re` than a flat alternation)."""
    root: dict = {}
    for w in words:
        node = root
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:
        alts = [re.escape(ch) + emit(sub) for ch, sub in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(root)


# Candidate lines are found by a few patterns, each starting with a literal character so that `re` can
# skip quickly, run over a lower-cased copy of the text. A line matched by none of them holds no site, no
# report-only instruction and no state change, and is copied without being looked at. A statement (an
# instruction or a directive) starts a line, or follows `:` (a label), `;` or `*/`. Patterns are compiled
# on first use: a short-lived `pvgen-as` that only asks may_have_sites() compiles only those.
@cache
def _word_patterns(site_only: bool) -> tuple[re.Pattern, list[tuple[str, re.Pattern]]]:
    words = set(IO_FORMS) | PREFIXES
    if not site_only:  # everything that can start a statement of interest, directives included
        words |= set(REPORT_ONLY) | FOREIGN_MNEMONICS | FOREIGN_DIRECTIVES | {"." + d for d in STATE_DIRECTIVES}
    first = re.escape("".join(sorted({w[0] for w in words})))
    # possessive blanks and a look-ahead on the first letter let `re` give up early on most lines
    w = rf"[ \t]*+(?=[{first}]){_trie(words)}{_END}"
    after = [(lit, re.compile(re.escape(lit) + w)) for lit in ("\n", ":", ";", "*/")]
    return re.compile(w), after


@cache
def prefix_run() -> tuple[re.Pattern, re.Pattern]:
    """Over lower-cased text: (a prefix starting a line, a run of statements holding only prefixes (`rep`, `lock`,
    ...; empty statements and `#` comments too), each with its separator). The rewriter takes such a run in one
    step, so 10 000 lines of a bare `rep` (or one line of `rep; rep; ...`) are not parsed one by one."""
    prefix = rf"{_trie(PREFIXES)}{_END}"
    statement = rf"[ \t\r]*+(?:{prefix}[ \t\r]*+)*+(?:#[^\n]*+)?(?:[;\n]|\Z)"
    return re.compile(rf"[ \t]*+{prefix}"), re.compile(rf"(?:{statement})*")


@cache
def _other_patterns() -> dict[str, re.Pattern]:
    return {
        "comment": re.compile(r"/\*"),
        "special_att": re.compile(r"%(?:cr|dr|db)[0-9]"),
        "special_intel": re.compile(r"[ \t,](?:cr|dr|db)[0-9]"),
        # A string that does not close on its line (quotes paired left to right, `\"` escaped): GNU as reads it
        # on to the next `"` (or to the end), so the lines it covers are data, never code. A match ends at
        # the closing quote, or (group 1) at the end of the line. The second form also pairs `'"` (a character
        # constant), compiled apart because the alternation makes `re` give up its fast literal search.
        "string": re.compile(r'"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+(?:"|(\n|\Z))'),
        "string_char": re.compile(r'\'\\?"|"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+(?:"|(\n|\Z))'),
    }


def _lower(text: str) -> str:
    """Lower-case ASCII letters; every other character becomes `?`, so offsets stay those of `text`."""
    if text.isascii():
        return text.lower()
    return text.encode("ascii", errors="replace").lower().decode("ascii")


_SEPARATOR = re.compile(r"[;\n]")


class Candidates:
    """The candidate offsets of a text, found as the rewriter moves forward (queries never go back): a region it
    skips whole (a comment or a string left open, a run of bare prefixes) costs at most one window of matches,
    not one match per candidate in it.

    The statement patterns are matched window by window (about 64 KiB, ending before a `;` or a newline: no match
    crosses either, so a window cuts none short). Strings left open are rare: the next one is searched for on
    demand, from a line boundary, so that the pairing of quotes restarts where a line does."""

    WINDOW = 1 << 16

    def __init__(self, text: str):
        self.low = low = _lower(text)
        self.n = len(low)
        at_start, after = _word_patterns(False)
        other = _other_patterns()
        pats: list[tuple[re.Pattern, int]] = []  # (pattern, shift of the reported offset)
        # One-character probes are fast (memchr); a pattern whose text is absent is not searched at all.
        comments = "/" in low and "/*" in low
        for lit, rx in after:
            if lit == "\n" or (lit in low if lit != "*/" else comments):
                pats.append((rx, 1 if lit == "\n" else 0))
        if comments:
            pats.append((other["comment"], 0))
        if "%" in low:
            pats.append((other["special_att"], 0))
        if ".intel_syntax" in low:
            pats.append((other["special_intel"], 0))
        self.pats = pats
        self.strings = None
        if '"' in low:
            char_quote = "'" in low and ("'\"" in low or "'\\\"" in low)
            self.strings = other["string_char"] if char_quote else other["string"]
        self.open_at, self.open_end = -1, 0  # the next string left open at or after open_end's search start
        self.at_start = at_start.match(low) is not None
        self.buf: list[int] = []  # the statement candidates in [lo, hi), sorted
        self.lo = self.hi = 0

    def _fill(self, pos: int) -> None:
        """Find the statement candidates of the window starting at pos (a line boundary or a `;`)."""
        low, n = self.low, self.n
        hi = n
        if pos + self.WINDOW < n:
            m = _SEPARATOR.search(low, pos + self.WINDOW)  # the nearer of the two: a search never runs past it
            hi = n if m is None else m.start() + (m.group() == "\n")
        buf = [0] if pos == 0 and self.at_start else []
        for rx, shift in self.pats:
            if shift:
                buf += [m.start() + 1 for m in rx.finditer(low, max(pos - 1, 0), hi)]
            else:
                buf += [m.start() for m in rx.finditer(low, pos, hi)]
        buf.sort()
        self.buf, self.lo, self.hi = buf, pos, hi

    def _open_string(self, pos: int) -> int:
        """The first string left open on its line at or after pos (a line boundary); len(text) when none."""
        if self.strings is None:
            return self.n
        if self.open_at < pos:
            self.open_at = self.n
            for m in self.strings.finditer(self.low, pos):
                if m.group(1) is not None:
                    self.open_at, self.open_end = m.start(), m.end()
                    break
        return self.open_at

    def next(self, pos: int) -> int:
        """The first candidate at or after pos (a line boundary); len(text) when there is none."""
        found = self._open_string(pos)
        while pos < found:
            if not self.lo <= pos < self.hi:
                self._fill(pos)
            i = bisect_left(self.buf, pos)
            if i < len(self.buf):
                return min(self.buf[i], found)
            pos = self.hi
        return found

    def within(self, a: int, b: int) -> list[int]:
        """Every candidate in [a, b), sorted (a at a line boundary or a `;`, at or after the last query)."""
        out: list[int] = []
        lo = a
        while lo < b:
            if not self.lo <= lo < self.hi:
                self._fill(lo)
            buf = self.buf
            out += buf[bisect_left(buf, lo) : bisect_left(buf, b)]
            lo = self.hi
        if self.strings is not None:
            opened = []
            s = self._open_string(a if self.low[a - 1 : a] in ("", "\n") else self.low.rfind("\n", 0, a) + 1)
            while s < b:
                if s >= a:
                    opened.append(s)
                s = self._open_string(self.open_end)
            if opened:
                out = sorted(out + opened)
        return out


def candidates(text: str) -> list[int]:
    """Sorted offsets (one or more per candidate line) of everything the rewriter must look at."""
    return Candidates(text).within(0, len(text))


def may_have_sites(text: str) -> bool:
    """Cheap pre-check: False means the text has no port-I/O site (it may be passed through unchanged)."""
    low = _lower(text)
    at_start, after = _word_patterns(True)
    return at_start.match(low) is not None or any(lit in low and rx.search(low) for lit, rx in after)
