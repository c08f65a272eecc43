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


@linux.command("run")
@click.argument("workload", type=click.Choice(["net", "disk"]))
@click.option("--variant", default="original", show_default=True,
              help="original, coalesced, generated-batch or generated (bench/variants.py).")
@click.option("--ops", default=16, show_default=True, help="Frames each way (net) or 4 KiB requests (disk).")
@click.option("--seed", default=1, show_default=True)
@click.option("--arg", "extra", multiple=True, help="Extra key=value for the guest (verbose=1, hsm=1, ...).")
@click.option("--audit", is_flag=True, help="a rewritten variant runs the runtime's audit build: every value served "
              "without an exit is checked against the device")
@click.option("--image", type=click.Path(dir_okay=False), default=None,
              help="disk: the disk on this raw image file (as `pvgen bench disk --image`: created at 64 MiB if "
                   "missing or empty, else its first 64 MiB are OVERWRITTEN with the initial image; afterwards it "
                   "holds the final image)")
def run_cmd(workload: str, variant: str, ops: int, seed: int, extra: tuple[str, ...], audit: bool,
            image: str | None) -> None:
    """Boot one WORKLOAD image on the monitor with its devices (the bench's Linux kit), print the guest's console,
    the checks of every byte, and the measured phases' exits."""
    from pvgen.bench import workload as wl
    from pvgen.bench.linuxkit import LinuxKit
    from pvgen.bench.machine import run_guest
    from pvgen.bench.variants import VARIANTS
    from pvgen.errors import PvgenError

    if variant not in VARIANTS or VARIANTS[variant].driver != "linux":
        raise PvgenError(f"unknown Linux variant {variant!r}")
    if image is not None and workload != "disk":
        raise PvgenError("--image is a disk option")
    bad = [kv for kv in extra if "=" not in kv]
    if bad:
        raise PvgenError(f"--arg {bad[0]!r}: expected key=value")
    if workload == "net":
        from pvgen.bench.netbench import NetHost

        host = NetHost(seed=seed, ops=ops)
    else:
        from pvgen.bench.diskbench import DiskHost, open_image

        host = DiskHost(seed=seed, ops=ops, file=open_image(image) if image is not None else None)
    from pvgen.bench.runner import PHASES, phase_ops, phases, protocol_checks

    params = wl.Params(workload, ops, seed, blocks=getattr(host, "blocks", wl.DEFAULT_IMAGE // wl.BLOCK),
                       extra={**dict(kv.split("=", 1) for kv in extra), "run_audit": audit})
    try:
        run = run_guest(LinuxKit().spec(VARIANTS[variant], params, host))
        checks = host.verify(run) + protocol_checks(run.info)
    finally:
        if getattr(host, "file", None) is not None:
            host.file.close()       # fsync: the final image is durable when the command returns
    click.echo(run.console.rstrip())
    for line in checks:
        click.echo(line)
    try:      # the bench's phases: each with its own operation count (the probe is one; disk quarters a quarter)
        measured = phases(run.marks, PHASES[workload], phase_ops(workload, ops))
    except PvgenError as exc:
        measured = []
        click.echo(f"phases: {exc}")
    for p in measured:
        click.echo(f"{p.name}: {p.exits} exits over {p.ops} ops, {p.exits_per_op:.2f} per op, {p.wall_s * 1e3:.1f} ms "
                   f"(monitor {p.monitor_ns / 1e6:.1f} ms, driver delays {p.guest_delay_ns / 1e6:.1f} ms)")
    if run.exit_code != 0:
        raise PvgenError(f"guest exit code {run.exit_code}")
    failed = [c for c in checks if not c.startswith("ok")]
    if failed:
        raise PvgenError(failed[0])


COMMANDS = [linux]
