"""objtool (run by Kbuild on every module object) finds nothing to warn about in rewritten drivers and their runtime."""

from __future__ import annotations

import pytest
from elftools.elf.elffile import ELFFile

from pvgen.toolchain.kbuild import PVGEN, TARGETS, runtime_stem

pytestmark = pytest.mark.kernel

# Targets whose drivers have immediate-port sites (`outb %al,$0x70`): the _imm call sequence is what objtool
# used to reject when the thunk popped the pushed port (`ret $8`) instead of the caller.
IMM_TARGETS = ("pata_legacy", "rtc-cmos")


def _has_orc(obj) -> bool:
    """objtool wrote ORC unwind data into the object (so it did check it: only objtool emits .orc_unwind_ip)."""
    with open(obj, "rb") as f:
        return ELFFile(f).get_section_by_name(".orc_unwind_ip") is not None


@pytest.mark.parametrize("name", list(TARGETS))
def test_no_objtool_warning_in_the_pvgen_build_log(name, corpus_check, kernel_headers, linux_source_tarball):
    checks, _, pv = corpus_check(name)
    assert pv.variant == PVGEN
    log = pv.log.read_text(errors="replace")
    assert [ln for ln in log.splitlines() if "objtool" in ln] == []
    for c in checks:
        assert c.objtool_warnings == []
        mod = next(m for m in pv.target.modules if m.name == c.module)
        # objtool really ran on the rewritten driver and on the thunks (the unwind data is its output)
        assert _has_orc(pv.driver_object(mod)), f"{c.module}: objtool did not process the driver object"
        assert _has_orc(pv.dir / f"{runtime_stem(mod, 'thunks')}.o"), f"{c.module}: objtool skipped the thunks"


@pytest.mark.parametrize("name", IMM_TARGETS)
def test_immediate_port_sites_are_present_and_objtool_clean(name, corpus_check, kernel_headers, linux_source_tarball):
    checks, _, pv = corpus_check(name)
    imm = [s for s in pv.sites if s.get("rewritten") and (s.get("thunk") or "").endswith("_imm")]
    assert imm, f"{name}: no immediate-port site was rewritten, so this test checks nothing"
    assert all(c.ok and not c.objtool_warnings for c in checks)
