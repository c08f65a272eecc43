"""The NE2000's CR bank-select rule in the Linux net bench: lib8390's receive path (page 1 for CURR, page 0 back for
BNRY) is served from the per-page shadow banks, so a received frame costs fewer exits than with the previous CR
rule (page-0 abort only), every byte still verified."""

from __future__ import annotations

from pvgen import protocol as P
from pvgen.bench.commands import run_bench


def _page0_only_rules(original):
    """The NE2000's rules before bank selects: CR neutral only for "page 0, abort DMA" with page 0 selected."""
    def rules(self):
        out = original(self)
        out[0] = P.WriteRule(P.Neutral.SET, operand=0x22, cond_offset=0, cond_mask=0xC7, cond_want=0x02,
                             value_mask=0xFD, value_want=0x20)
        return out
    return rules


def _rx(monkeypatch, page0_only: bool):
    from pvgen.devices.ne2000 import Ne2000

    with monkeypatch.context() as mp:
        if page0_only:
            mp.setattr(Ne2000, "write_rules", _page0_only_rules(Ne2000.write_rules))
        res = run_bench("net", 8, "generated", seed=5, pv_batch=8, count_ports=True)
    r = res["generated"]
    assert r.status == "ok" and r.verified, (r.variant, r.reason, r.checks)
    assert r.info["pvbatch"]["rejected"] == 0
    return r.phase("rx")


def test_bank_selects_cut_the_receive_exits(kvm, kernel_headers, linux_source_tarball, monkeypatch):
    from pvgen.bench.linuxkit import NIC_IO_BASE

    before, after = _rx(monkeypatch, True), _rx(monkeypatch, False)
    assert before.ops == after.ops

    def reg_reads(phase) -> int:   # flushes for a CURR (page 1) or BNRY (page 0) read
        return sum(phase.breakdown.get(f"flush IN {NIC_IO_BASE + off:#06x}", 0) for off in (0x03, 0x07))

    assert reg_reads(before) >= before.ops, before.breakdown   # the page selects made them exit
    assert reg_reads(after) < reg_reads(before), (after.breakdown, before.breakdown)
    assert after.exits < before.exits, (after.exits, before.exits)
