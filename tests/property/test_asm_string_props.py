"""Hypothesis: what GNU as reads as a string or a comment is never rewritten (strings run across lines to the
next `"` as `as` reads them), checked against a reference lexer written character by character."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pvgen.errors import AsmSyntaxError
from pvgen.rewrite import rewrite_text

LONG = os.environ.get("PVGEN_HYPOTHESIS_PROFILE") == "long"
PROFILE = settings(max_examples=5000 if LONG else 150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FRAGMENTS = ["inb %dx,%al", "outb %al,$0x80", "rep insw", "rep", "hlt", "nop", ".ascii \"open", "closes\" ;",
             ".ascii \"a;b\"", "\"", "\\\"", "'\"", "# c \"", "/* \"", "*/", ";", "x:", "1:", "cli", ".byte 'a"]
LINES = st.lists(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=4).map(" ; ".join), max_size=16)


def code_mask(text: str) -> list[bool]:
    """True for each character GNU as reads as code (not in a string, a comment or a character constant)."""
    mask = [True] * len(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            end = min(j + 1, n)
        elif c == "'":
            end = min(i + (3 if text.startswith("\\", i + 1) else 2), n)
        elif c == "#":
            end = text.find("\n", i)
            end = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
        else:
            i += 1
            continue
        for k in range(i, end):
            mask[k] = False
        i = end
    return mask


@PROFILE
@given(LINES)
def test_only_code_is_rewritten(lines: list[str]) -> None:
    src = "\n".join(lines) + "\n"
    try:
        out = rewrite_text(src, "s.s").text
    except AsmSyntaxError:
        assume(False)
        raise
    mask, offset = code_mask(src), 0
    for a, b in zip(src.split("\n"), out.split("\n")):
        if a != b:
            p = next(k for k in range(min(len(a), len(b))) if a[k] != b[k]) if a[: len(b)] != b[: len(a)] else \
                min(len(a), len(b))
            s = 0
            while s < min(len(a), len(b)) - p and a[len(a) - 1 - s] == b[len(b) - 1 - s]:
                s += 1
            assert mask[offset + p] and mask[offset + len(a) - 1 - s], f"rewrote non-code in line {a!r} -> {b!r}"
        offset += len(a) + 1
