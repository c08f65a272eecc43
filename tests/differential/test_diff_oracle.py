"""The differential oracle: original vs rewritten code under unicorn, with the direct runtime linked in."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
import pvio_gen as G  # noqa: E402
import pvio_oracle as O  # noqa: E402

from pvgen.asm.sites import THUNK_PREFIX  # noqa: E402
from pvgen.rewrite import rewrite_text  # noqa: E402

# PVGEN_HYPOTHESIS_PROFILE=long (make test-long): 5000 + 5000 + 1000 + 500 rewriter cases (64/32/16-bit/.code16gcc)
# and 500 + 500 + 200 hand-rewritten ones = 12 700 sequences.  The default profile runs 440.
PROFILE = os.environ.get("PVGEN_HYPOTHESIS_PROFILE", "default")
LONG = PROFILE == "long"
EXAMPLES = {64: 5000, 32: 5000, 16: 1000, "16gcc": 500} if LONG else {64: 150, 32: 150, 16: 60, "16gcc": 20}
HAND_EXAMPLES = {64: 500, 32: 500, 16: 200} if LONG else {64: 25, 32: 25, 16: 10}
BITS = [64, 32, 16]

# Initial flags: IF plus nothing / DF / all arithmetic flags / all arithmetic flags and DF.
FLAGS = st.sampled_from([0x202, 0x602, 0x2D7 | 0x200, 0xAD7 | 0x200, 0x8D5 | 0x200])


def _settings(n: int):
    return settings(max_examples=n, deadline=None, derandomize=PROFILE != "long",
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _check(bits: int, lines, seed: int, eflags: int, via_rewriter: bool, gcc16: bool = False) -> None:
    mode = O.MODE16GCC if gcc16 else O.MODES[bits]
    original = G.render(lines, bits, rewrite=False)
    if via_rewriter:
        result = rewrite_text(f"{mode.directive or f'.code{bits}'}\n{original}", mode="16gcc" if gcc16 else bits)
        expected = [s.thunk.replace("__pvio_", THUNK_PREFIX[mode.code_mode]) for _, s in lines if s]
        got = [s.thunk for s in result.sites if s.rewritten]
        assert got == expected, f"rewriter chose other thunks:\n{original}\n{result.sites}"
        rewritten = result.text.split("\n", 1)[1]
    else:
        rewritten = G.render(lines, bits, rewrite=True)
    diff = O.compare(mode, original, rewritten, O.Machine.make(mode, seed, eflags=eflags))
    assert not diff, "\n".join(["original:", original, "rewritten:", rewritten, "differences:", *diff])


@pytest.mark.parametrize("bits", BITS)
def test_rewriter_output_behaves_like_original(bits: int) -> None:
    @_settings(EXAMPLES[bits])
    @given(lines=G.sequence(bits), seed=st.integers(0, 2**32 - 1), eflags=FLAGS)
    def run(lines, seed, eflags):
        _check(bits, lines, seed, eflags, via_rewriter=True)

    run()


def test_rewriter_output_behaves_like_original_code16gcc() -> None:
    @_settings(EXAMPLES["16gcc"])
    @given(lines=G.sequence(16), seed=st.integers(0, 2**32 - 1), eflags=FLAGS)
    def run(lines, seed, eflags):
        _check(16, lines, seed, eflags, via_rewriter=True, gcc16=True)

    run()


@pytest.mark.parametrize("bits", BITS)
def test_abi_call_sequence_behaves_like_original(bits: int) -> None:
    """The runtime alone, against docs/thunk-abi.md's call sequence (independent of the rewriter)."""

    @_settings(HAND_EXAMPLES[bits])
    @given(lines=G.sequence(bits), seed=st.integers(0, 2**32 - 1), eflags=FLAGS)
    def run(lines, seed, eflags):
        _check(bits, lines, seed, eflags, via_rewriter=False)

    run()


def _site(text: str, bits: int) -> G.Line:
    s = next(x for x in G.site_spellings(bits) if x.text == text.replace("$0x80", "$PORT"))
    if s.port_form == "imm":
        s = G.Site(text, s.kind, s.width, s.port_form, s.rep, 0x80)
    return (text, s)


# A sequence that exercises every kind of thunk, DF both ways, a zero count, flags kept across sites.
def _workout(bits: int) -> list[G.Line]:
    cx, ax = ("%rcx", "%rax") if bits == 64 else ("%ecx", "%eax")
    # 16-bit: set only %cx, so the upper half of %ecx (random) must survive the rep thunks.
    count = (lambda n: (f"mov ${n},%cx", None)) if bits == 16 else (lambda n: (f"movl ${n},%ecx", None))
    return [("mov $0x1f0,%dx", None), ("cmpl $1,%eax", None), _site("inb %dx,%al", bits),
            ("pushf", None), (f"push {ax}", None),             # flags and the rest of %rax kept across inb
            _site("inw $0x80,%ax", bits), _site("outl %eax,%dx", bits), _site("outb %al,$0x80", bits),
            count(3), _site("rep insw", bits),
            (f"push {cx}", None),                              # %rcx is 0 after rep
            ("std", None), count(2), _site("rep outsb", bits), _site("insl", bits),
            count(0), _site("rep insb", bits), ("cld", None), ("stc", None), _site("outsw", bits),
            ("pushf", None),                                   # CF kept across outsw
            _site("inl %dx,%eax", bits), _site("hlt", bits), ("adc $0,%eax", None)]


# Each mutation breaks one promise of the thunks; the oracle must notice every one.
MUTATIONS = {
    64: [("\tpopfq\n\tPVIO_RET\n\tint3\n1:", "\taddq $8, %rsp\n\tPVIO_RET\n\tint3\n1:"),   # flags lost (STR1)
         ("\tmovl %eax, %eax\n", "\tmovl %eax, %eax\n\txorl %ebx, %ebx\n"),          # clobbers %rbx (inl)
         ("\tsubq $\\size, %rdx\n", "\taddq $\\size, %rdx\n"),                          # DF=1 goes up
         ("\txorl %ecx, %ecx\n", ""),                                                     # rep leaves %rcx
         ("\t\\mov \\acc, (%rsp)\n", "\tmovw %ax, (%rsp)\n"),                               # inb writes %ah
         ("\tlea", "\tlea"),                                                             # (control: no change)
         ('"movzbl 40(%rsp), %edi", "movzbl %al, %edx", EPI_RET',                       # outb_imm pops the port
          '"movzbl 40(%rsp), %edi", "movzbl %al, %edx", "popq %rdi; popfq; ret $8"')],
    32: [("\tpopfl\n\tPVIO_RET\n\tint3\n1:", "\taddl $4, %esp\n\tPVIO_RET\n\tint3\n1:"),
         ("\tcall pvio_in\n\t\\epi", "\tcall pvio_in\n\txorl %ebx, %ebx\n\t\\epi"),
         ("\tsubl $\\size, \\ptr\n", "\taddl $\\size, \\ptr\n"),
         ("\txorl %ecx, %ecx\n", ""),
         ("\t\\mov \\acc, (%esp)\n", "\tmovw %ax, (%esp)\n"),
         ("\tpushl", "\tpushl"),
         ('"movzbl 20(%esp), %eax", "movzbl %al, %ecx", EPI_RET',
          '"movzbl 20(%esp), %eax", "movzbl %al, %ecx", "popl %edx; popfl; ret $4"')],
    # 16-bit string thunks are those of thunks_strx32.h (exact segments and wrap): (file, old, new)
    16: [("thunks_strx32.h", "\tpopfl\n\tpopl %eax\n", "\taddl $4, %esp\n\tpopl %eax\n"),
         ("\tBACKEND_CALL pvio_in\n\t\\epi", "\tBACKEND_CALL pvio_in\n\txorl %ebx, %ebx\n\t\\epi"),
         ("thunks_strx32.h", "\tnegl XS_STEP(%esp)\n", ""),
         ("thunks_strx32.h", "\tmovw $0, XF_ECX(%esp)", "\tmovl $0, XF_ECX(%esp)"),  # clears all of %ecx
         ("\t\\mov \\acc, (%esp)\n", "\tmovw %ax, (%esp)\n"),
         ("\tpushl", "\tpushl"),
         ('"movzbl 20(%esp), %eax", "movzbl %al, %ecx", EPI_RET',
          '"movzbl 20(%esp), %eax", "movzbl %al, %ecx", "popl %edx; popfl; retl $4"')],
}


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("k", range(7))
def test_oracle_catches_broken_thunks(bits: int, k: int, tmp_path: Path) -> None:
    m = MUTATIONS[bits][k]
    name, old, new = m if len(m) == 3 else (O.THUNKS[bits], *m)
    for f in [O.THUNKS[bits], *(h.name for h in O.RUNTIME.glob("thunks_strx*.h"))]:
        shutil.copyfile(O.RUNTIME / f, tmp_path / f)  # `#include "..."` looks beside the including file first
    src = (tmp_path / name).read_text()
    assert old in src, f"mutation {k} no longer applies to {name}"
    (tmp_path / name).write_text(src.replace(old, new))
    runtime = O.build_runtime(O.MODES[bits], tmp_path / O.THUNKS[bits])
    lines = _workout(bits)
    mode = O.MODES[bits]
    diff = O.compare(mode, G.render(lines, bits, False), G.render(lines, bits, True), O.Machine.make(mode, 7),
                     runtime)
    if old == new:
        assert diff == []
    else:
        assert diff, f"mutation {k} went unnoticed"


@pytest.mark.parametrize("bits", BITS)
def test_workout_trace_is_complete(bits: int) -> None:
    """The oracle really sees string I/O, both DF directions and hlt (unicorn reports ins/outs per element)."""
    mode = O.MODES[bits]
    lines = _workout(bits)
    img = O.link_pair(mode, G.render(lines, bits, False), G.render(lines, bits, True))
    m = O.Machine.make(mode, 7, regs={"rax" if bits == 64 else "eax": 5})
    a = O.run(mode, img, img.symbols["orig_start"], img.symbols["orig_end"], m)
    b = O.run(mode, img, img.symbols["rw_start"], img.symbols["rw_end"], m)
    kinds = [e[0] for e in a.trace]
    # inb, inw, outl, outb, 3 x insw, 2 x outsb, insl, (rep insb with %ecx = 0: nothing), outsw, inl, hlt
    assert kinds == ["in", "in", "out", "out", "in", "in", "in", "out", "out", "in", "out", "in", "hlt"]
    assert [e[:3] for e in a.trace[4:7]] == [("in", 0x1F0, 2)] * 3
    assert O.differences(a, b, img.symbols["orig_end"], img.symbols["rw_end"]) == []
