"""Report, ratio math, JSON and plot of the benchmark (synthetic numbers: these test formatting, not performance)."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from pvgen.bench import plot, report
from pvgen.bench.results import Phase, VariantResult, merge_rounds, ratio, ratios
from pvgen.bench.variants import VARIANTS, select
from pvgen.errors import PvgenError


def synthetic() -> dict[str, VariantResult]:
    def v(name, exits, wall, verified=True):
        phases = [Phase("tx", 100, exits, exits - 3, wall), Phase("rx", 100, exits // 2, exits // 2 - 1, wall / 2)]
        return VariantResult(name, "ok" if verified else "failed", "" if verified else "frame 3 differs",
                             phases, verified, ["ok: x"] if verified else ["FAIL: frame 3 differs"])
    return {
        "original": v("original", 40000, 4.0),
        "coalesced": v("coalesced", 10000, 1.0),
        "generated-batch": v("generated-batch", 800, 0.2, verified=False),
        "generated": VariantResult.unavailable("generated", "runtime: pvbatch device missing"),
        "pv-ideal": v("pv-ideal", 90, 0.05),
    }


def test_ratio_math():
    assert ratio(10.0, 2.0) == 5.0
    assert ratio(1.0, 0.0) is None and ratio(None, 1.0) is None and ratio(1.0, float("nan")) is None
    res = synthetic()
    r = ratios(res, "pv-ideal", "tx")
    assert r["original"]["throughput"] == pytest.approx((100 / 0.05) / (100 / 4.0))
    assert r["original"]["exit_reduction"] == pytest.approx(40000 / 90)
    assert r["pv-ideal"]["throughput"] == pytest.approx(1.0)
    total = ratios(res, "coalesced", "total")
    assert total["original"]["throughput"] == pytest.approx((200 / 1.5) / (200 / 6.0))
    assert ratios(res, "generated", "tx")["original"] == {"throughput": None, "exit_reduction": None}


def test_total_sums_phases():
    t = synthetic()["original"].total()
    assert (t.ops, t.exits, t.io_exits, t.wall_s) == (200, 60000, 60000 - 4, 6.0)
    assert t.exits_per_op == 300.0 and t.ops_per_s == pytest.approx(200 / 6.0)


def test_table_shows_every_variant_and_verdict():
    buf = io.StringIO()
    report.print_report(synthetic(), "net", Console(file=buf, width=220, color_system=None))
    out = buf.getvalue()
    for name in ("original", "coalesced", "generated-batch", "generated", "pv-ideal"):
        assert name in out
    assert "generated: unavailable: runtime: pvbatch device missing" in out
    assert "NO" in out and "failed generated-batch: frame 3 differs" in out
    assert "400.000" in out                       # original tx exits/op
    assert "80.00×" in out                        # pv-ideal tx throughput over original


def test_json_keyed_by_variant(tmp_path):
    res = synthetic()
    path = tmp_path / "r.json"
    report.write_json(path, res, "net", {"ops": 100, "seed": 1})
    data = json.loads(path.read_text())
    assert data["schema"] == report.SCHEMA and data["workload"] == "net" and data["params"]["ops"] == 100
    assert set(data["variants"]) == set(res)
    pv = data["variants"]["pv-ideal"]
    assert pv["status"] == "ok" and pv["verified"] is True
    assert set(pv["phases"]) == {"tx", "rx", "total"}
    assert pv["phases"]["tx"]["exits"] == 90 and pv["phases"]["tx"]["exits_per_op"] == 0.9
    assert pv["phases"]["tx"]["ratios"]["coalesced"]["exit_reduction"] == pytest.approx(10000 / 90)
    assert data["variants"]["generated-batch"]["status"] == "failed"
    assert data["variants"]["generated"] == {"status": "unavailable", "reason": "runtime: pvbatch device missing",
                                             "verified": False, "checks": [], "info": {}, "phases": {}}
    assert report.failures(res) == ["generated-batch: frame 3 differs"]


def test_plot_writes_a_png(tmp_path):
    out = plot.plot(synthetic(), "net", tmp_path / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000


def test_variants_as_data():
    assert [v.name for v in select(None)] == ["original", "coalesced", "generated-batch", "generated-regs",
                                              "generated", "pv-ideal"]
    assert [v.name for v in select("pv-ideal, original")] == ["pv-ideal", "original"]
    assert VARIANTS["coalesced"].coalesced_posted and not VARIANTS["original"].coalesced_posted
    gb, g = VARIANTS["generated-batch"].monitor_options(), VARIANTS["generated"].monitor_options()
    assert "shadow" not in gb["pvbatch_classes"] and "fifo" not in gb["pvbatch_classes"]
    assert {"shadow", "fifo", "posted", "doorbell"} <= set(g["pvbatch_classes"])
    assert g["models"] and not VARIANTS["generated-regs"].monitor_options()["models"] and not gb["models"]
    with pytest.raises(PvgenError, match="unknown variant"):
        select("original,bogus")


def test_posted_ranges_merge_adjacent_ports():
    from pvgen.bench.machine import posted_ranges
    from pvgen.protocol import PortClass as C

    cmap = {0xC001: (C.STRICT, C.POSTED), 0xC002: (C.STRICT, C.POSTED), 0xC000: (C.SHADOW, C.DOORBELL),
            0xC010: (C.FIFO, C.POSTED), 0x3F8: (C.STRICT, C.POSTED)}
    assert posted_ranges(cmap) == [(0x3F8, 1), (0xC001, 2), (0xC010, 1)]


def test_port_breakdown_lines():
    res = synthetic()
    res["pv-ideal"].phases[0].breakdown = {"IO": 12, "io 0x0e94 out": 10, "flush OUT 0xc000": 5}
    buf = io.StringIO()
    report.print_report(res, "net", Console(file=buf, width=220, color_system=None))
    out = buf.getvalue()
    assert "pv-ideal tx: I/O exits by port: 0x0e94 out 0.10/op" in out
    assert "pv-ideal tx: pvbatch flushes by trigger: OUT 0xc000 0.05/op" in out


def _marks(*ids: int):
    from pvgen.bench.runner import Mark

    return [Mark(i, 1_000_000 * k, {"exits": 10 * k * k, "io_exits": k}) for k, i in enumerate(ids)]


def test_probe_phase_is_one_operation_and_optional():
    from pvgen.bench import workload as wl
    from pvgen.bench.runner import PHASES, phase_ops, phases

    assert PHASES["net"] == ["probe", "tx", "rx"] and phase_ops("net", 50) == {"probe": 1, "tx": 50, "rx": 50}
    linux = phases(_marks(wl.MARK_PROBE_START, wl.MARK_PROBE_END, wl.MARK_TX_START, wl.MARK_TX_END,
                          wl.MARK_RX_START, wl.MARK_RX_END), PHASES["net"], phase_ops("net", 50))
    assert [(p.name, p.ops, p.exits, p.in_total) for p in linux] == [
        ("probe", 1, 10, False), ("tx", 50, 50, True), ("rx", 50, 90, True)]
    # pv-ideal has no probe: the phase is absent, not an error
    pv = phases(_marks(wl.MARK_TX_START, wl.MARK_TX_END, wl.MARK_RX_START, wl.MARK_RX_END), PHASES["net"],
                phase_ops("net", 50))
    assert [p.name for p in pv] == ["tx", "rx"]
    # a probe begun and never ended, or a missing transmit phase, is still an error
    with pytest.raises(PvgenError, match="phase probe"):
        phases(_marks(wl.MARK_PROBE_START, wl.MARK_TX_START, wl.MARK_TX_END, wl.MARK_RX_START, wl.MARK_RX_END),
               PHASES["net"], phase_ops("net", 50))
    with pytest.raises(PvgenError, match="phase tx"):
        phases(_marks(wl.MARK_PROBE_START, wl.MARK_PROBE_END, wl.MARK_RX_START, wl.MARK_RX_END), PHASES["net"],
               phase_ops("net", 50))


def test_total_leaves_the_probe_out_and_the_table_names_every_variant():
    res = synthetic()
    res["original"].phases.insert(0, Phase("probe", 1, 400, 390, 0.02, in_total=False))
    t = res["original"].total()
    assert (t.ops, t.exits, t.wall_s) == (200, 60000, 6.0)
    assert report.phase_names(res) == ["probe", "tx", "rx", "total"]
    buf = io.StringIO()
    report.print_report(res, "net", Console(file=buf, width=220, color_system=None))
    rows = [ln for ln in buf.getvalue().splitlines() if "pv-ideal" in ln and " tx " in ln]
    assert rows, "pv-ideal's first row (tx: it has no probe) names the variant"
    doc = report.to_json(res, "net")
    assert doc["variants"]["original"]["phases"]["probe"]["exits"] == 400
    assert "probe" not in doc["variants"]["pv-ideal"]["phases"]
    assert doc["variants"]["original"]["phases"]["total"]["exits"] == 60000


def test_guest_delay_is_carried_through_phases_sums_total_json_and_report():
    from pvgen.bench import workload as wl
    from pvgen.bench.runner import PHASES, Mark, phase_ops, phases

    # cumulative guest busy-wait at each mark (ns): 1 ms in seq-write, 2 in seq-read, 0 in rand-write, 4 in rand-read
    ids = (wl.MARK_DISK_START, wl.MARK_DISK_Q1, wl.MARK_DISK_Q2, wl.MARK_DISK_Q3, wl.MARK_DISK_END)
    delay = (5_000_000, 6_000_000, 8_000_000, 8_000_000, 12_000_000)
    monitor = (1_000_000, 3_000_000, 4_000_000, 7_000_000, 8_000_000)   # cumulative exit handling in the monitor
    marks = [Mark(i, 10_000_000 * k, {"exits": k}, guest_delay_ns=d, monitor_ns=mon)
             for k, (i, d, mon) in enumerate(zip(ids, delay, monitor))]
    got = {p.name: p for p in phases(marks, PHASES["disk"], phase_ops("disk", 256))}
    assert {n: p.guest_delay_ns for n, p in got.items()} == {
        "disk": 7_000_000, "seq-write": 1_000_000, "seq-read": 2_000_000, "rand-write": 0, "rand-read": 4_000_000,
        "write": 1_000_000, "read": 6_000_000}
    assert got["read"].guest_delay_us_per_op == pytest.approx(6000 / 128)
    assert got["read"].wall_us_per_op == pytest.approx(20_000 / 128)
    assert {n: p.monitor_ns for n, p in got.items()} == {
        "disk": 7_000_000, "seq-write": 2_000_000, "seq-read": 1_000_000, "rand-write": 3_000_000,
        "rand-read": 1_000_000, "write": 5_000_000, "read": 2_000_000}
    res = {"generated": VariantResult("generated", "ok", "", list(got.values()), True, ["ok: x"]),
           "pv-ideal": VariantResult("pv-ideal", "ok", "", phases([Mark(i, 10_000_000 * k, {}) for k, i in
                                                                    enumerate(ids)], PHASES["disk"],
                                                                   phase_ops("disk", 256)), True, ["ok: x"])}
    assert res["generated"].total().guest_delay_ns == 7_000_000
    assert res["generated"].total().monitor_ns == 7_000_000
    doc = report.to_json(res, "disk")
    assert doc["variants"]["generated"]["phases"]["read"]["guest_delay_us_per_op"] == pytest.approx(6000 / 128)
    assert doc["variants"]["pv-ideal"]["phases"]["read"]["guest_delay_us_per_op"] == 0
    assert doc["variants"]["generated"]["phases"]["read"]["monitor_us_per_op"] == pytest.approx(2000 / 128)
    buf = io.StringIO()
    report.print_report(res, "disk", Console(file=buf, width=220, color_system=None))
    lines = [ln for ln in buf.getvalue().splitlines() if "driver delays" in ln]
    assert ("generated read: 156.2 µs/op: monitor's exit handling (Python) 15.6 (10%), in KVM_RUN 140.6 of which "
            "driver delays (guest busy-wait) 46.9 (30%)") in lines
    assert not any(ln.startswith("pv-ideal") for ln in lines)   # neither delays nor monitor time: no line
    assert any(ln.startswith("generated rand-write") and "driver delays (guest busy-wait) 0.0 (0%)" in ln
               for ln in lines)


def _round(tx_s: float, rx_s: float, status: str = "ok", exits: int = 10) -> VariantResult:
    return VariantResult("generated", status, "" if status == "ok" else "boom",
                         [Phase("tx", 100, exits, 0, tx_s), Phase("rx", 100, exits + 1, 0, rx_s)],
                         status == "ok", ["ok: frames"] if status == "ok" else ["FAIL: frames"], {"image": "x"})


def test_rounds_take_each_phase_from_its_median_round():
    rounds = [_round(0.5, 0.1, exits=1), _round(0.1, 0.3, exits=2), _round(0.3, 0.2, exits=3)]
    merged = merge_rounds(rounds)
    tx, rx = merged.phase("tx"), merged.phase("rx")
    assert (tx.wall_s, tx.exits) == (0.3, 3) and (rx.wall_s, rx.exits) == (0.2, 4)   # one real round's figures
    assert merged.status == "ok" and merged.verified
    assert merged.info["rounds"] == [{"tx": 200.0, "rx": 1000.0}, {"tx": 1000.0, "rx": 333.3},
                                     {"tx": 333.3, "rx": 500.0}]
    assert merge_rounds([_round(0.2, 0.2)]).info == {"image": "x"}                    # one round: as measured
    failed = _round(0.2, 0.2, status="failed")
    assert merge_rounds([rounds[0], failed, rounds[1]]) is failed                      # a failure decides
    out = io.StringIO()
    report.print_report({"generated": merged}, "net", Console(file=out, width=200))
    assert "median of 3 interleaved rounds; ops/s by round: tx 200/1,000/333, rx 1,000/333/500" in out.getvalue()


def test_rounds_are_bounded():
    from pvgen.bench.commands import run_bench
    with pytest.raises(PvgenError, match="--rounds 0"):
        run_bench("net", 8, "generated", seed=1, pv_batch=1, rounds=0)
