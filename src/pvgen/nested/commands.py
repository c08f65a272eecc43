"""CLI: `pvgen nested -- <command …>` runs a command where /dev/kvm is a real hardware-virtualization KVM."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("nested", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder the command may write (shared read-write at its own path); default: the current one.")
@click.option("--qemu", "force_qemu", is_flag=True,
              help="Boot the nested kernel even when this host has VMX/SVM (QEMU then uses -accel kvm).")
@click.option("--probe", "probe_outs", type=int, default=None,
              help="Run the built-in probe instead of a command: N `out`s, io_exits from KVM's statistics.")
@click.option("--memory", "memory_mb", default=2048, show_default=True, help="RAM of the nested machine, MiB.")
@click.option("--timeout", "timeout_s", default=1800.0, show_default=True, help="Give up after this many seconds.")
@click.option("--verbose", is_flag=True, help="Print the mode and wall time, and the nested kernel's console.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def nested(out_dir: Path | None, force_qemu: bool, probe_outs: int | None, memory_mb: int, timeout_s: float,
           verbose: bool, command: tuple[str, ...]) -> None:
    """Run COMMAND (e.g. `pvgen bench micro`) with /dev/kvm a real SVM/VMX KVM: directly on a host that has
    VMX/SVM, else one level down in Debian's kernel under QEMU with emulated SVM. Its stdout, stderr, the files it
    writes under --out and its exit status come back."""
    from pvgen.nested.platform import run_nested

    if probe_outs is not None:
        if command:
            raise click.UsageError("--probe runs the built-in probe: give it no command")
        command = (sys.executable, "-m", "pvgen.nested.probe", str(probe_outs))
    if not command:
        raise click.UsageError("no command: pvgen nested [OPTIONS] -- COMMAND [ARGS]…")
    res = run_nested(list(command), out_dir=out_dir, mode="qemu" if force_qemu else "auto", memory_mb=memory_mb,
                     timeout_s=timeout_s)
    if verbose:
        click.echo(res.console.rstrip(), err=True)
        click.echo(f"nested: {res.mode}, {res.seconds:.1f} s, exit status {res.status}", err=True)
    sys.exit(res.status)


COMMANDS = [nested]
