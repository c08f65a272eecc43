"""CLI: `pvgen rewrite`, `pvgen verify` and `pvgen bench rewrite`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pvgen.errors import PvgenError
from pvgen.rewrite.core import RewriteResult, rewrite_text

_MODES = click.Choice(["code64", "code32", "code16", "code16gcc"])


def read_source(path: str) -> str:
    """Read an assembly file as text, bytes preserved (surrogateescape); one-line errors for bad input."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise PvgenError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise PvgenError(f"{path}: is a directory, not an assembly file") from None
    except OSError as exc:
        raise PvgenError(f"{path}: cannot read: {exc.strerror}") from None
    if not data.strip():
        raise PvgenError(f"{path}:1: empty file: nothing to rewrite (expected GNU as x86 assembly)")
    if b"\0" in data[:65536]:
        raise PvgenError(f"{path}: binary file (contains NUL bytes), not assembly text; "
                         "pvgen reads the .s output of `gcc -S` or preprocessed .S files")
    return data.decode("utf-8", errors="surrogateescape")


def write_text(path: str, text: str) -> None:
    Path(path).write_bytes(text.encode("utf-8", errors="surrogateescape"))


def summary_table(result: RewriteResult, path: str) -> None:
    from rich.console import Console
    from rich.table import Table

    counts = result.counts()
    table = Table(title=f"pvgen sites in {path}")
    table.add_column("kind")
    table.add_column("sites", justify="right")
    table.add_column("rewritten", justify="right")
    for kind in sorted(counts):
        rew = sum(1 for s in result.sites if s.kind == kind and s.rewritten)
        table.add_row(kind, str(counts[kind]), str(rew))
    table.add_row("total", str(len(result.sites)), str(len(result.rewritten)))
    Console(stderr=True).print(table)
    for s in result.sites:
        if not s.rewritten and s.kind != "report-only":
            click.echo(f"{s.file}:{s.line}: warning: `{s.text}` not rewritten: {s.reason}", err=True)


@click.command("rewrite")
@click.argument("src", type=click.Path(dir_okay=True))
@click.option("-o", "--output", "out", type=click.Path(), help="Rewritten assembly (default: stdout).")
@click.option("--sites", "sites_path", type=click.Path(), help="Write the site table as JSON.")
@click.option("--mode", type=_MODES, default="code64", show_default=True, help="Code mode at the start of the file.")
@click.option("--quiet", is_flag=True, help="No summary table.")
def rewrite_cmd(src: str, out: str | None, sites_path: str | None, mode: str, quiet: bool) -> None:
    """Rewrite the port-I/O instructions of SRC (GNU as x86) into pvgen runtime thunk calls."""
    result = rewrite_text(read_source(src), src, mode=mode)
    if out:
        write_text(out, result.text)
    else:
        click.echo(result.text, nl=False)
    if sites_path:
        Path(sites_path).write_text(json.dumps([s.to_json() for s in result.sites], indent=1) + "\n")
    if not quiet:
        summary_table(result, src)


COMMANDS: list[click.Command] = [rewrite_cmd]
