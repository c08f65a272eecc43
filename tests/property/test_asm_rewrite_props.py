"""Hypothesis properties of the rewriter: non-site lines byte-identical, idempotence, operand parsing.

Examples per test: 100 by default; PVGEN_HYPOTHESIS_PROFILE=long runs 5000.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pvgen.asm.operands import OperandSyntaxError, parse_operands
from pvgen.errors import AsmSyntaxError
from pvgen.rewrite import may_have_sites, rewrite_text

LONG = os.environ.get("PVGEN_HYPOTHESIS_PROFILE") == "long"
PROFILE = settings(max_examples=5000 if LONG else 100, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])

PLAIN = [
    "\tmovl\t%edi, -20(%rbp)", "\taddl\t$1, %eax", "\tjle\t.L3", ".L3:", "\t.cfi_startproc", "\tret",
    "\t.section\t.rodata.str1.1,\"aMS\",@progbits,1", ".LC0:", "\t.string\t\"in out; hlt # x\"",
    "#APP", "# 12 \"drv.c\" 1", "#NO_APP", "\tleaq\tinb_table(%rip), %rax", "\tcall\toutb_helper",
    "\trep stosq", "\tlock xaddl %eax, (%rdx)", "\t.p2align 4,,10", "", "   ", "\tnop # in %dx,%al",
    "\t.globl\tin", "\tmovzbl\t(%rdi), %eax\t# *p_2(D), tmp", "\t.byte 0xec", "\tcmpb $';', %al",
    "\tjmp 1f", "1:", "\tpushq %rbp; movq %rsp, %rbp",
]
SITES = [
    "\tinb\t%dx, %al", "\toutb\t%al, $128", "\toutw %ax,(%dx)", "\tin $0x60,%eax", "\trep; insl",
    "\trep outsw", "\thlt", "foo:\tinb %dx", "\tinsb (%dx),%es:(%rdi)", "\tmovl $1,%eax; outb %al,%dx",
    "\toutsb\t# tx", "\tcli", "\tmovq %cr3,%rax",
]
JUNK = st.text(alphabet=st.sampled_from(list("abcdefxyz0123456789 \t.,:;$%()#/*\"'_-+é")), max_size=30)
LINES = st.lists(st.one_of(st.sampled_from(PLAIN), st.sampled_from(SITES), JUNK), max_size=40)


def _rewrite(lines: list[str]):
    src = "\n".join(lines) + "\n"
    try:
        return src, rewrite_text(src, "gen.s")
    except AsmSyntaxError:
        assume(False)
        raise


@PROFILE
@given(LINES)
def test_lines_without_site_are_byte_identical(lines: list[str]) -> None:
    src, r = _rewrite(lines)
    site_lines = {s.asm_line for s in r.sites if s.rewritten}
    out_lines = r.text.split("\n")
    in_lines = src.split("\n")
    assert len(out_lines) == len(in_lines)
    for no, (a, b) in enumerate(zip(in_lines, out_lines), start=1):
        if no not in site_lines:
            assert a == b, f"line {no} changed: {a!r} -> {b!r}"


@PROFILE
@given(LINES)
def test_rewrite_is_idempotent(lines: list[str]) -> None:
    _, r1 = _rewrite(lines)
    r2 = rewrite_text(r1.text, "gen.s")
    assert r2.text == r1.text
    assert not any(s.rewritten for s in r2.sites)


@PROFILE
@given(LINES)
def test_may_have_sites_is_conservative(lines: list[str]) -> None:
    src, r = _rewrite(lines)
    if any(s.rewritten for s in r.sites):
        assert may_have_sites(src)


REGS = ["%al", "%ax", "%eax", "%rax", "%dx", "%rdi", "%r8d", "%es", "%cr0"]
EXPR = st.one_of(st.integers(-(2**31), 2**32).map(str), st.integers(0, 0xFFFF).map(hex),
                 st.sampled_from(["foo", ".L3", "1f", "sym+8", "(a-b)*4", "\\port", "'a"]))


@st.composite
def att_operand(draw) -> tuple[str, str]:
    kind = draw(st.sampled_from(["reg", "imm", "mem", "absmem"]))
    if kind == "reg":
        return draw(st.sampled_from(REGS)), "reg"
    if kind == "imm":
        return "$" + draw(EXPR), "imm"
    if kind == "absmem":
        e = draw(EXPR)
        return e, "macro" if e == "\\port" else "mem"
    base = draw(st.sampled_from(["", "%rax", "%rbp", "%dx", "%edi"]))
    index = draw(st.sampled_from(["", ",%rcx", ",%rcx,4", ",,8"]))
    disp = draw(st.one_of(st.just(""), EXPR.filter(lambda e: not e.startswith("("))))
    seg = draw(st.sampled_from(["", "%es:", "%fs:"]))
    assume(base or index)
    return f"{seg}{disp}({base}{index})", "mem"


@PROFILE
@given(st.lists(att_operand(), max_size=3), st.sampled_from([",", ", ", " , "]))
def test_att_operands_parse_to_their_shape(ops: list[tuple[str, str]], sep: str) -> None:
    text = sep.join(o for o, _ in ops)
    parsed = parse_operands(text, "att")
    assert [p.kind for p in parsed] == [k for _, k in ops]
    assert [p.text for p in parsed] == [o.strip() for o, _ in ops]


@PROFILE
@given(st.text(max_size=40))
def test_operand_parser_never_crashes(text: str) -> None:
    for syntax in ("att", "intel"):
        try:
            parse_operands(text, syntax)
        except OperandSyntaxError:
            pass


@PROFILE
@given(st.lists(st.sampled_from(PLAIN + SITES), max_size=30), st.data())
def test_statement_random_mix_sites_count(lines: list[str], data) -> None:
    src, r = _rewrite(lines)
    want = sum(1 for ln in lines if ln in SITES and "cli" not in ln and "%cr3" not in ln)
    assert sum(s.rewritten for s in r.sites) == want
