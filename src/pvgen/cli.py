"""The `pvgen` command line: one group, each stage contributes its own subcommands."""

from __future__ import annotations

import importlib
import sys

import click

from pvgen.errors import PvgenError

# Each stage owns a `commands` module exposing COMMANDS: a list of click commands or groups.
# A stage whose module is not present yet simply contributes nothing.
STAGE_COMMANDS = [
    "pvgen.rewrite.commands",
    "pvgen.toolchain.commands",
    "pvgen.runtime.commands",
    "pvgen.vmm.commands",
    "pvgen.bench.commands",
    "pvgen.guest.linux.commands",
    "pvgen.qemu.commands",
    "pvgen.nested.commands",
]


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PvgenError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"pvgen: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="pvgen")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """pvgen: turn existing x86 drivers into paravirtual drivers at assembly time."""
    ctx.ensure_object(dict)["debug"] = debug


def _merge(group: click.Group, cmd: click.Command) -> None:
    """Add cmd to group; two stages contributing a group of the same name (e.g. `bench`) are merged."""
    have = group.commands.get(cmd.name)
    if isinstance(have, click.Group) and isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _merge(have, sub)
    else:
        group.add_command(cmd)


for _mod in STAGE_COMMANDS:
    try:
        _m = importlib.import_module(_mod)
    except ModuleNotFoundError as _e:
        if _e.name and _mod.startswith(_e.name):
            continue
        raise
    for _c in getattr(_m, "COMMANDS", []):
        _merge(cli, _c)


def main() -> None:
    cli(obj={})


if __name__ == "__main__":
    main()
