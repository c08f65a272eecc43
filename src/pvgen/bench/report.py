"""The benchmark report: a rich table (one block of rows per variant) and the same fields as JSON, keyed by variant."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from pvgen.bench.results import REFERENCES, Phase, VariantResult, ratios

SCHEMA = "pvgen-bench/1"
SHORT = {"original": "orig", "coalesced": "coal", "pv-ideal": "pv-ideal"}   # throughput-ratio columns


def _num(x: float | int | None, fmt: str = "{:,.0f}") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return fmt.format(x)


def _ratio(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.2f}×" if x < 100 else f"{x:,.0f}×"


def phase_names(results: dict[str, VariantResult]) -> list[str]:
    """The phases measured by any variant, in first-seen order, then "total" when there is more than one and they
    are disjoint (the disk's "disk" phase is its total already: its quarters and sums are parts of it).  "total"
    sums the phases of per-operation work only: a one-time step (the net probe, Phase.in_total) is left out."""
    names: list[str] = []
    for r in results.values():
        for p in r.phases:
            if p.name not in names:
                names.append(p.name)
    return names + (["total"] if len(names) > 1 and "disk" not in names else [])


def verdict(r: VariantResult) -> str:
    if r.status == "unavailable":
        return "unavailable"
    return "yes" if r.verified else "NO"


def table(results: dict[str, VariantResult], workload: str) -> Table:
    t = Table(title=f"pvgen bench {workload}: KVM statistics of the measured phases", title_justify="left")
    for col, just in (("variant", "left"), ("phase", "left"), ("ops", "right"), ("exits", "right"),
                      ("io_exits", "right"), ("run io", "right"), ("exits/op", "right"), ("ops/s", "right")):
        t.add_column(col, justify=just, no_wrap=True)
    for ref in REFERENCES:
        t.add_column(f"×{SHORT[ref]}", justify="right", no_wrap=True)
    t.add_column("verified", justify="center", no_wrap=True)
    names = phase_names(results)
    for name, r in results.items():
        style = {"ok": None, "failed": "red", "unavailable": "dim"}[r.status]
        if not r.measured:
            t.add_row(name, "–", *["–"] * 6, *["–"] * len(REFERENCES), verdict(r), style=style, end_section=True)
            continue
        shown = [(ph, r.phase(ph)) for ph in names]
        shown = [(ph, p) for ph, p in shown if p is not None]   # a variant without a step (pv-ideal: no probe)
        for i, (ph, p) in enumerate(shown):
            rat = ratios(results, name, ph)
            t.add_row(name if i == 0 else "", ph, _num(p.ops), _num(p.exits), _num(p.io_exits),
                      _num(p.io_returns), _num(p.exits_per_op, "{:,.3f}"), _num(p.ops_per_s),
                      *[_ratio(rat[ref]["throughput"]) for ref in REFERENCES],
                      verdict(r) if i == 0 else "", style=style, end_section=i == len(shown) - 1)
    return t


def failures(results: dict[str, VariantResult]) -> list[str]:
    """One line per variant that ran and failed (verification or run), for the footer and the exit status."""
    return [f"{n}: {r.reason or 'data verification failed'}" for n, r in results.items() if r.status == "failed"]


def print_report(results: dict[str, VariantResult], workload: str, console: Console | None = None,
                 top_ports: int = 6) -> None:
    console = console or Console()

    def say(line: str, style: str | None = None) -> None:
        """One line of free text: reasons and checks quote compilers and devices, whose `[...]` is not markup."""
        console.print(line, style=style, markup=False)

    console.print(table(results, workload))
    say("exits, io_exits: KVM statistics; run io: KVM_RUN returns with reason IO; ×orig/×coal/×pv-ideal: "
        "ops/s of the variant over the reference's (exit ratios are in the JSON)", style="dim")
    for name, r in results.items():
        if r.status == "unavailable":
            say(f"{name}: unavailable: {r.reason}", style="dim")
    for name, r in results.items():
        for line in r.checks:
            if line.startswith("FAIL"):
                say(f"{name}: {line}", style="red")
    for name, r in results.items():    # what the in-guest models served, and (--audit) what was checked
        m, a = r.info.get("models"), r.info.get("audit")
        if m:
            say(f"{name}: in-guest models: {m['served_in']} reads and {m['served_out']} writes served, "
                f"{m['irq_marks']} interrupts raised in the guest, {m['mismatches']} contradicted")
        if a:
            say(f"{name}: audit: {a['served']} values served without an exit checked against the device, "
                f"{a['mismatches']} mismatches")
    for name, r in results.items():    # --rounds: the median round of each phase, and what the rounds measured
        per_round = r.info.get("rounds")
        if per_round:
            spread = ", ".join(f"{ph} " + "/".join(f"{rd.get(ph, 0):,.0f}" for rd in per_round)
                               for ph in per_round[0] if ph != "probe")
            say(f"{name}: median of {len(per_round)} interleaved rounds; ops/s by round: {spread}", style="dim")
    for name, r in results.items():
        for p in r.phases:
            if p.wall_s > 0 and (p.guest_delay_ns > 0 or p.monitor_ns > 0):   # where the time per operation goes
                pct = lambda ns: f"{ns / 1e7 / p.wall_s:.0f}%"   # noqa: E731
                say(f"{name} {p.name}: {p.wall_us_per_op:,.1f} µs/op: monitor's exit handling (Python) "
                    f"{p.monitor_us_per_op:,.1f} ({pct(p.monitor_ns)}), in KVM_RUN "
                    f"{p.wall_us_per_op - p.monitor_us_per_op:,.1f} of which driver delays (guest "
                    f"busy-wait) {p.guest_delay_us_per_op:,.1f} ({pct(p.guest_delay_ns)})")
            if not any(k.startswith("io ") for k in p.breakdown):
                continue          # the port counters were off (--ports)
            other = sorted(((n, k) for k, n in p.stats.items()
                            if n > 0 and (k.endswith("_exits") and k != "io_exits" or k == "insn_emulation")),
                           reverse=True)
            if other:
                per = ", ".join(f"{k} {n / p.ops:.2f}/op" for n, k in other[:top_ports])
                say(f"{name} {p.name}: other KVM statistics: {per}")
            for prefix, what in (("io ", "I/O exits by port"), ("flush ", "pvbatch flushes by trigger")):
                top = sorted(((n, k) for k, n in p.breakdown.items() if k.startswith(prefix)), reverse=True)
                if top:
                    per = ", ".join(f"{k[len(prefix):]} {n / p.ops:.2f}/op" for n, k in top[:top_ports])
                    say(f"{name} {p.name}: {what}: {per}")
    for line in failures(results):
        console.print(Text.assemble(("failed", "bold red"), " ", line))


def _phase_json(p: Phase) -> dict:
    return {"ops": p.ops, "exits": p.exits, "io_exits": p.io_exits, "io_returns": p.io_returns, "wall_s": p.wall_s,
            "exits_per_op": _finite(p.exits_per_op), "io_exits_per_op": _finite(p.io_exits_per_op),
            "ops_per_s": _finite(p.ops_per_s), "guest_delay_ns": p.guest_delay_ns,
            "guest_delay_us_per_op": _finite(p.guest_delay_us_per_op), "monitor_ns": p.monitor_ns,
            "monitor_us_per_op": _finite(p.monitor_us_per_op)}


def _finite(x: float) -> float | None:
    return None if x is None or math.isnan(x) or math.isinf(x) else x


def to_json(results: dict[str, VariantResult], workload: str, params: dict | None = None) -> dict:
    """The report as a JSON-ready dict: {"schema", "workload", "params", "variants": {name: {...}}}."""
    out: dict = {"schema": SCHEMA, "workload": workload, "params": params or {}, "variants": {}}
    names = phase_names(results)
    for name, r in results.items():
        v: dict = {"status": r.status, "reason": r.reason, "verified": r.verified, "checks": r.checks,
                   "info": r.info, "phases": {}}
        for ph in names:
            p = r.phase(ph)
            if p is None:
                continue
            d = _phase_json(p)
            d["ratios"] = ratios(results, name, ph)
            if ph != "total":
                d["stats"] = p.stats
                d["breakdown"] = p.breakdown
            v["phases"][ph] = d
        out["variants"][name] = v
    return out


def write_json(path: str | Path, results: dict[str, VariantResult], workload: str, params: dict | None = None) -> None:
    from pvgen.outputs import write_output

    write_output(path, json.dumps(to_json(results, workload, params), indent=2, sort_keys=False) + "\n")
