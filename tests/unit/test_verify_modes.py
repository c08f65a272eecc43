"""verify on files that mix code sizes: each range is decoded in its own size and must call that size's thunks."""

from __future__ import annotations

import pytest

from pvgen.errors import PvgenError
from pvgen.rewrite import rewrite_text
from pvgen.rewrite.verify import Mismatch, assemble, verify_objects, verify_text

pytestmark = pytest.mark.usefixtures("gnu_as")  # tests/conftest.py: a failure on CI, a skip elsewhere

MIXED = ("\t.text\nf:\tinb %dx,%al\n\tret\n\t.code32\ng:\tinb $0x60,%al\n\trep outsw\n\tret\n"
         "\t.code16\nh:\toutb %al,$0x80\n\trep insw\n\tretl\n\t.code64\nk:\toutl %eax,%dx\n\tjmp f\n")


def test_a_64bit_object_with_32_and_16_bit_code_verifies() -> None:
    report, result = verify_text(MIXED, "m.s", 64)
    assert [s.thunk for s in result.sites] == ["__pvio_inb_dx", "__pvio32_inb_imm", "__pvio32_rep_outsw",
                                               "__pvio16_outb_imm", "__pvio16_rep_insw", "__pvio_outl_dx"]
    assert report.replaced_total == 6 and report.bits == 64


def test_32_bit_code_calling_the_64_bit_thunk_is_caught(tmp_path) -> None:
    from pvgen.toolchain.objcheck import with_mode_tags

    result = rewrite_text(MIXED, "m.s")
    wrong = result.text.replace("call __pvio32_rep_outsw", "call __pvio_rep_outsw")
    orig = assemble(with_mode_tags(MIXED), ["--64"], str(tmp_path), "original", "m.s")
    rew = assemble(with_mode_tags(wrong), ["--64"], str(tmp_path), "rewritten", "m.s")
    with pytest.raises(Mismatch, match="__pvio32_rep_outsw"):
        verify_objects(orig, rew, result, "m.s", 64)


def test_code64_contradicts_a_32_bit_run() -> None:
    with pytest.raises(PvgenError, match=r"^m\.s:12: `\.code64` contradicts --32"):
        verify_text(MIXED, "m.s", 32)
