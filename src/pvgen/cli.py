"""The `pvgen` command line: one group, each stage contributes its own subcommands."""

from __future__ import annotations

import errno
import importlib
import os
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


def one_line(exc: BaseException) -> str:
    """What the user reads for an error of a known kind: pvgen's own errors carry their context; an OSError names
    its file, or standard output when that is what failed (disk full, the reader gone)."""
    if not isinstance(exc, OSError):
        return str(exc)
    reason = exc.strerror or str(exc)
    if exc.filename is not None:
        return f"{exc.filename}: {reason}"
    if exc.errno == errno.EPIPE or _stdout_fails():
        return f"cannot write to standard output: {reason}"
    return reason


def _stdout_fails() -> bool:
    try:
        os.write(1, b"")      # a zero-byte write reports a full device or a closed descriptor, writes nothing
    except OSError:
        return True
    return False


def fail(message: str) -> None:
    """Print one line on stderr and exit 1. What is still buffered for stdout goes out first; when stdout itself is
    broken, it is pointed at /dev/null, so the interpreter's last flush at exit does not fail again, loudly."""
    try:
        if sys.stdout is not None:         # None: stdout was closed when the interpreter started
            sys.stdout.flush()
    except OSError:
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.close(null)
        except OSError:
            pass
    click.echo(f"pvgen: {message}", err=True)
    sys.exit(1)


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (PvgenError, OSError) as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            fail(one_line(exc))


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
    try:
        os.fstat(1)
    except OSError:
        fail("standard output is closed; redirect it to a file or to /dev/null")
    try:
        cli(obj={})
    except SystemExit as done:
        code = done.code
    except OSError as exc:        # raised outside a command: writing --help or a usage error
        fail(one_line(exc))
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError as exc:
        fail(one_line(exc))
    sys.exit(code)


if __name__ == "__main__":
    main()
