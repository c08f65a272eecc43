"""The fast path: find the few lines the rewriter must look at with literal-prefixed regexes, compiled lazily."""

from __future__ import annotations

import re
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
def _other_patterns() -> dict[str, re.Pattern]:
    return {
        "comment": re.compile(r"/\*"),
        "special_att": re.compile(r"%(?:cr|dr|db)[0-9]"),
        "special_intel": re.compile(r"[ \t,](?:cr|dr|db)[0-9]"),
    }


def _lower(text: str) -> str:
    """Lower-case ASCII letters; every other character becomes `?`, so offsets stay those of `text`."""
    if text.isascii():
        return text.lower()
    return text.encode("ascii", errors="replace").lower().decode("ascii")


def candidates(text: str) -> list[int]:
    """Sorted offsets (one or more per candidate line) of everything the rewriter must look at."""
    low = _lower(text)
    at_start, after = _word_patterns(False)
    other = _other_patterns()
    pos: list[int] = [0] if at_start.match(low) else []
    extra: list[int] = []
    for lit, rx in after:
        if lit == "\n":
            pos.extend(m.start() + 1 for m in rx.finditer(low))
        elif lit in low:
            extra.extend(m.start() for m in rx.finditer(low))
    if "/*" in low:
        extra.extend(m.start() for m in other["comment"].finditer(low))
    if "%cr" in low or "%dr" in low or "%db" in low:
        extra.extend(m.start() for m in other["special_att"].finditer(low))
    if ".intel_syntax" in low:
        extra.extend(m.start() for m in other["special_intel"].finditer(low))
    if extra:
        pos.extend(extra)
        pos.sort()
    return pos


def may_have_sites(text: str) -> bool:
    """Cheap pre-check: False means the text has no port-I/O site (it may be passed through unchanged)."""
    low = _lower(text)
    at_start, after = _word_patterns(True)
    return at_start.match(low) is not None or any(lit in low and rx.search(low) for lit, rx in after)
