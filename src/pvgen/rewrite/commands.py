"""CLI: `pvgen rewrite`, `pvgen verify` and `pvgen bench rewrite`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pvgen.errors import PvgenError, RewriteError
from pvgen.outputs import OutputPath, write_output
from pvgen.rewrite.core import RewriteResult, rewrite_text

_MODES = click.Choice(["code64", "code32", "code16", "code16gcc"])


def code_size_options(f):
    """`--16`/`--32`/`--64` as GNU as spells them (the code size at the start of the file), for every command;
    `--mode codeNN` and `--bits NN` stay as aliases. The command takes them as **sizes, see code_size()."""
    for bits in (16, 32, 64):
        f = click.option(f"--{bits}", f"size{bits}", is_flag=True, help=f"Start in {bits}-bit code "
                         + ("(a .code16 file; assembled with as --32)." if bits == 16 else f"(as --{bits})."))(f)
    f = click.option("--mode", "size_mode", type=_MODES, default=None, hidden=True)(f)
    return click.option("--bits", "size_bits", type=click.Choice(["16", "32", "64"]), default=None, hidden=True)(f)


def code_size(sizes: dict) -> str | None:
    """The one code mode the options of code_size_options() name (None: not given); two different ones are an error."""
    given = {f"code{b}" for b in (16, 32, 64) if sizes.get(f"size{b}")}
    if sizes.get("size_mode"):
        given.add(sizes["size_mode"])
    if sizes.get("size_bits"):
        given.add(f"code{sizes['size_bits']}")
    if len(given) > 1:
        raise PvgenError(f"contradictory code sizes: {', '.join(sorted(given))}")
    return given.pop() if given else None


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
    if not data or data.isspace():
        raise PvgenError(f"{path}:1: empty file: nothing to rewrite (expected GNU as x86 assembly)")
    if data.find(b"\0", 0, 65536) >= 0:
        raise PvgenError(f"{path}: binary file (contains NUL bytes), not assembly text; "
                         "pvgen reads the .s output of `gcc -S` or preprocessed .S files")
    return data.decode("utf-8", errors="surrogateescape")


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
@click.option("-o", "--output", "out", type=OutputPath(), help="Rewritten assembly (default: stdout).")
@click.option("--sites", "sites_path", type=OutputPath(), help="Write the site table as JSON.")
@code_size_options
@click.option("--quiet", is_flag=True, help="No summary table.")
@click.option("--strict", is_flag=True, help="Fail on a port-I/O site that cannot be rewritten exactly.")
def rewrite_cmd(src: str, out: str | None, sites_path: str | None, quiet: bool, strict: bool, **sizes) -> None:
    """Rewrite the port-I/O instructions of SRC (GNU as x86) into pvgen runtime thunk calls (default: --64)."""
    mode = code_size(sizes) or "code64"
    result = rewrite_text(read_source(src), src, mode=mode)
    if strict:
        for s in result.sites:
            if not s.rewritten and s.kind != "report-only":
                raise RewriteError(f"{s.file}:{s.line}: `{s.text}` cannot be rewritten exactly: {s.reason}")
    if out:
        write_output(out, result.text)
    else:
        stream = click.get_binary_stream("stdout")
        stream.write(result.text.encode("utf-8", errors="surrogateescape"))
        stream.flush()
    if sites_path:
        write_output(sites_path, json.dumps([s.to_json() for s in result.sites], indent=1) + "\n")
    if not quiet:
        summary_table(result, src)


@click.command("verify")
@click.argument("src", type=click.Path(dir_okay=True))
@code_size_options
def verify_cmd(src: str, **sizes) -> None:
    """Assemble SRC and its rewrite with GNU as, disassemble both, and explain every difference by a site.

    The code size defaults to the file's first .code16/.code32, else 64."""
    from pvgen.rewrite.verify import verify_text

    mode = code_size(sizes)
    bits = None if mode is None else 16 if mode.startswith("code16") else int(mode[4:])
    report, result = verify_text(read_source(src), src, bits)
    io_sites = [s for s in result.sites if s.kind != "report-only"]
    click.echo(f"{src}: OK ({report.bits}-bit): {report.instructions} instructions in {report.sections} code "
               f"section(s); {report.replaced_total} port-I/O instructions replaced by thunk calls "
               f"({len(io_sites)} sites, {len(result.rewritten)} rewritten), {report.kept_io} left unchanged; "
               "no other difference")


@click.group("bench")
def bench_group() -> None:
    """Benchmarks."""


@bench_group.command("rewrite")
@click.argument("src", type=click.Path(), required=False)
@click.option("--json", "json_path", type=OutputPath(), help="Write the figures as JSON.")
@click.option("--runs", type=int, default=5, show_default=True, help="Runs (the median is reported).")
@click.option("--generate-lines", type=int, default=None,
              help="Generate a compiler-like x86-64 file of N lines (written to SRC, or a temporary file).")
@click.option("--pathological", is_flag=True,
              help="Benchmark the inputs that were once quadratic (bare `rep` lines, one line of `nop;`, a string "
                   "or comment left open, compiler-shaped code), each of --size-mb megabytes.")
@click.option("--size-mb", type=float, default=50.0, show_default=True, help="Size of each --pathological input.")
def bench_rewrite_cmd(src: str | None, json_path: str | None, runs: int, generate_lines: int | None,
                      pathological: bool, size_mb: float) -> None:
    """Rewrite time against GNU as time on the same file (median of several runs)."""
    import tempfile

    from pvgen.rewrite.bench import bench_pathological, bench_rewrite, generate

    if pathological:
        with tempfile.TemporaryDirectory(prefix="pvgen-bench-") as tmp:
            figs = bench_pathological(int(size_mb * 1e6), runs, tmp)
        for f in figs:
            click.echo(f"{f['input']}: {f['bytes'] / 1e6:.1f} MB, {f['lines']} lines, {f['sites']} sites: rewrite "
                       f"{f['rewrite_seconds']:.3f} s, as {f['as_seconds']:.3f} s, ratio {f['ratio']:.2f}; CPU ratio "
                       f"{f['cpu_ratio']:.2f} (goal <= 0.5, median of {runs})")
        if json_path:
            write_text(json_path, json.dumps(figs, indent=1) + "\n")
        return

    tmp = None
    if generate_lines:
        if src is None:
            tmp = tempfile.NamedTemporaryFile(prefix="pvgen-gen-", suffix=".s", delete=False)
            src = tmp.name
        write_output(src, generate(generate_lines))
    if src is None:
        raise PvgenError("bench rewrite: give FILE.s or --generate-lines N")
    try:
        fig = bench_rewrite(src, runs=runs)
    finally:
        if tmp is not None:
            Path(tmp.name).unlink(missing_ok=True)
    if generate_lines:
        fig["generated_lines"] = generate_lines
    click.echo(f"{src}: {fig['lines']} lines, {fig['sites']} sites: rewrite {fig['rewrite_seconds']:.3f} s, "
               f"as {fig['as_seconds']:.3f} s, ratio {fig['ratio']:.2f} (goal <= 0.5, median of {runs}); "
               f"CPU: rewrite {fig['rewrite_cpu_seconds']:.3f} s, as {fig['as_cpu_seconds']:.3f} s, "
               f"ratio {fig['cpu_ratio']:.2f}; "
               f"as a fresh process (start-up included) {fig['rewrite_process_seconds']:.3f} s, "
               f"ratio {fig['process_ratio']:.2f}")
    if json_path:
        write_output(json_path, json.dumps(fig, indent=1) + "\n")


COMMANDS: list[click.Command] = [rewrite_cmd, verify_cmd, bench_group]
