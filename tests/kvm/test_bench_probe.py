"""The PCI probe of the real ne2k-pci driver in the net bench (issue 14 item 3): the environment's configuration
accessors (lx_pciconf.c) go through the runtime in the rewritten variants, and with the host bridge's index/data
register file published (generated) the probe's configuration reads are served in the guest: the probe phase
exits less than generated-regs', both verified; pv-ideal, which has no probe, has no probe phase."""

from __future__ import annotations

import pytest

from pvgen.bench.commands import run_bench

pytestmark = pytest.mark.kvm

CONFIG_DATA_IN = "flush IN 0x0cfc"     # a configuration read that exits (pvbatch flush trigger)


def test_probe_config_reads_are_served_by_the_index_file(kvm, kernel_headers, linux_source_tarball):
    res = run_bench("net", 8, "original,generated-regs,generated,pv-ideal", seed=5, pv_batch=1, count_ports=True)
    for r in res.values():
        assert r.status == "ok" and r.verified, (r.variant, r.reason, r.checks)
    probe = {n: r.phase("probe") for n, r in res.items()}
    assert probe["pv-ideal"] is None and res["pv-ideal"].phase("tx") is not None
    for name in ("original", "generated-regs", "generated"):
        assert probe[name].ops == 1 and not probe[name].in_total
        assert res[name].total().ops == 16            # tx + rx: the probe is not in the total
    # original: every configuration access exits; generated-regs: the CONFIG_ADDRESS writes are posted, each read
    # exits (a flush); generated: the Command reads exit (BAR sizing's 2 functions x 6 BARs, and
    # pci_enable_device), and a read that finds the driver's NE2000 writes still queued (the scan goes on over
    # slots 4-31 after ne2k-pci's probe of slot 3: the first read behind a write that is not neutral flushes it);
    # every other read is served from the published header registers
    orig_reads = probe["original"].breakdown.get("io 0x0cfc in", 0)
    regs_reads = probe["generated-regs"].breakdown.get(CONFIG_DATA_IN, 0)
    gen_reads = probe["generated"].breakdown.get(CONFIG_DATA_IN, 0)
    assert orig_reads == regs_reads > 60, (orig_reads, regs_reads)
    assert 2 * 6 + 1 <= gen_reads <= 2 * 6 + 1 + 2, gen_reads
    assert probe["generated"].exits < probe["generated-regs"].exits < probe["original"].exits
    # the I/O exits saved are the reads served (up to a timer tick that flushes a queued CONFIG_ADDRESS write);
    # KVM's other exits (host interrupts) follow the phase's wall time, not the reads
    saved = probe["generated-regs"].io_returns - probe["generated"].io_returns
    assert saved >= regs_reads - gen_reads - 3, (saved, regs_reads, gen_reads)
    m = res["generated"].info["models"]
    assert m["mismatches"] == 0, m
