"""pvgen verify on real Linux 6.1 driver assembly (Kbuild `x.s` targets): every I/O site rewritten, nothing else changed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pvgen.rewrite.verify import verify_text

pytestmark = pytest.mark.kernel

DRIVERS = {  # source directory in the Linux tree -> files to copy, assembly targets
    "drivers/net/ethernet/8390": (["ne2k-pci.c", "8390.c", "8390.h", "lib8390.c"], ["ne2k-pci", "8390"]),
    "drivers/ata": (["pata_legacy.c"], ["pata_legacy"]),
}


@pytest.fixture(scope="module")
def driver_assembly(kernel_headers, linux_source_tarball, tmp_path_factory) -> dict[str, str]:
    from pvgen.toolchain.linuxsrc import ensure_extracted

    tree = ensure_extracted(DRIVERS, quiet=True)
    out: dict[str, str] = {}
    for sub, (files, targets) in DRIVERS.items():
        d = tmp_path_factory.mktemp(Path(sub).name)
        for f in files:
            shutil.copy(tree / sub / f, d / f)
        (d / "Makefile").write_text("obj-m += " + " ".join(t + ".o" for t in targets) + "\n")
        subprocess.run(["make", "-s", "-j2", "-C", str(kernel_headers), f"M={d}", *(t + ".s" for t in targets)],
                       check=True, capture_output=True)
        for t in targets:
            out[t] = (d / (t + ".s")).read_text(errors="surrogateescape")
    return out


@pytest.mark.parametrize("name", ["ne2k-pci", "8390", "pata_legacy"])
def test_linux_driver_verifies(driver_assembly: dict[str, str], name: str) -> None:
    report, result = verify_text(driver_assembly[name], f"{name}.s", 64)
    io = [s for s in result.sites if s.kind != "report-only"]
    assert io, "a port-I/O driver without sites"
    assert all(s.rewritten for s in io)
    # verify walked the original object: each port-I/O instruction in it was replaced by its thunk call
    assert report.kept_io == 0 and report.replaced_total == len(io)
