"""CLI: `pvgen linux boot`: Debian's kernel and a busybox initramfs in the monitor, to a line on ttyS0."""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

import click

INIT_LINE = "PVGEN-LINUX-INIT"
CMDLINE = "console=ttyS0 nokaslr panic=-1 rdinit=/init"
# The default initramfs's /init: the line the monitor waits for, with the kernel's own uptime, then a shell.
INIT = f"""#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
echo "{INIT_LINE} uptime=$(cut -d' ' -f1 /proc/uptime)"
exec sh
"""


def default_initrd(workdir: Path) -> Path:
    from pvgen.qemu.initramfs import build_initramfs
    from pvgen.qemu.kernel import ensure_kernel

    return build_initramfs(workdir / "init.cpio", init=INIT, helper=None, modules={}, kernel=ensure_kernel())


@click.group("linux")
def linux() -> None:
    """Real Linux driver objects in the harness, and Debian's kernel in the monitor."""


@linux.command("boot")
@click.option("--kernel", "image", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="bzImage; default: Debian's linux-image of linux-headers-amd64 (unpacked in the cache).")
@click.option("--initrd", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"initramfs; default: busybox whose /init prints {INIT_LINE}.")
@click.option("--append", default="", help="Added to the kernel command line.")
@click.option("--until", default=INIT_LINE, show_default=True, help="Stop when the console shows this text.")
@click.option("--ram", "ram_mb", default=512, show_default=True, help="Guest RAM in MiB.")
@click.option("--timeout", default=900.0, show_default=True, help="Give up after this many seconds.")
@click.option("--quiet", is_flag=True, help="Do not echo the guest's console.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write times and exits as JSON.")
def boot_cmd(image: Path | None, initrd: Path | None, append: str, until: str, ram_mb: int, timeout: float,
             quiet: bool, json_path: str | None) -> None:
    """Boot a Linux bzImage in the monitor (64-bit boot protocol, our 16550 as ttyS0, in-kernel PIC/PIT/LAPIC)
    until the console shows --until. Needs a KVM with VMX/SVM: here, run it under `pvgen nested --`."""
    from pvgen.vmm import linuxboot
    from pvgen.vmm.machine import Machine
    from pvgen.vmm.stats import print_table, write_json

    linuxboot.require_hardware_exits()
    if image is None:
        from pvgen.qemu.kernel import ensure_kernel

        image = ensure_kernel().image
    watch = linuxboot.ConsoleWatch(until, echo=None if quiet else sys.stdout.buffer)
    with tempfile.TemporaryDirectory(prefix="pvgen-linux-boot-") as tmp:
        initrd = initrd or default_initrd(Path(tmp))
        with Machine(ram_mb=ram_mb, console=watch) as m:
            linuxboot.load(m, image, f"{CMDLINE} {append}".strip(), initrd)
            t0 = time.perf_counter()
            res = m.run(timeout=timeout)
            unowned = (m.ports.unowned_reads, m.ports.unowned_writes)
    seconds = (watch.found_at or time.perf_counter()) - t0
    reached = res.stop == "exit"
    uptime = re.search(rb"uptime=([0-9.]+)", watch.seen)
    if not quiet:
        sys.stdout.write("\n")
    click.echo(f"linux boot: {'reached' if reached else 'did not reach'} {until!r} after {seconds:.1f} s "
               f"({res.stop}{': ' + res.message if res.message else ''})", err=True)
    print_table(res.report, title=f"KVM exits: Linux boot to {until!r}", file=sys.stderr)
    if json_path:
        write_json(json_path, {"schema": "pvgen-linux-boot/1", "kernel": str(image), "reached": reached,
                               "stop": res.stop, "seconds": seconds,
                               "guest_uptime_s": float(uptime.group(1)) if uptime else None,
                               "unowned_port_reads": unowned[0], "unowned_port_writes": unowned[1],
                               **res.report.to_json()})
    sys.exit(0 if reached else 1)
