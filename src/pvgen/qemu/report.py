"""The `pvgen qemu` report: a rich table of port accesses per operation seen by QEMU's device model, variant by
variant, next to the accesses our monitor counts for the same driver and workload (`pvgen bench`); the JSON has the
bench's layout (bench/report.py) with `exits` = the port accesses that reach QEMU's device model."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from pvgen.bench.report import _num, phase_names, to_json, verdict
from pvgen.bench.results import VariantResult

SCHEMA = "pvgen-qemu/1"


def table(results: dict[str, VariantResult], workload: str, monitor: dict[str, dict[str, float]] | None,
          info: dict) -> Table:
    t = Table(title=f"pvgen qemu {workload}: port accesses reaching QEMU's {info.get('device', 'device')} model "
                    f"(Debian {info.get('kernel', '')}, {info.get('accel', '')})", title_justify="left")
    cols = ["variant", "phase", "ops", "accesses", "accesses/op"]
    if monitor is not None:
        cols.append("monitor/op")
    for c in cols + ["verified"]:
        t.add_column(c, justify="left" if c in ("variant", "phase") else "right", no_wrap=True)
    names = phase_names(results)
    for name, r in results.items():
        style = None if r.status == "ok" else "red"
        shown = [(ph, r.phase(ph)) for ph in names if r.phase(ph) is not None]
        if not shown:
            t.add_row(name, "–", "–", "–", "–", *(["–"] if monitor is not None else []), verdict(r), style=style,
                      end_section=True)
        for i, (ph, p) in enumerate(shown):
            row = [name if i == 0 else "", ph, _num(p.ops), _num(p.exits), _num(p.exits_per_op, "{:,.2f}")]
            if monitor is not None:
                row.append(_num(monitor.get(ph, {}).get("io_exits_per_op"), "{:,.2f}"))
            t.add_row(*row, verdict(r) if i == 0 else "", style=style, end_section=i == len(shown) - 1)
    return t


def print_report(results: dict[str, VariantResult], workload: str, info: dict,
                 monitor: dict[str, dict[str, float]] | None = None, console: Console | None = None) -> None:
    console = console or Console()
    console.print(table(results, workload, monitor, info))
    note = "accesses: QEMU trace events of the device model, one per guest port access (= I/O exits under KVM, " \
           "except string I/O: docs/qemu.md)"
    if monitor is not None:
        note += "; monitor/op: io_exits/op of the same driver, `original`, in our monitor (pvgen bench)"
    console.print(note, style="dim")
    for name, r in results.items():
        for line in r.checks:
            console.print(f"{name}: {line}", style="red" if line.startswith("FAIL") else None, markup=False)


def json_report(results: dict[str, VariantResult], workload: str, params: dict, info: dict,
                monitor: dict[str, dict[str, float]] | None) -> dict:
    out = to_json(results, workload, params)
    out["schema"] = SCHEMA
    out["qemu"] = info
    out["counted"] = "port accesses reaching QEMU's device model, from its trace events (exits = io_exits)"
    if monitor is not None:
        out["monitor"] = monitor
    return out
