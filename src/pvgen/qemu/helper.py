"""The guest's workload program (guest/pvqwl.c + the bench's workload.h), compiled with `gcc -static` and cached."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from pvgen.bench.workload import GUEST_DIR
from pvgen.errors import EnvironmentMissing, PvgenError
from pvgen.toolchain.linuxsrc import cache_root

SOURCE = Path(__file__).resolve().parent / "guest" / "pvqwl.c"
HEADER = GUEST_DIR / "workload.h"


def build_helper() -> Path:
    """The static pvqwl binary (rebuilt when its source or workload.h changes)."""
    if shutil.which("gcc") is None:
        raise EnvironmentMissing("gcc", "install build-essential (`make setup`)")
    key = hashlib.sha256(SOURCE.read_bytes() + HEADER.read_bytes()).hexdigest()[:16]
    out = cache_root() / "qemu" / f"pvqwl-{key}"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    got = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-Werror", f"-I{HEADER.parent}", "-o", str(tmp),
                          str(SOURCE)], capture_output=True, text=True)
    if got.returncode != 0:
        first = next((ln for ln in got.stderr.splitlines() if "error" in ln), got.stderr.strip()[:200])
        raise PvgenError(f"building the guest workload program {SOURCE.name} failed: {first}")
    tmp.rename(out)
    return out
