"""The real Linux drivers in the bench: original vs generated on the same workload, verified, counted by KVM."""

from __future__ import annotations

import pytest

from pvgen.bench.commands import run_bench

pytestmark = pytest.mark.kvm


@pytest.mark.parametrize("workload,ops", [("net", 8), ("disk", 8)])
def test_generated_exits_less_than_original_and_both_verified(kvm, kernel_headers, linux_source_tarball,
                                                              workload, ops):
    res = run_bench(workload, ops, "original,generated", seed=5, pv_batch=8)
    for name in ("original", "generated"):
        r = res[name]
        assert r.status == "ok", (name, r.status, r.reason, r.checks)
        assert r.verified
    orig, gen = res["original"].total(), res["generated"].total()
    assert orig.ops == gen.ops == (2 * ops if workload == "net" else ops)
    # counts, not times: rewriting the port I/O must remove exits on the very same workload
    assert gen.exits < orig.exits, (gen.exits, orig.exits)
    assert res["generated"].info["pvbatch"]["registrations"] == 1
    assert res["generated"].info["pvbatch"]["rejected"] == 0
