"""LineMap finds its lines through literal hints; the result equals running the anchored expressions everywhere."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pvgen.asm import linemap
from pvgen.asm.linemap import LineMap

LINES = ['# 9 "x86.h" 1', '# 0 "" 2', '#APP', '#NO_APP', '\t.file\t"t.c"', '\t.file 1 "dir" "a.c"',
         '\t.file 2 "b.h"', '\t.loc 1 12 3', '  .loc 2 7', '\t.linefile 40 "c.S"', '.linefile 3 "d.s"',
         '\tinb %dx, %al # .loc 1 99', '\tmovl $1, %eax', '  # 5 "e.h" 1', 'x: .loc 1 3', '\t.local sym',
         '\t.loc_mark_labels 1', '#define X', '\t.file 3 "q\\"x.h"', '']


def reference(text: str, path: str) -> LineMap:
    """LineMap.of with the three expressions run over the whole text (the definition of the events)."""
    found = []
    for kind, rx in (("mark", linemap._MARKER), ("file", linemap._FILE), ("loc", linemap._LOC)):
        found.extend((m.start(), kind, m) for m in rx.finditer(text))
    orig = linemap._line_starts
    try:
        linemap._line_starts = lambda t: sorted({s for s, _, _ in found})
        return LineMap.of(text, path)
    finally:
        linemap._line_starts = orig


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(LINES), max_size=30))
def test_hinted_search_equals_the_anchored_expressions(lines):
    text = "\n".join(lines) + "\n"
    fast, ref = LineMap.of(text, "t.s"), reference(text, "t.s")
    assert [fast.locate(n) for n in range(1, len(lines) + 2)] == [ref.locate(n) for n in range(1, len(lines) + 2)]
