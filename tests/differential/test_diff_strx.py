"""The differential oracle on string I/O with the other address size or a segment override (thunks_strx*.h):
original vs rewritten under unicorn, over counts, DF, segment bases, address sizes and 16-bit wrap-around."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
import pvio_oracle as O  # noqa: E402

from pvgen.rewrite import rewrite_text  # noqa: E402

PROFILE = os.environ.get("PVGEN_HYPOTHESIS_PROFILE", "default")
EXAMPLES = 2000 if PROFILE == "long" else 150
MODES = {64: replace(O.MODE64, layout=O.FLATX), 32: replace(O.MODE32, layout=O.FLATX),
         16: replace(O.MODE16, layout=O.LOWX)}
OWN = {64: 64, 32: 32, 16: 16}                      # the address size of each code size
OTHER = {64: 32, 32: 16, 16: 32}                    # the one an addr32/addr16 prefix selects
SEGS = {64: ("fs", "gs"), 32: ("es", "cs", "ss", "fs", "gs"), 16: ("es", "cs", "ss", "fs", "gs")}
REGS = {64: ("rdi", "rsi", "rcx"), 32: ("edi", "esi", "ecx"), 16: ("di", "si", "cx")}
PREFIX = {64: "__pvio_", 32: "__pvio32_", 16: "__pvio16_"}
WIDTH = {"b": 1, "w": 2, "l": 4}


@dataclass(frozen=True)
class Form:
    op: str          # ins | outs
    asize: int
    seg: str | None  # the source segment of outs (None: DS); ins always writes to ES

    def thunk(self, bits: int, w: str, rep: bool) -> str:
        tail = ("" if self.asize == OWN[bits] else f"_a{self.asize}") + (f"_{self.seg}" if self.seg else "")
        return f"{PREFIX[bits]}{'rep_' if rep else ''}{self.op}{w}{tail}"

    def spell(self, bits: int, w: str, rep: bool, explicit: bool) -> str:
        """As written: with operands (`rep outsw %es:(%esi),(%dx)`) or with prefix words (`addr32 es rep outsw`)."""
        di, si, _ = REGS[self.asize]
        r = "rep " if rep else ""
        if explicit:
            if self.op == "ins":
                return f"{r}ins{w} (%dx),%es:(%{di})"
            return f"{r}outs{w} {f'%{self.seg}:' if self.seg else ''}(%{si}),(%dx)"
        words = ([f"addr{self.asize}"] if self.asize != OWN[bits] else []) + ([self.seg] if self.seg else [])
        return " ".join([*words, f"{r}{self.op}{w}"])


def forms(bits: int) -> list[Form]:
    out = [Form("ins", OTHER[bits], None), Form("outs", OTHER[bits], None)]
    for seg in SEGS[bits]:
        out += [Form("outs", OTHER[bits], seg), Form("outs", OWN[bits], seg)]
    return out


def _segment_base(draw, bits: int, seg: str | None) -> int:
    """A base for ES/FS/GS inside the test data (CS and SS stay 0: the runtime's code and stack)."""
    if seg not in ("es", "fs", "gs") or (bits == 64 and seg == "es"):
        return 0
    if bits == 16:
        return 0x10000 + 16 * draw(st.integers(0, 0x1000))
    return draw(st.one_of(st.just(0), st.integers(0, 0xFFFF)))


def _offset(draw, bits: int, asize: int, base: int, span: int, upper) -> int:
    """An offset such that base + offset +- span stays in mapped data; 16-bit offsets often near the wrap."""
    if asize == 16 and (bits != 16 or base >= 0x10000):
        low = draw(st.one_of(st.integers(0, 0xFFFF), st.integers(0xFFF0, 0xFFFF), st.integers(0, 0x10)))
        return upper | low
    if asize == 16:  # real mode, base 0 (DS, SS, CS): read the code and stack below 64 KiB, no wrap
        return upper | draw(st.integers(0x1000 + span, 0xF000 - span))
    if bits == 16 and base == 0:
        return draw(st.integers(0x10000 + span, 0x3F000 - span))
    off = draw(st.integers(span, 0x10000 - span if base else 0x1F000 - span))
    return off | (upper if bits == 64 else 0)


@st.composite
def case(draw, bits: int):
    """One or two sites of one form (the second continues where the first left the registers), and the state."""
    form = draw(st.sampled_from(forms(bits)))
    sites = [(draw(st.sampled_from("bwl")), draw(st.booleans()), draw(st.booleans()))
             for _ in range(draw(st.integers(1, 2)))]
    counts = [draw(st.one_of(st.integers(0, 5), st.integers(120, 300))) for _ in sites]
    # 16-bit code keeps the upper halves of ESI/EDI/ECX; 64-bit code with 32-bit addressing clears them
    upper16 = (lambda: draw(st.integers(0, 0xFFFF)) << 16) if bits != 64 else (lambda: 0)
    upper64 = draw(st.integers(0, 2**32 - 1)) << 32 if bits == 64 and form.asize == 32 else 0
    seg = "es" if form.op == "ins" else form.seg
    base = _segment_base(draw, bits, seg)
    span = sum(c * WIDTH[w] for c, (w, rep, _) in zip(counts, sites)) + 8
    di, si, cx = REGS[OWN[bits]] if bits != 16 else ("edi", "esi", "ecx")
    ptr = _offset(draw, bits, form.asize, base, span, upper16() if form.asize == 16 else upper64)
    regs = {di if form.op == "ins" else si: ptr}
    # one count register value for both sites: a rep site uses (and clears) it, so the second uses what is left
    regs[cx] = (upper16() if form.asize == 16 else upper64) | counts[0]
    # DS, when the form does not read through it, gets a base of its own: the back end's DS = SS is the thunk's doing
    ds = _segment_base(draw, bits, "es") if seg is not None else 0
    segs = {"ds": ds, **({seg: base} if base else {})}  # DS: real descriptors in 32-bit mode
    return form, sites, regs, segs


def _check(bits: int, form: Form, sites, regs, segs, seed: int, eflags: int, runtime=None, mode=None) -> None:
    mode = mode or MODES[bits]
    directive = mode.directive or f".code{bits}"  # .code16gcc: rewritten as .code16, assembled as written
    original = "\n".join("\t" + form.spell(bits, w, rep, explicit) for w, rep, explicit in sites)
    result = rewrite_text(f"{directive}\n{original}\n", mode=directive[1:])
    assert [s.thunk for s in result.sites] == [form.thunk(bits, w, rep) for w, rep, _ in sites], result.sites
    rewritten = result.text.split("\n", 1)[1]
    m = O.Machine.make(mode, seed, regs=regs, eflags=eflags, segs=segs)
    diff = O.compare(mode, original, rewritten, m, runtime)
    assert not diff, "\n".join(["original:", original, "rewritten:", rewritten, f"regs {regs} segs {segs}",
                                "differences:", *diff])


@pytest.mark.parametrize("bits", [64, 32, 16])
def test_strx_rewrite_behaves_like_original(bits: int) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=PROFILE != "long",
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(c=case(bits), seed=st.integers(0, 2**32 - 1), eflags=st.sampled_from([0x202, 0x602, 0xAD7 | 0x200]))
    def run(c, seed, eflags):
        _check(bits, *c, seed, eflags)

    run()


# Each mutation breaks one promise of the new thunks (segment, address size, direction, count); the oracle must
# notice. (bits, form, site, registers, segment bases, flags)
MUTATIONS = [
    ("thunks_strx32.h", "\tmov %\\seg:(\\ptr), \\acc", "\tmov (\\ptr), \\acc",              # segment ignored
     32, Form("outs", 32, "fs"), [("w", True, True)], {"esi": 0x100, "ecx": 3}, {"fs": 0x4000}, 0x202),
    ("thunks_strx32.h", "\tmovw $0, XF_ECX(%esp)", "\tmovl $0, XF_ECX(%esp)",           # clears all of %ecx
     32, Form("ins", 16, None), [("b", True, False)], {"edi": 0x5100, "ecx": 0x70002}, {}, 0x202),
    ("thunks_strx32.h", "\tpushfl\n", "\tpushfl\n",                                     # (control)
     16, Form("outs", 32, "gs"), [("l", False, True)], {"esi": 0x100}, {"gs": 0x12340}, 0x202),
    ("thunks_strx32.h", "\tnegl XS_STEP(%esp)\n", "",                                # DF=1 ignored
     16, Form("ins", 32, None), [("w", True, True)], {"edi": 0x100, "ecx": 4}, {"es": 0x20000}, 0x602),
    ("thunks_strx.h", "\tjnz 4f\n", "\tjmp 5f\n\tjnz 4f\n",
     64, Form("ins", 32, None), [("w", True, True)], {"rdi": 0x100, "rcx": 4}, {}, 0x602),
    ("thunks_strx64.h", "\tmovq $0, XF64_RCX(%rsp)", "\tmovl $0, XF64_RCX(%rsp)",      # %rcx half kept
     64, Form("ins", 32, None), [("b", True, True)], {"rdi": 0x7_0000_0100, "rcx": 0x1_0000_0002}, {}, 0x202),
    ("thunks_strx64.h", '"mov \\seg(\\ptr), \\acc"', '"mov (\\ptr), \\acc"',
     64, Form("outs", 64, "gs"), [("b", False, False)], {"rsi": 0x100}, {"gs": 0x8000}, 0x202),
]


@pytest.mark.parametrize("k", range(len(MUTATIONS)))
def test_oracle_catches_broken_strx_thunks(k: int, tmp_path: Path) -> None:
    inc, old, new, bits, form, sites, regs, segs, eflags = MUTATIONS[k]
    src = (O.RUNTIME / inc).read_text()
    assert old in src, f"mutation {k} no longer applies to {inc}"
    thunks = O.THUNKS[bits]
    for f in [thunks, *(h.name for h in O.RUNTIME.glob("thunks_strx*.h"))]:
        shutil.copyfile(O.RUNTIME / f, tmp_path / f)
    (tmp_path / inc).write_text(src.replace(old, new))  # `#include "..."` looks beside the including file first
    runtime = O.build_runtime(O.MODES[bits], tmp_path / thunks)
    if old == new:
        _check(bits, form, sites, regs, segs, 7, eflags, runtime)
    else:
        with pytest.raises(AssertionError, match="differences"):
            _check(bits, form, sites, regs, segs, 7, eflags, runtime)
