"""Shared fixtures: environment checks that fail loudly on CI and skip with one line elsewhere."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(ok: bool, what: str) -> None:
    """On CI a missing prerequisite is a failure; elsewhere a skip with a one-line reason."""
    if ok:
        return
    if ON_CI:
        pytest.fail(f"CI requires {what}, and it is missing")
    pytest.skip(f"{what} is missing")


def kvm_available() -> bool:
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


def need_tool(name: str, what: str | None = None) -> str:
    """The path of program `name` on PATH; when it is missing, need()'s rule (a failure on CI, a skip elsewhere)."""
    path = shutil.which(name)
    need(path is not None, what or f"{name} (on PATH)")
    return path


@pytest.fixture(scope="session")
def gnu_as() -> str:
    return need_tool("as", "GNU as (binutils)")


@pytest.fixture(scope="session")
def gcc() -> str:
    return need_tool("gcc", "gcc (build-essential)")


@pytest.fixture
def prerequisite():
    """need() itself, for a test that learns only while it runs whether a prerequisite is there (a bench variant
    reports "unavailable" when a piece it needs is missing)."""
    return need


@pytest.fixture
def kvm() -> None:
    need(kvm_available(), "/dev/kvm (read-write)")


def _headers_dir() -> Path | None:
    cands = sorted(Path("/usr/src").glob("linux-headers-*-amd64"))
    return cands[-1] if cands else None


@pytest.fixture(scope="session")
def kernel_headers() -> Path:
    d = _headers_dir()
    need(d is not None and (d / "Makefile").exists(), "linux-headers-amd64 (/usr/src/linux-headers-*-amd64)")
    return d


@pytest.fixture(scope="session")
def linux_source_tarball() -> Path:
    p = Path("/usr/src/linux-source-6.1.tar.xz")
    need(p.exists(), "linux-source-6.1 (/usr/src/linux-source-6.1.tar.xz)")
    return p
