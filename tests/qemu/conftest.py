"""QEMU fixtures: qemu-system-x86_64, busybox-static and Debian's kernel image (set-up pieces: a failure on CI)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def qemu_ready(prerequisite, kernel_headers, linux_source_tarball):
    """Every piece a `pvgen qemu` boot needs; returns the unpacked kernel."""
    from pvgen.errors import PvgenError
    from pvgen.qemu.kernel import ensure_kernel

    prerequisite(shutil.which("qemu-system-x86_64") is not None, "qemu-system-x86_64 (apt-get install qemu-system-x86)")
    prerequisite(Path("/bin/busybox").exists(), "busybox-static (/bin/busybox)")
    prerequisite(shutil.which("gcc") is not None, "gcc (build-essential)")
    try:
        kernel = ensure_kernel()
    except PvgenError as exc:
        prerequisite(False, f"Debian's kernel image for QEMU ({exc})")
    return kernel
