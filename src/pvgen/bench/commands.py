"""`pvgen bench net|disk`: run the variants on one workload, print the table, write JSON and the plot."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from pvgen.bench import workload as wl
from pvgen.bench.diskbench import DiskHost, open_image
from pvgen.bench.kits import KITS
from pvgen.bench.machine import run_guest
from pvgen.bench.netbench import NetHost
from pvgen.bench.report import failures, print_report, write_json
from pvgen.bench.results import VariantResult, merge_rounds
from pvgen.bench.runner import run_variant
from pvgen.bench.variants import select
from pvgen.cache import sweep_stale
from pvgen.devices.diskimage import DiskImage
from pvgen.errors import PvgenError
from pvgen.outputs import OutputPath

DEFAULT_OPS = {"net": 200, "disk": 64}   # all five variants in about a minute each here (docs/bench.md)
DEFAULT_PV_BATCH = 1   # issue 5: "one doorbell per request"; --pv-batch B queues B requests per doorbell


def run_bench(workload: str, ops: int, variants: str | None, seed: int, pv_batch: int,
              console: Console | None = None, count_ports: bool = False,
              pv_irq: bool = False, audit: bool = False, rounds: int = 1,
              image: str | None = None, guest: str = "env") -> dict[str, VariantResult]:
    """Every selected variant on the same workload and seed, a fresh peer or disk image for each run; with several
    rounds the variants are interleaved (each round starts one variant later) and each phase is the median round
    (results.merge_rounds).  `image`: the disk on this file (diskbench.open_image), locked for the whole run and
    reset to the initial image before each variant.  `guest`: "env" (the driver environment) or "linux" (Debian's
    kernel in the monitor, bench/guestlinux.py: net only, a KVM with VMX/SVM)."""
    if workload == "disk" and ops < 4:
        raise PvgenError("disk needs --ops >= 4 (four quarters: seq write, seq read, random write, random read)")
    if ops < 1 or ops > 1_000_000:
        raise PvgenError(f"--ops {ops} is outside 1..1000000")
    if not 1 <= pv_batch <= 256:
        raise PvgenError(f"--pv-batch {pv_batch} is outside 1..256")
    if not 1 <= rounds <= 99:
        raise PvgenError(f"--rounds {rounds} is outside 1..99")
    if image is not None and workload != "disk":
        raise PvgenError("--image is a disk option")
    if guest == "linux":
        from pvgen.bench import guestlinux
        from pvgen.vmm.linuxboot import require_hardware_exits

        if workload != "net":
            raise PvgenError("--guest linux runs the net workload only so far (the disk workload in the kernel: "
                             "libata.ko with accessor redirection, ata_piix, sd_mod and O_DIRECT, is not built yet)")
        chosen = select(variants or guestlinux.DEFAULT_VARIANTS)
        guestlinux.prepare(chosen)       # the modules are built here, not by an emulated gcc one level down
        require_hardware_exits(f"pvgen bench {workload} --guest linux … (its modules are built and cached now)")
    elif guest != "env":
        raise PvgenError(f"--guest {guest!r}: expected env or linux")
    else:
        chosen = select(variants)
    sweep_stale()          # work directories a killed bench left behind; checks $PVGEN_CACHE before any variant
    disk_file = open_image(image) if image is not None else None
    try:
        return _run_rounds(workload, ops, chosen, seed, pv_batch, console, count_ports, pv_irq, audit, rounds,
                           disk_file, guest)
    finally:
        if disk_file is not None:
            disk_file.close()


def _run_rounds(workload: str, ops: int, chosen: list, seed: int, pv_batch: int, console: Console | None,
                count_ports: bool, pv_irq: bool, audit: bool, rounds: int,
                disk_file: DiskImage | None, guest: str = "env") -> dict[str, VariantResult]:
    params = wl.Params(workload, ops, seed=seed, batch=pv_batch, extra={"pv_irq": pv_irq, "run_audit": audit})
    console = console or Console(stderr=True)
    runs: dict[str, list[VariantResult]] = {v.name: [] for v in chosen}
    kits = KITS
    if guest == "linux":
        from pvgen.bench.guestlinux import LinuxGuestHost, LinuxGuestKit

        linux_kit = LinuxGuestKit()
        kits = {driver: linux_kit for driver in KITS}
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} runs"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(f"bench {workload}", total=len(chosen) * rounds)
        for r in range(rounds):
            for v in chosen[r % len(chosen):] + chosen[:r % len(chosen)]:
                done = runs[v.name]
                if done and done[-1].status != "ok":
                    progress.advance(task)
                    continue          # failed or unavailable: no point in another round
                progress.update(task, description=f"bench {workload} --ops {ops}: {v.name}"
                                + (f" (round {r + 1}/{rounds})" if rounds > 1 else ""))
                if guest == "linux":
                    host = LinuxGuestHost(seed, ops, batching=v.objects != "unmodified")
                else:
                    host = NetHost(seed, ops) if workload == "net" else DiskHost(seed, ops, file=disk_file)
                done.append(run_variant(v, kits[v.driver], run_guest, params, host, count_ports))
                progress.advance(task)
    return {name: merge_rounds(rs) for name, rs in runs.items()}


def environment() -> dict:
    """Where the figures come from: the commit, the host kernel and CPU count, the time of the run."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(__file__), timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"commit": commit, "kernel": platform.release(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _command(workload: str) -> click.Command:
    @click.command(workload, help=f"Measure the {workload} workload: exits/op and ops/s per variant (docs/bench.md).")
    @click.option("--ops", type=int, default=DEFAULT_OPS[workload], show_default=True,
                  help="operations (frames each way for net, 4 KiB requests for disk)")
    @click.option("--variants", default="", metavar="a,b,...",
                  help="original, coalesced, generated-batch, generated-regs, generated, pv-ideal (default: all; "
                       "with --guest linux: original,generated-regs,generated)")
    @click.option("--guest", type=click.Choice(["env", "linux"]), default="env", show_default=True,
                  help="env: the driver environment; linux: Debian's kernel in the monitor, insmod of the modules, "
                       "the workload through its network stack (net only; needs VMX/SVM: run it under `pvgen "
                       "nested --`, docs/nested.md)")
    @click.option("--seed", type=int, default=1, show_default=True, help="workload seed (frames, blocks, data)")
    @click.option("--pv-batch", type=int, default=DEFAULT_PV_BATCH, show_default=True,
                  help="pv-ideal: requests per doorbell (1 = one doorbell per request)")
    @click.option("--json", "json_path", required=True, type=OutputPath(), help="write the JSON here")
    @click.option("--plot", "plot_path", type=OutputPath(), help="write a PNG plot here")
    @click.option("--pv-irq", is_flag=True, help="pv-ideal: completion by interrupt instead of polling `used`")
    @click.option("--ports", is_flag=True, help="also count I/O exits by port (small per-exit cost; diagnosis)")
    @click.option("--rounds", type=int, default=1, show_default=True,
                  help="run every variant this many times, interleaved; each phase is the median round (a shared "
                       "machine's slow moments then fall on every variant)")
    @click.option("--audit", is_flag=True,
                  help="rewritten variants run the runtime's audit build: every value served without an exit is "
                       "checked against the device (a mismatch fails the variant); exit counts then are not the "
                       "product's")
    def cmd(ops: int, variants: str, seed: int, pv_batch: int, pv_irq: bool, json_path: str,
            plot_path: str | None, ports: bool, audit: bool, rounds: int, guest: str, image: str | None = None) -> None:
        results = run_bench(workload, ops, variants or None, seed, pv_batch, count_ports=ports, pv_irq=pv_irq,
                            audit=audit, rounds=rounds, image=image, guest=guest)
        # The files first: a table that cannot be printed (stdout full or gone) must not lose what was measured.
        write_json(json_path, results, workload, {"ops": ops, "seed": seed, "pv_batch": pv_batch, "pv_irq": pv_irq,
                                                       "ports": ports, "audit": audit, "rounds": rounds,
                                                       "image": image, "guest": guest,
                                                       "environment": environment()})
        if plot_path:
            from pvgen.bench.plot import plot

            plot(results, workload, plot_path)
        out = Console()
        if not out.is_terminal:
            out = Console(width=140)
        print_report(results, workload, out)
        if failures(results):
            sys.exit(1)
        if not any(r.status == "ok" for r in results.values()):
            click.echo("pvgen: no variant could run (see the reasons in the table)", err=True)
            sys.exit(2)

    if workload == "disk":
        cmd = click.option("--image", type=click.Path(dir_okay=False), default=None, help=IMAGE_HELP)(cmd)
    return cmd


IMAGE_HELP = ("the disk on this raw image file instead of in memory, locked while the bench runs: created at 64 MiB "
              "if missing or empty, else a regular file of at least 64 MiB whose first 64 MiB are OVERWRITTEN with "
              "the initial image before each variant; afterwards it holds the last variant's final image "
              "(docs/devices.md, durability)")


@click.group("bench")
def bench() -> None:
    """Benchmarks: exits and throughput of original vs pvgen-generated drivers, measured with KVM statistics."""


bench.add_command(_command("net"))
bench.add_command(_command("disk"))

COMMANDS = [bench]
