"""Corpus fixtures: the Kbuild builds of the real Linux drivers, checked once per session."""

from __future__ import annotations

import pytest

from pvgen.toolchain.corpus import check_target


@pytest.fixture(scope="session")
def corpus_check(kernel_headers, linux_source_tarball):
    """check_target(name), memoised: builds are also cached under $PVGEN_CACHE (or ~/.cache/pvgen), so only
    changed inputs are rebuilt. The prerequisites are checked first (a failure on CI, a skip elsewhere)."""
    done: dict = {}

    def get(name: str):
        if name not in done:
            done[name] = check_target(name)
        return done[name]

    return get
