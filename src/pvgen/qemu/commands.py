"""`pvgen qemu net|disk`: the generated modules in Debian's kernel in QEMU, original and generated in one boot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from pvgen.qemu import session
from pvgen.qemu.report import json_report, print_report

DEFAULT_OPS = {"net": 32, "disk": 32}


def _device_ports(workload: str) -> set[int]:
    """The ports of the device under test in our monitor's machine (its NIC BAR; the primary ATA channel)."""
    if workload == "net":
        from pvgen.bench.linuxkit import NIC_IO_BASE

        return set(range(NIC_IO_BASE, NIC_IO_BASE + 0x20))
    from pvgen.devices.ata import ATA_PRIMARY_CMD, ATA_PRIMARY_CTL

    return set(range(ATA_PRIMARY_CMD, ATA_PRIMARY_CMD + 8)) | {ATA_PRIMARY_CTL}


def monitor_figures(workload: str, ops: int, seed: int) -> dict[str, dict[str, float]]:
    """The same driver and workload, unmodified, in our monitor (`pvgen bench --variants original --ports`): the
    I/O exits at the device's ports per operation, by phase (KVM_RUN returns with reason IO, by port)."""
    from pvgen.bench.commands import run_bench

    res = run_bench(workload, ops, "original", seed, 1, count_ports=True)["original"]
    if res.status != "ok":
        return {}
    ports = _device_ports(workload)
    out = {}
    for p in res.phases:
        dev = {k: v for k, v in p.breakdown.items() if k.startswith("io ") and int(k.split()[1], 16) in ports}
        n = sum(dev.values())
        out[p.name] = {"io_exits_per_op": n / p.ops if p.ops else None, "io_exits": n, "ops": p.ops,
                       "breakdown": dev}
    return out


def _command(workload: str) -> click.Command:
    @click.command(workload, help=f"The {workload} workload with Debian's kernel in QEMU: original and generated "
                                  "modules in one boot, port accesses per op from QEMU's trace (docs/qemu.md).")
    @click.option("--variants", default="original,generated", show_default=True, metavar="a,b")
    @click.option("--ops", type=int, default=DEFAULT_OPS[workload], show_default=True,
                  help="frames each way (net) or 4 KiB requests (disk)")
    @click.option("--seed", type=int, default=1, show_default=True)
    @click.option("--json", "json_path", required=True, type=click.Path(dir_okay=False), help="write the JSON here")
    @click.option("--monitor", is_flag=True, help="also run the unmodified driver in our monitor (pvgen bench "
                                                  "--variants original --ports) and show its I/O exits per op")
    @click.option("--console", "console_path", type=click.Path(dir_okay=False),
                  help="write the guest's serial console here")
    @click.option("--accel", type=click.Choice(["kvm", "tcg"]), default=None,
                  help="QEMU's accelerator (default: kvm where the host has VMX/SVM, else tcg)")
    def cmd(variants: str, ops: int, seed: int, json_path: str, monitor: bool, accel: str | None,
            console_path: str | None) -> None:
        names = session.check_variants(variants)
        results, info = session.run(workload, names, ops, seed, accel=accel)
        console = info.pop("console")
        if console_path:
            Path(console_path).write_text(console)
        mon = monitor_figures(workload, ops, seed) if monitor else None
        out = Console() if sys.stdout.isatty() else Console(width=140)
        print_report(results, workload, info, mon, out)
        Path(json_path).write_text(json.dumps(json_report(results, workload, {"ops": ops, "seed": seed}, info, mon),
                                              indent=2) + "\n")
        if any(r.status != "ok" for r in results.values()):
            sys.exit(1)

    return cmd


@click.group("qemu")
def qemu() -> None:
    """Generated modules in Debian's own kernel on QEMU's device models (net: ne2k_pci, disk: PIIX IDE)."""


qemu.add_command(_command("net"))
qemu.add_command(_command("disk"))

COMMANDS = [qemu]
