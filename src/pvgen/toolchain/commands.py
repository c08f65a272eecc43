"""CLI of the build-integration stage: `pvgen demo`, `pvgen kbuild`, `pvgen bench kbuild`."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from pvgen.errors import PvgenError
from pvgen.outputs import OutputPath, write_output


def _console():
    from rich.console import Console

    return Console()


def _checks_table(checks, title: str):
    from rich.table import Table

    t = Table(title=title)
    # I/O: instructions in the unmodified .ko; sites: rewritten by pvgen-as; left: I/O instructions outside the
    # runtime in the pvgen .ko; runtime: I/O instructions inside it (the direct back end); undef: __pvio symbols
    # left undefined after modpost.
    # objtool: warnings objtool printed for the module's objects (stack tracking, ORC unwind data).
    for col in ("module", "I/O", "sites", "left", "runtime", "undef", "objtool", "result"):
        t.add_column(col, justify="right" if col not in ("module", "result") else "left")
    for c in checks:
        t.add_row(c.module, str(sum(c.plain_io.values())), str(sum(c.sites.values())), str(len(c.leftover)),
                  str(c.runtime_io), str(len(c.undefined_pvio)), str(len(c.objtool_warnings)), "[green]ok" if c.ok else "[red]FAIL")
    return t


def _sites_table(pv, title: str):
    from rich.table import Table

    from pvgen.toolchain.corpus import site_table

    per_file = site_table(pv)
    kinds = sorted({k for c in per_file.values() for k in c})
    t = Table(title=title)
    t.add_column("file")
    for k in kinds:
        t.add_column(k, justify="right")
    t.add_column("total", justify="right")
    for name, c in per_file.items():
        t.add_row(name, *[str(c.get(k, 0)) for k in kinds], str(sum(c.values())))
    return t


def _report(checks) -> bool:
    ok = all(c.ok for c in checks)
    for c in checks:
        for p in c.problems():
            click.echo(f"{c.target}/{c.module}: {p}", err=True)
    return ok


@click.command()
@click.option("--force", is_flag=True, help="Rebuild even when the cached builds are current.")
def demo(force: bool) -> None:
    """Build Linux ne2k-pci + 8390 through Kbuild with pvgen-as and the direct runtime, and verify them."""
    from pvgen.toolchain.corpus import check_target
    from pvgen.toolchain.kbuild import DEMO_TARGET, make_command
    from pvgen.toolchain.linuxsrc import headers_dir

    con = _console()
    with con.status(f"building {DEMO_TARGET} (unmodified and with pvgen) through Kbuild..."):
        checks, plain, pv = check_target(DEMO_TARGET, force=force)
    con.print("Kbuild recipe: " + shlex.join(make_command(headers_dir(), pv.dir, True)), highlight=False,
              soft_wrap=True, markup=False)
    con.print(f"modules: {', '.join(str(p) for p in pv.modules.values())}"
              + (" (cached)" if pv.cached else f" ({pv.seconds:.1f} s)"), markup=False)
    con.print(_sites_table(pv, "site table (pvgen-as, per file and kind)"))
    con.print(_checks_table(checks, "verification (capstone over every executable section of the .ko)"))
    if not _report(checks):
        sys.exit(1)
    total = sum(sum(c.sites.values()) for c in checks)
    con.print(f"[green]OK[/]: {total} port-I/O instructions rewritten, none left outside the runtime, "
              "site counts equal to the unmodified build, every __pvio symbol resolved, objtool silent")


@click.command()
@click.argument("targets", nargs=-1)
@click.option("--print-bdir", is_flag=True, help="Create and print the directory for `gcc -B<dir>` (as -> pvgen-as).")
@click.option("--list", "list_", is_flag=True, help="List the corpus targets.")
@click.option("--force", is_flag=True, help="Rebuild even when the cached builds are current.")
def kbuild(targets: tuple[str, ...], print_bdir: bool, list_: bool, force: bool) -> None:
    """Build corpus TARGETS (default: all) unmodified and with pvgen, and verify the rewritten modules."""
    from pvgen.toolchain import kbuild as kb

    if print_bdir:
        click.echo(kb.bdir())
        return
    if list_:
        for t in kb.TARGETS.values():
            click.echo(f"{t.name}: {', '.join(m.source for m in t.modules)}" + (f"  [{t.note}]" if t.note else ""))
        return
    from pvgen.toolchain.corpus import check_target

    con = _console()
    names = list(targets) or list(kb.TARGETS)
    for n in names:
        if n not in kb.TARGETS:
            raise PvgenError(f"unknown corpus target {n!r}; known: {', '.join(kb.TARGETS)}")
    checks = []
    for n in names:
        with con.status(f"building {n} through Kbuild..."):
            checks += check_target(n, force=force)[0]
    con.print(_checks_table(checks, "pvgen Kbuild corpus"))
    if not _report(checks):
        sys.exit(1)


@click.group()
def bench() -> None:
    """Benchmarks."""


@bench.command("kbuild")
@click.option("--json", "json_path", type=OutputPath(Path), help="Write the figures here.")
@click.option("--runs", default=3, show_default=True, help="Clean builds per configuration (median).")
@click.option("--target", "targets", multiple=True, help="Corpus targets (default: all).")
def bench_kbuild(json_path: Path | None, runs: int, targets: tuple[str, ...]) -> None:
    """Clean Kbuild build time of the corpus with and without pvgen-as (same objects; median; -j2)."""
    from pvgen.toolchain import kbuild as kb
    from pvgen.toolchain.kbench import bench_kbuild as run_bench
    from pvgen.toolchain.kbench import bench_startup

    names = list(targets) or list(kb.TARGETS)
    for n in names:
        if n not in kb.TARGETS:
            raise PvgenError(f"unknown corpus target {n!r}; known: {', '.join(kb.TARGETS)}")
    con = _console()
    with con.status("clean Kbuild builds") as st:
        doc = run_bench(names, runs, status=st.update)
        st.update("start-up of pvgen-as on a site-free file")
        doc["startup"] = bench_startup()
    mw, mc = doc["median_wall_seconds"], doc["median_cpu_seconds"]
    con.print(f"Kbuild clean builds of {', '.join(names)} (-j2, median of {runs}):", highlight=False)
    con.print(f"  wall: as {mw['as']:.2f} s, pvgen-as {mw['pvgen-as']:.2f} s, ratio {doc['wall_ratio']:.3f} "
              f"({doc['wall_overhead_percent']:+.1f} %, goal <= +5 %)", highlight=False)
    con.print(f"  CPU:  as {mc['as']:.2f} s, pvgen-as {mc['pvgen-as']:.2f} s, ratio {doc['cpu_ratio']:.3f} "
              f"({doc['cpu_overhead_percent']:+.1f} %)", highlight=False)
    su = doc["startup"]["median_seconds"]
    con.print(f"  site-free file: as {su['as'] * 1000:.1f} ms, gcc -B launcher {su['launcher'] * 1000:.1f} ms, "
              f"pvgen-as {su['pvgen-as'] * 1000:.1f} ms", highlight=False)
    if json_path:
        write_output(json_path, json.dumps(doc, indent=2) + "\n")


@click.command("check-object")
@click.argument("objects", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--quiet", is_flag=True, help="No line for an object that passes.")
def check_object(objects: tuple[str, ...], quiet: bool) -> None:
    """Fail when OBJECTS (.o, .ko, linked images) hold port I/O outside the runtime: the check pvgen-as makes,
    for objects built where pvgen-as may have been bypassed (clang's integrated assembler, LTO, a build that
    runs its own assembler)."""
    from pvgen.toolchain.objcheck import leftovers
    from pvgen.toolchain.objscan import symbol_references, undefined_symbols

    failed = False
    for obj in objects:
        bad, _ = leftovers(obj)
        for b in bad:
            insn = f"{b.hit.mnemonic} {b.hit.operands}".strip()
            where = b.where if b.where.startswith(obj) else f"{obj}: {b.where}"
            func = f" in {b.hit.symbol}" if b.hit.symbol else ""
            click.echo(f"{where}: error: port I/O `{insn}`{func} outside the runtime, not rewritten (assembled "
                       "without pvgen-as? clang: -no-integrated-as; LTO: -B on the link line; docs/toolchain.md)",
                       err=True)
        failed = failed or bool(bad)
        if not bad and not quiet:
            thunks = frozenset(n for n in undefined_symbols(obj) if n.startswith("__pvio"))
            calls = sum(symbol_references(obj, thunks).values()) if thunks else 0
            click.echo(f"{obj}: no port I/O outside the runtime ({calls} references to the runtime's thunks)")
    if failed:
        sys.exit(1)


COMMANDS = [demo, kbuild, bench, check_object]
