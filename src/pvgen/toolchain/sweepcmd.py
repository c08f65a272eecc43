"""CLI of `pvgen sweep`: the modules of Debian's 6.1 build with port I/O, rebuilt with pvgen-as and checked."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click


def _kinds(c: dict) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(c.items())) or "-"


def sweep_table(doc: dict):
    from rich.table import Table

    t = Table(title=f"pvgen sweep: {doc['modules_ok']}/{doc['modules_total']} modules ok, "
                    f"{doc['silent_leftovers']} silent leftovers")
    for col in ("module", "sites by kind", "kept (reason)", "result", "s"):
        t.add_column(col, justify="right" if col == "s" else "left", overflow="fold")
    for r in doc["modules"]:
        kept = "; ".join(f"{k['where']} {k['reason']}" for k in r.get("kept", [])[:2])
        if len(r.get("kept", [])) > 2:
            kept += f" (+{len(r['kept']) - 2})"
        result = "[green]ok" if r["ok"] else "[red]" + (r["problems"][0][:120] if r.get("problems") else "FAIL")
        t.add_row(r["module"], _kinds(r.get("sites", {})), kept or "-", result,
                  f"{r.get('seconds', 0):.0f}" + ("" if not r.get("cached") else "*"))
    return t


@click.command()
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the results here.")
@click.option("--jobs", type=click.IntRange(1), default=None, help="Directories built at once (default: cores).")
@click.option("--only", multiple=True, metavar="GLOB",
              help="Modules whose path matches (drivers/ata/pata_legacy, 'drivers/ata', 'sound/pci/*'); repeatable.")
@click.option("--limit", type=click.IntRange(0), default=None, help="At most N modules (in sweep order).")
@click.option("--no-table", is_flag=True, help="Print only the summary.")
@click.option("--cached-only", is_flag=True, help="Report the modules whose cached result is current; build nothing.")
def sweep(json_path: Path | None, jobs: int | None, only: tuple[str, ...], limit: int | None, no_table: bool,
          cached_only: bool) -> None:
    """Build every module of Debian's 6.1 configuration whose object holds port I/O, unmodified and with pvgen-as,
    and check each one as `pvgen kbuild` does (results cached per module; `*` in the table: cached)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pvgen.toolchain.sweep import run_sweep

    con = Console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=con, transient=True) as prog:
        task = prog.add_task("pvgen sweep", total=None)

        def progress(what: str, done: int) -> None:
            prog.update(task, description=what, advance=done)

        doc = run_sweep(list(only), limit, jobs or os.cpu_count() or 1, progress, cached_only=cached_only)
    if json_path:
        json_path.write_text(json.dumps(doc, indent=1) + "\n")
    out = Console()
    if not no_table:
        out.print(sweep_table(doc))
    out.print(f"{doc['modules_total']} modules (of {doc['modules_with_port_io']} selected with port I/O in Debian's "
              f"{doc['debian_modules']}): {doc['modules_ok']} ok, {doc['modules_failed_build']} failed to build, "
              f"{doc['silent_leftovers']} silent leftovers, {doc['kept_sites']} kept sites; sites "
              f"{_kinds(doc['sites_by_kind'])}; {doc['seconds']:.0f} s"
              + (f"; {doc['modules_not_built']} not built yet" if cached_only else ""), highlight=False)
    if doc["modules_ok"] != doc["modules_total"] or doc["silent_leftovers"]:
        sys.exit(1)
