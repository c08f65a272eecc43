"""Mixed code sizes: `.code32` code of a 64-bit object, `.code16` code of a 64- or 32-bit object, rewritten as
pvgen-as rewrites that object and linked with the mixed runtime targets (runtime/build.py): original vs rewritten
under unicorn in the code's own size."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
import pvio_gen as G  # noqa: E402
import pvio_oracle as O  # noqa: E402

from pvgen.asm.sites import THUNK_PREFIX  # noqa: E402
from pvgen.rewrite import rewrite_text  # noqa: E402
from pvgen.runtime.build import build  # noqa: E402

PROFILE = os.environ.get("PVGEN_HYPOTHESIS_PROFILE", "default")
EXAMPLES = 500 if PROFILE == "long" else 30

# (code size, runtime target, object format: as flag, ld emulation, the rewriter's starting mode)
CASES = {
    "code32-in-elf64": (32, "x86_64-code32", "--64", "elf_x86_64", 64),
    "code16-in-elf64": (16, "x86_64-code16", "--64", "elf_x86_64", 64),
    "code16-in-elf32": (16, "i386-code16", "--32", "elf_i386", 32),
}
# A 64-bit function of the same object, rewritten with it: it calls the 64-bit runtime, linked beside the mixed one.
M64 = "\t.code64\n\t.section .text.m64,\"ax\",@progbits\nm64:\tinb %dx,%al\n\trep outsw\n\tret\n"


def _setup(case: str, tmp: Path):
    bits, target, as_flag, emul, obj_bits = CASES[case]
    mode = replace(O.MODES[bits], as_flag=as_flag, ld_emul=emul)
    mixed = build(target, "direct", tmp / f"rt-{target}.o")
    own = O.build_runtime(O.MODES[64]) if obj_bits == 64 and bits == 32 else ()
    return mode, obj_bits, (*own, mixed)


def _rewrite(text: str, bits: int, obj_bits: int) -> tuple[str, list]:
    """Rewrite as pvgen-as does for an object of obj_bits whose code switches to `bits`."""
    result = rewrite_text(f".code{bits}\n{text}", mode=obj_bits)
    return result.text.split("\n", 1)[1], result.sites


@pytest.mark.parametrize("case", list(CASES))
def test_mixed_object_runs_through_its_own_thunks(case: str, tmp_path: Path) -> None:
    mode, obj_bits, runtime = _setup(case, tmp_path)
    bits = mode.bits
    extra = ""
    if len(runtime) > 1:  # 32-bit code in a 64-bit object: the object's 64-bit code is linked in too
        extra, m64_sites = _rewrite(M64, 64, obj_bits)
        assert [s.thunk for s in m64_sites] == ["__pvio_inb_dx", "__pvio_rep_outsw"]

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=PROFILE != "long",
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(lines=G.sequence(bits), seed=st.integers(0, 2**32 - 1),
           eflags=st.sampled_from([0x202, 0x602, 0xAD7 | 0x200]))
    def run(lines, seed, eflags):
        original = G.render(lines, bits, rewrite=False)
        rewritten, sites = _rewrite(original, bits, obj_bits)
        expected = [s.thunk.replace("__pvio_", THUNK_PREFIX[f"code{bits}"]) for _, s in lines if s]
        assert [s.thunk for s in sites if s.rewritten] == expected
        img = O.link_pair(mode, original, rewritten, runtime, extra)
        s = img.symbols
        a = O.run(mode, img, s["orig_start"], s["orig_end"], O.Machine.make(mode, seed, eflags=eflags))
        b = O.run(mode, img, s["rw_start"], s["rw_end"], O.Machine.make(mode, seed, eflags=eflags))
        diff = O.differences(a, b, s["orig_end"], s["rw_end"])
        assert not diff, "\n".join(["original:", original, "rewritten:", rewritten, "differences:", *diff])

    run()


def test_mixed_runtime_exports_only_its_thunks(tmp_path: Path) -> None:
    """The back end of a mixed runtime is local: it links beside the 64-bit runtime's pvio_in & co."""
    _, _, runtime = _setup("code32-in-elf64", tmp_path)
    nm = subprocess.run(["nm", "-g", "--defined-only", str(runtime[-1])], capture_output=True, text=True,
                        check=True).stdout
    names = {ln.split()[-1] for ln in nm.splitlines()}
    assert names and all(n.startswith("__pvio32_") for n in names), names - {n for n in names
                                                                          if n.startswith("__pvio32_")}
    assert "__pvio32_rep_insw_a16" in names and "__pvio32_outsb_fs" in names


def test_32bit_thunks_over_the_64bit_back_end_are_caught(tmp_path: Path) -> None:
    """The oracle can fail: the 32-bit thunks assembled into the 64-bit object but calling the 64-bit back end
    (what linking thunks32.S alone beside the 64-bit runtime gives) do not behave like the original."""
    mode, obj_bits, _ = _setup("code32-in-elf64", tmp_path)
    thunks = tmp_path / "thunks32.o"
    subprocess.run(["gcc", "-c", f"-I{O.RUNTIME}", str(O.RUNTIME / "thunks32.S"), "-o", str(thunks)], check=True)
    naive = (*O.build_runtime(O.MODES[64]), thunks)
    original = "\tmovw $0x1f0,%dx\n\tinb %dx,%al\n\tmovl $3,%ecx\n\trep insw\n"
    rewritten, _ = _rewrite(original, 32, obj_bits)
    img = O.link_pair(mode, original, rewritten, naive)
    s = img.symbols
    m = O.Machine.make(mode, 5)
    a = O.run(mode, img, s["orig_start"], s["orig_end"], m)
    b = O.run(mode, img, s["rw_start"], s["rw_end"], m)
    assert O.differences(a, b, s["orig_end"], s["rw_end"])
