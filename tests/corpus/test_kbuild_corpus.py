"""Real Linux 6.1 drivers through Kbuild with pvgen-as and the direct runtime: no port I/O left, one site per insn."""

from __future__ import annotations

import pytest

from pvgen.toolchain.kbuild import TARGETS
from pvgen.toolchain.objscan import scan, undefined_symbols

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("name", list(TARGETS))
def test_rewritten_modules_have_no_io_outside_the_runtime(name, corpus_check, kernel_headers, linux_source_tarball):
    checks, plain, pv = corpus_check(name)
    for c in checks:
        assert sum(c.plain_io.values()) > 0, f"{c.module}: the unmodified build has no port I/O to rewrite"
        assert not c.leftover, f"{c.module}: I/O left outside the runtime: {[str(h) for h in c.leftover[:5]]}"


@pytest.mark.parametrize("name", list(TARGETS))
def test_one_rewritten_site_per_io_instruction_of_the_unmodified_build(name, corpus_check, kernel_headers,
                                                                       linux_source_tarball):
    checks, _, _ = corpus_check(name)
    for c in checks:
        assert not c.not_rewritten, f"{c.module}: sites kept: {c.not_rewritten[:3]}"
        assert c.sites == c.plain_io, f"{c.module}: sites {dict(c.sites)} vs instructions {dict(c.plain_io)}"


@pytest.mark.parametrize("name", list(TARGETS))
def test_modpost_resolves_every_pvgen_symbol(name, corpus_check, kernel_headers, linux_source_tarball):
    checks, _, pv = corpus_check(name)
    for c in checks:
        assert not c.undefined_pvio, f"{c.module}: undefined {c.undefined_pvio}"
        # The runtime really is inside the module: its back end holds the only real I/O instructions.
        assert c.runtime_io > 0
        ko = pv.modules[c.module]
        assert not [s for s in undefined_symbols(ko) if s.startswith("__pvio")]
        assert all(h.symbol and h.symbol.startswith("pvio_") for h in scan(ko))


@pytest.mark.parametrize("name", list(TARGETS))
def test_objtool_follows_the_rewritten_code(name, corpus_check, kernel_headers, linux_source_tarball):
    """objtool validates every object (stack depth at each instruction): a thunk call must leave the stack as the
    original instruction did, or the module's ORC unwind data is wrong."""
    checks, _, _ = corpus_check(name)
    for c in checks:
        assert not c.objtool_warnings, f"{c.module}: {c.objtool_warnings[:3]}"
