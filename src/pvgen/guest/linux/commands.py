"""`pvgen linux`: build the Linux driver environment's guest images and list what they need from the kernel."""

from __future__ import annotations

from pathlib import Path

import click

from pvgen.guest.linux import build as lxbuild
from pvgen.guest.linux import objects as elfobj


@click.group("linux")
def linux() -> None:
    """Real Linux 6.1 driver objects (Kbuild) in the CPL3 guest harness (docs/linux-env.md)."""


@linux.command("build")
@click.argument("name", type=click.Choice(sorted(lxbuild.SETS)))
@click.option("--cc", default=None, help='Compiler for the driver objects, e.g. "gcc -B<dir>" for pvgen-as.')
@click.option("--image", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also link a guest image here (with the harness).")
def build_cmd(name: str, cc: str | None, image: Path | None) -> None:
    """Build driver set NAME (net: ne2k-pci + 8390; disk: libata-sff + lib/iomap) with its environment."""
    lb = lxbuild.link(name, image, cc) if image else lxbuild.build(name, cc)
    click.echo(f"relocatable: {lb.relocatable}")
    if image:
        click.echo(f"image:       {image}")
    click.echo(f"drivers:     {' '.join(p.name for p in lb.drivers)} "
               f"({len(lb.driver_undefined)} undefined kernel symbols)")
    implemented = sorted(set(lb.driver_undefined) & elfobj.defined_symbols(lb.env))
    elsewhere = sorted(set(lb.driver_undefined) - set(implemented) - set(lb.stubs))
    click.echo(f"implemented: {len(implemented)} by the environment, {len(elsewhere)} by the harness/runtime"
               + (f" ({', '.join(elsewhere)})" if elsewhere and len(elsewhere) <= 12 else ""))
    click.echo(f"stubbed:     {len(lb.stubs)}" + (f" ({', '.join(lb.stubs)})" if lb.stubs else ""))


COMMANDS = [linux]
