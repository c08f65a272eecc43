"""The differential oracle on the plain 16-bit string forms (`insw`, `rep outsb`, ... in .code16 and .code16gcc)
under real-mode segments: ES != DS != SS, SS:SP off segment 0, %di/%si wrapping at 0xFFFF, DF=1, counts 0..300,
with the shipped direct back end and with a back end that uses the buffer as C data (cptr_backend.c)."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
import pvio_oracle as O  # noqa: E402
from test_diff_strx import Form, _check  # noqa: E402

from pvgen.rewrite import rewrite_text  # noqa: E402

PROFILE = os.environ.get("PVGEN_HYPOTHESIS_PROFILE", "default")
EXAMPLES = 1000 if PROFILE == "long" else 100
MODES = {d: replace(m, layout=O.LOWX) for d, m in ((".code16", O.MODE16), (".code16gcc", O.MODE16GCC))}
# The two plain forms: ins writes ES:%di, outs reads DS:%si (16-bit address size, count %cx).
PLAIN = (Form("ins", 16, None), Form("outs", 16, None))
HERE = Path(__file__).resolve().parent


def _base(draw) -> int:
    """A real-mode segment base inside the test data (from 64 KiB; O.LOWX): 16 x a selector."""
    return 0x10000 + 16 * draw(st.integers(0, 0x1000))


@st.composite
def case(draw):
    """One or two sites of one plain form (the second continues from the registers the first left), ES, DS and SS
    with bases of their own, and SP pointing at the same linear stack from SS."""
    form = draw(st.sampled_from(PLAIN))
    sites = [(draw(st.sampled_from("bwl")), draw(st.booleans()), draw(st.booleans()))
             for _ in range(draw(st.integers(1, 2)))]
    count = draw(st.one_of(st.integers(0, 5), st.integers(120, 300), st.integers(0, 300)))
    upper = lambda: draw(st.integers(0, 0xFFFF)) << 16  # noqa: E731 - kept by 16-bit addressing
    low = draw(st.one_of(st.integers(0, 0xFFFF), st.integers(0xFFF0, 0xFFFF), st.integers(0, 0x10)))
    ss = 16 * draw(st.one_of(st.just(0), st.integers(0, 0x900)))   # stack below 64 KiB (O.LOWX: 0x9000..)
    segs = {"es": _base(draw), "ds": _base(draw), "ss": ss}
    regs = {"edi" if form.op == "ins" else "esi": upper() | low, "ecx": upper() | count,
            "esp": O.LOWX.rsp0 - ss}
    return form, sites, regs, segs


@pytest.mark.parametrize("backend", sorted(O.BACKENDS))
@pytest.mark.parametrize("directive", sorted(MODES))
def test_plain16_string_forms_behave_like_original(directive: str, backend: str) -> None:
    mode = MODES[directive]
    runtime = O.build_runtime(mode, backend=backend)

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=PROFILE != "long",
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(c=case(), seed=st.integers(0, 2**32 - 1), eflags=st.sampled_from([0x202, 0x602, 0xAD7 | 0x200]))
    def run(c, seed, eflags):
        _check(16, *c, seed, eflags, runtime, mode)

    run()


def _diff(original: str, regs: dict, segs: dict, eflags: int, runtime) -> list[str]:
    """Rewrite original (every site must be rewritten), run both in .code16 and return the differences."""
    mode = MODES[".code16"]
    result = rewrite_text(f".code16\n{original}\n", mode="code16")
    assert result.sites and all(s.rewritten for s in result.sites), result.sites
    m = O.Machine.make(mode, 7, regs=regs, eflags=eflags, segs=segs)
    return O.compare(mode, original, result.text.split("\n", 1)[1], m, runtime)


# Cases that tell a thunk which assumes the tiny model from the exact one: (text, registers, segment bases, flags).
SEGS = {"es": 0x20000, "ds": 0x30000, "ss": 0x800}
SP = {"esp": O.LOWX.rsp0 - 0x800}
ES_NE_DS = ("\trep insw", {"edi": 0x100, "ecx": 5, **SP}, SEGS, 0x202)
DS_NE_SS = ("\trep outsw (%si),(%dx)", {"esi": 0x100, "ecx": 5, **SP}, SEGS, 0x202)
WRAP = ("\trep outsb", {"esi": 0xFFFC, "ecx": 5}, {"ds": 0x20000}, 0x202)
WRAP_DF = ("\trep insl", {"edi": 0x0004, "ecx": 3}, {"es": 0x20000}, 0x602)  # the third element at ES:0xFFFC
IN_OUT = ("\tinb %dx,%al\n\toutw %ax,%dx\n\tinl $0x80,%eax\n\toutb %al,$0x80\n\thlt", {"edx": 0x1F0, **SP}, SEGS,
          0x202)

# (what breaks, file, old text, new text, case, back end). The first two are the thunks before issue 11
# (thunks16_tiny.S in place of the exact ones): with a back end that uses the buffer as C data an `ins` writes
# DS:%di, and with any back end the block runs past 0xFFFF.
PLAIN_FORMS = "XFORM __pvio16_, ins,  , pvio_ins,  %di, 16, es\nXFORM __pvio16_, outs, , pvio_outs, %si, 16, ds\n"
TINY = '#include "thunks16_tiny.S"\n'
BROKEN = [
    ("tiny model, ES != DS", "thunks16.S", PLAIN_FORMS, TINY, ES_NE_DS, "cptr"),
    ("tiny model, no wrap", "thunks16.S", PLAIN_FORMS, TINY, WRAP, "direct"),
    ("string back end with the caller's DS", "thunks_strx32.h", "\tpushl %ss\n\tpopl %ds\n", "", DS_NE_SS,
     "direct"),
    ("ins stored through DS", "thunks_strx32.h", "\tmov \\acc, %es:(\\ptr)", "\tmov \\acc, (\\ptr)", ES_NE_DS,
     "direct"),
    ("DF=1 ignored", "thunks_strx32.h", "\tnegl XS_STEP(%esp)\n", "", WRAP_DF, "direct"),
    ("in/out back end with the caller's DS", "thunks16.S", "\tpushw %ss\n\tpopw %ds\n", "", IN_OUT, "cptr"),
]


def _runtime(tmp_path: Path, name: str, old: str, new: str, backend: str) -> tuple[Path, ...]:
    for f in ["thunks16.S", *(h.name for h in O.RUNTIME.glob("thunks_strx*.h"))]:
        shutil.copyfile(O.RUNTIME / f, tmp_path / f)
    shutil.copyfile(HERE / "thunks16_tiny.S", tmp_path / "thunks16_tiny.S")
    src = (tmp_path / name).read_text()
    assert old in src, f"the mutation no longer applies to {name}"
    (tmp_path / name).write_text(src.replace(old, new))
    return O.build_runtime(O.MODE16, tmp_path / "thunks16.S", backend=backend)


@pytest.mark.parametrize("k", range(len(BROKEN)), ids=[b[0] for b in BROKEN])
def test_oracle_catches_thunks_that_assume_the_tiny_model(k: int, tmp_path: Path) -> None:
    _, name, old, new, case_, backend = BROKEN[k]
    assert _diff(*case_, O.build_runtime(O.MODE16, backend=backend)) == []       # the exact thunks
    assert _diff(*case_, _runtime(tmp_path, name, old, new, backend)) != []
