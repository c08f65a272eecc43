"""`pvgen runtime ...`: build the guest runtime for a target, and generate or check the protocol header."""

from __future__ import annotations

from pathlib import Path

import click

from pvgen import protocol
from pvgen.errors import PvgenError
from pvgen.runtime.build import BACKENDS, RUNTIME_DIR, TARGETS, build, export_kbuild, posted_out_cost

HEADER_PATH = RUNTIME_DIR / "pvio_protocol.h"


@click.group("runtime")
def runtime() -> None:
    """The guest runtime: thunks and a direct or batching back end."""


@runtime.command("build")
@click.option("--target", type=click.Choice(list(TARGETS)), required=True, help="Where the runtime runs.")
@click.option("--backend", type=click.Choice(BACKENDS), default="batch", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output: a relocatable object (.o), or a shared library for --target host.")
def build_cmd(target: str, backend: str, output: Path) -> None:
    """Compile thunks + back end for TARGET (warnings are errors)."""
    out = build(target, backend, output)
    click.echo(f"{out}: {backend} runtime, {TARGETS[target].doc}")


@runtime.command("header")
@click.option("--check", is_flag=True, help="Fail if the checked-in header differs from a fresh generation.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=HEADER_PATH,
              show_default=True)
def header_cmd(check: bool, output: Path) -> None:
    """Generate pvio_protocol.h from pvgen.protocol (the single source of truth)."""
    text = protocol.c_header()
    if check:
        have = output.read_text() if output.exists() else ""
        if have != text:
            raise PvgenError(f"{output} is stale: run `pvgen runtime header`")
        click.echo(f"{output}: current")
        return
    output.write_text(text)
    click.echo(f"{output}: written")


@runtime.command("export")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--module", required=True, help="The module's object name (obj-m := NAME.o).")
def export_cmd(dest: Path, module: str) -> None:
    """Copy the runtime sources into DEST for Kbuild and write DEST/Kbuild.pvio to include."""
    frag = export_kbuild(dest, module)
    click.echo(f"{frag}: add `include $(src)/{dest.name}/Kbuild.pvio` to the module's Kbuild")


@runtime.command("cost")
@click.option("-n", "--count", default=100_000, show_default=True, help="Posted OUTs in the measured loop.")
@click.option("--threshold", default=protocol.DEFAULT_THRESHOLD, show_default=True, help="Queue flush threshold.")
def cost_cmd(count: int, threshold: int) -> None:
    """Instructions per posted OUT (callgrind on the host build, thunk + back end + amortized flush)."""
    c = posted_out_cost(count, threshold)
    click.echo(f"posted outb, threshold {c.threshold}, {c.calls} calls: {c.thunk_inclusive:.2f} instructions in "
               f"thunk + back end (incl. amortized flush), {c.per_site:.2f} per rewritten site (+ lea/call/lea)")


COMMANDS = [runtime]
