"""pvgen-as's pre-filter never hides a site from the rewriter, and keeps gcc's recorded switches off the slow path."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from pvgen.asm.table import PREFIXES
from pvgen.errors import PvgenError
from pvgen.rewrite import rewrite_text
from pvgen.toolchain.gas import _CANDIDATE

EXAMPLES = 5000 if os.environ.get("PVGEN_HYPOTHESIS_PROFILE") == "long" else 150

SITES = ["inb %dx, %al", "inw %dx,%ax", "inl $0x60,%eax", "in %dx,%al", "inb (%dx),%al", "outb %al, %dx",
         "outw %ax,$0x80", "out %eax,%dx", "outb %al,(%dx)", "insb", "insw", "insl", "outsb", "outsw", "outsl",
         "insw (%dx),%es:(%rdi)", "hlt"]
OTHERS = ["movl $1, %eax", "nop", ".byte 0xec", "call in_x", "addl $in, %eax", "incl %eax", "pushfq"]


def filter_matches(text: str) -> bool:
    return _CANDIDATE.search(text.encode()) is not None


@st.composite
def lines(draw) -> str:
    label = draw(st.sampled_from(["", "1:", "foo:", ".Lx: ", "a: b:"]))
    comment = draw(st.sampled_from(["", "/* c */ ", "/* x */"]))
    pfx = draw(st.lists(st.sampled_from(sorted(PREFIXES)), max_size=2))
    seps = [draw(st.sampled_from([" ", "\t", "; ", ";", " ; "])) for _ in pfx]
    site = draw(st.sampled_from(SITES))
    if draw(st.booleans()):
        site = site.upper() if draw(st.booleans()) else site.capitalize()
    before = draw(st.lists(st.sampled_from(OTHERS), max_size=2))
    lead = draw(st.sampled_from(["", "\t", "  "]))
    stmt = "".join(p + s for p, s in zip(pfx, seps)) + site
    return lead + label + comment + "; ".join([*before, stmt])


@settings(max_examples=EXAMPLES, deadline=None)
@given(lines())
def test_every_line_with_a_site_passes_the_filter(line):
    text = "\t.text\n" + line + "\n"
    try:
        result = rewrite_text(text, "gen.s")
    except PvgenError:
        return  # malformed combinations (a prefix the instruction does not take) are not sites
    if any(s.kind != "report-only" for s in result.sites):  # rewritten, or kept with a reason
        assert filter_matches(text), line


def test_gcc_recorded_switches_and_strings_are_not_candidates():
    for text in ['\t.ascii\t"vx -m64 -mno-80387 -mno-fp-ret-in-387 -mpreferred-stack-boun"\n',
                 '\t.string "failed in probe"\n', "\tcall in_x\n", "\tmovl $in, %eax\n", "init:\n", "\tnop # hlt\n",
                 "\tinbx %al\n", "\tincl %eax\n"]:
        assert not filter_matches(text), text
    for text in ["\tinb %dx,%al\n", "foo: rep; insw\n", "/* x */ outb %al,%dx\n", "\tlock\n\tHLT\n", "1:in al, dx\n"]:
        assert filter_matches(text), text
