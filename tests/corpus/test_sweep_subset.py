"""`pvgen sweep` on a small fixed subset of Debian's modules with port I/O: found from Debian's objects, built by the
tree's own Makefiles unmodified and with pvgen-as, every site rewritten, nothing left (cached across runs)."""

from __future__ import annotations

import pytest

from pvgen.toolchain.sweep import run_sweep, scan_debian, sweep_root, with_port_io
from pvgen.toolchain.sweepbuild import PLAIN, build_group, work_dir

pytestmark = pytest.mark.kernel

# in/out and rep ins/outs inline (ne2k-pci), only calls to lib/iomap.c's accessors (pata_marvell), a watchdog
# driving a Super I/O chip through index/data ports (w83627hf_wdt).
SUBSET = ["drivers/net/ethernet/8390/ne2k-pci", "drivers/ata/pata_marvell", "drivers/watchdog/w83627hf_wdt"]


@pytest.fixture(scope="module")
def doc(kernel_headers, linux_source_tarball):
    return run_sweep(SUBSET, None, 2)


def test_the_subset_is_found_in_debians_objects(doc):
    assert doc["modules_with_port_io"] == len(SUBSET) == doc["modules_total"]
    by = {r["module"]: r for r in doc["modules"]}
    assert set(by) == set(SUBSET)
    assert by["drivers/ata/pata_marvell"]["debian_accessors"] and not by["drivers/ata/pata_marvell"]["debian_io"]
    assert {"rep-ins", "rep-outs"} <= set(by["drivers/net/ethernet/8390/ne2k-pci"]["debian_io"])


def test_every_module_builds_and_verifies_with_no_silent_leftover(doc):
    for r in doc["modules"]:
        assert r["ok"], f"{r['module']}: {r['problems']}"
        assert r["plain_matches_debian"], f"{r['module']}: our unmodified build differs from Debian's"
        assert r["sites"] == r["plain_io"] and sum(r["sites"].values()) > 0
        assert r["leftover"] == 0 and not r["kept"]
    assert doc["modules_ok"] == doc["modules_total"] and doc["silent_leftovers"] == 0


def test_the_check_fails_a_module_whose_io_was_not_rewritten(doc, kernel_headers):
    """The unmodified build offered as the pvgen one: every instruction is a silent leftover."""
    from pvgen.toolchain.linuxsrc import linux_source_dir
    from pvgen.toolchain.sweep import check

    scanned, _ = scan_debian([SUBSET[0]], 1)
    (m,) = with_port_io(scanned, linux_source_dir())
    plain = build_group(linux_source_dir(), kernel_headers, m.dir, [m], PLAIN,
                        work_dir(sweep_root(), m.dir, PLAIN, "selftest"))
    rec = check(m, plain, plain, linux_source_dir())
    assert not rec["ok"] and rec["leftover"] == sum(m.io.values()) and rec["silent_leftovers"] == rec["leftover"]
    assert any("left outside the runtime" in p for p in rec["problems"])


def test_a_second_run_reads_every_result_from_the_cache(doc):
    again = run_sweep(SUBSET, None, 1, cached_only=True)
    assert again["modules_not_built"] == 0 and all(r["cached"] for r in again["modules"])
    assert [r["sites"] for r in again["modules"]] == [r["sites"] for r in doc["modules"]]
