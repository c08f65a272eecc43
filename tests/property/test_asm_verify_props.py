"""Hypothesis: random mixes of every site form with ordinary code rewrite and pass `pvgen verify` (real as).

25 examples per code size (64, 32, 16) by default; PVGEN_HYPOTHESIS_PROFILE=long runs 500.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvgen.rewrite.verify import verify_text

pytestmark = pytest.mark.usefixtures("gnu_as")   # tests/conftest.py: a failure on CI, a skip elsewhere

LONG = os.environ.get("PVGEN_HYPOTHESIS_PROFILE") == "long"
PROFILE = settings(max_examples=500 if LONG else 25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SITES = {
    64: ["inb $0x60,%al", "inw $0xf0,%ax", "inl $0xfc,%eax", "inb %dx,%al", "in (%dx),%ax", "inl %dx", "outb %al,$0x80",
         "outw %ax,%dx", "outl %eax,(%dx)", "out %al,$0xf0", "insb", "insw (%dx),%es:(%rdi)", "outsl", "rep insw",
         "rep; outsb", "repz insl", "rep outsw %ds:(%rsi),(%dx)", "hlt", "data16 inl %dx,%eax", "addr32 insb",
         "rep insw (%dx),%es:(%edi)", "outsb %fs:(%rsi),(%dx)", "gs rep outsl", "addr32 fs outsw",
         "rep outsb %gs:(%esi),(%dx)"],
    32: ["inb $0x60,%al", "inw %dx,%ax", "outl %eax,%dx", "outb %al,$0x80", "insb (%dx),%es:(%edi)", "rep insl",
         "rep outsw", "outsb", "hlt", "addr16 outsb",
         "addr16 rep insw", "rep outsl %es:(%esi),(%dx)", "fs outsb", "outsw %ss:(%si),(%dx)", "cs rep outsb"],
    16: ["inb $0x60,%al", "outw %ax,%dx", "inl %dx,%eax", "rep insw", "outsb", "hlt", "insb (%dx),%es:(%di)",
         "rep outsl", "rep insw (%dx),%es:(%edi)", "rep outsw %es:(%esi),(%dx)", "addr32 outsb", "gs rep outsl",
         "outsw %fs:(%si),(%dx)"],
}
PLAIN = {
    64: ["movl $1, %eax", "addq $8, %rsp", "subq $8, %rsp", "pushq %rbx", "popq %rbx", "leaq 16(%rsp), %rdi",
         "testb $1, %al", "cmpl $7, %ecx", "jne 1f", "jmp 1f", "1:", "call ext", "movq gvar(%rip), %rax",
         "leaq .Ltab(%rip), %rsi", "rep movsb", ".p2align 4", "xorl %edx, %edx"],
    32: ["movl $1, %eax", "addl $8, %esp", "pushl %ebx", "popl %ebx", "jne 1f", "1:", "call ext", "movl gvar, %eax",
         "rep stosl", ".p2align 4", "xorl %edx, %edx"],
    16: ["movw $1, %ax", "pushw %bx", "popw %bx", "jne 1f", "1:", "call ext", "xorw %dx, %dx", "addw $2, %si"],
}


def program(bits: int):
    line = st.one_of(st.sampled_from(SITES[bits]), st.sampled_from(PLAIN[bits]))
    return st.lists(line, min_size=1, max_size=25)


@pytest.mark.parametrize("bits", [64, 32, 16])
def test_random_programs_verify(bits: int) -> None:
    @PROFILE
    @given(program(bits))
    def run(lines: list[str]) -> None:
        head = {64: "", 32: "\t.code32\n", 16: "\t.code16gcc\n"}[bits]
        body = "".join(f"\t{ln}\n" if not ln.endswith(":") else f"{ln}\n" for ln in lines)
        src = (f"{head}\t.text\n\t.globl f\nf:\n{body}1:\tret\n\t.size f, .-f\n"
               f"\t.section .rodata\n.Ltab:\t.long 1b - .Ltab\n\t{'.quad' if bits == 64 else '.long'} f, 1b\n")
        report, result = verify_text(src, "gen.s", bits)
        io = [s for s in result.sites if s.kind != "report-only"]
        assert report.replaced_total == sum(s.rewritten for s in io)
        assert report.kept_io == sum(not s.rewritten for s in io)

    run()


# String I/O with either address size and any source segment, spelled with operands or with prefix words: the
# rewriter (from the text) and verify (from capstone's decoding of the object) must name the same thunk.
OWN_ASIZE = {64: 64, 32: 32, 16: 16}
OTHER_ASIZE = {64: 32, 32: 16, 16: 32}
INDEX = {64: ("rdi", "rsi"), 32: ("edi", "esi"), 16: ("di", "si")}


@st.composite
def string_form(draw, bits: int) -> str:
    op, w = draw(st.sampled_from(["ins", "outs"])), draw(st.sampled_from("bwl"))
    asize = draw(st.sampled_from([OWN_ASIZE[bits], OTHER_ASIZE[bits]]))
    segs = ["fs", "gs"] if bits == 64 else ["ds", "es", "cs", "ss", "fs", "gs"]
    seg = draw(st.one_of(st.none(), st.sampled_from(segs))) if op == "outs" else None
    rep = draw(st.sampled_from(["", "rep ", "repz "]))
    if draw(st.booleans()):  # operands
        di, si = INDEX[asize]
        ops = f"(%dx),%es:(%{di})" if op == "ins" else f"{f'%{seg}:' if seg else ''}(%{si}),(%dx)"
        return f"{rep}{op}{w} {ops}"
    words = ([f"addr{asize}"] if asize != OWN_ASIZE[bits] else []) + ([seg] if seg else [])
    return " ".join([*words, f"{rep}{op}{w}"])


@pytest.mark.parametrize("bits", [64, 32, 16])
def test_string_forms_name_the_thunk_verify_expects(bits: int) -> None:
    @PROFILE
    @given(st.lists(string_form(bits), min_size=1, max_size=8))
    def run(lines: list[str]) -> None:
        src = f"\t.code{bits}\n\t.text\nf:\n" + "".join(f"\t{ln}\n" for ln in lines) + "\tret\n"
        report, result = verify_text(src, "str.s", bits)
        assert all(s.rewritten for s in result.sites), result.sites
        assert report.replaced_total == len(lines) and set(report.replaced) == {s.thunk for s in result.sites}

    run()
