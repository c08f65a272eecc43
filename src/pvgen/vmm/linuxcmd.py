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


def init_script(modules: list[str]) -> str:
    """The default initramfs's /init: load `modules`, then the line the monitor waits for (the kernel's uptime, the
    PCI functions it found, its network interfaces and block devices), then a shell."""
    loads = "".join(f"modprobe {m} || echo 'modprobe {m} failed'\n" for m in modules)
    return f"""#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
{loads}pci=$(for d in /sys/bus/pci/devices/*; do printf '%s=%s:%s ' ${{d##*/}} $(cat $d/vendor $d/device); done)
echo "{INIT_LINE} uptime=$(cut -d' ' -f1 /proc/uptime) pci: $pci net: $(ls /sys/class/net) block: $(ls /sys/block)"
exec sh
"""


def default_initrd(workdir: Path, modules: list[str]) -> Path:
    from pvgen.qemu.initramfs import build_initramfs
    from pvgen.qemu.kernel import ensure_kernel

    return build_initramfs(workdir / "init.cpio", init=init_script(modules), helper=None, modules={},
                           kernel=ensure_kernel(), kernel_modules=modules)


@click.group("linux")
def linux() -> None:
    """Real Linux driver objects in the harness, and Debian's kernel in the monitor."""


@linux.command("boot")
@click.option("--kernel", "image", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="bzImage; default: Debian's linux-image of linux-headers-amd64 (unpacked in the cache).")
@click.option("--initrd", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"initramfs; default: busybox whose /init prints {INIT_LINE}.")
@click.option("--modules", default="", help="Debian kernel modules the default /init loads first, e.g. "
              "ne2k-pci,ata_piix (with their dependencies).")
@click.option("--append", default="", help="Added to the kernel command line.")
@click.option("--until", default=INIT_LINE, show_default=True, help="Stop when the console shows this text.")
@click.option("--ram", "ram_mb", default=512, show_default=True, help="Guest RAM in MiB.")
@click.option("--timeout", default=900.0, show_default=True, help="Give up after this many seconds.")
@click.option("--quiet", is_flag=True, help="Do not echo the guest's console.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write times and exits as JSON.")
def boot_cmd(image: Path | None, initrd: Path | None, modules: str, append: str, until: str, ram_mb: int, timeout: float,
             quiet: bool, json_path: str | None) -> None:
    """Boot a Linux bzImage in the monitor (64-bit boot protocol, our 16550 as ttyS0, in-kernel PIC/PIT/LAPIC, PCI
    host bridge, NE2000, ATA, the batch device) until the console shows --until. Needs a KVM with VMX/SVM: here, run it under `pvgen nested --`."""
    from pvgen.vmm import linuxboot
    from pvgen.vmm.machine import Machine
    from pvgen.vmm.stats import print_table, write_json

    linuxboot.require_hardware_exits()
    if image is None:
        from pvgen.qemu.kernel import ensure_kernel

        image = ensure_kernel().image
    watch = linuxboot.ConsoleWatch(until, echo=None if quiet else sys.stdout.buffer)
    with tempfile.TemporaryDirectory(prefix="pvgen-linux-boot-") as tmp:
        initrd = initrd or default_initrd(Path(tmp), [x.strip() for x in modules.split(",") if x.strip()])
        with Machine(ram_mb=ram_mb, console=watch) as m:
            linuxboot.attach_devices(m)
            linuxboot.load(m, image, f"{CMDLINE} {append}".strip(), initrd)
            t0 = time.perf_counter()
            res = m.run(timeout=timeout)
            unowned = (m.ports.unowned_reads, m.ports.unowned_writes)
    seconds = (watch.found_at or time.perf_counter()) - t0
    reached = res.stop == "exit"
    uptime = re.search(rb"uptime=([0-9.]+)", watch.seen)
    at = watch.seen.find(until.encode())
    init_line = watch.seen[at:].split(b"\n", 1)[0].decode(errors="replace").strip() if reached and at >= 0 else ""
    if not quiet:
        sys.stdout.write("\n")
    click.echo(f"linux boot: {'reached' if reached else 'did not reach'} {until!r} after {seconds:.1f} s "
               f"({res.stop}{': ' + res.message if res.message else ''})", err=True)
    print_table(res.report, title=f"KVM exits: Linux boot to {until!r}", file=sys.stderr)
    if json_path:
        write_json(json_path, {"schema": "pvgen-linux-boot/1", "kernel": str(image), "reached": reached,
                               "stop": res.stop, "seconds": seconds, "init_line": init_line,
                               "guest_uptime_s": float(uptime.group(1)) if uptime else None,
                               "unowned_port_reads": unowned[0], "unowned_port_writes": unowned[1],
                               **res.report.to_json()})
    sys.exit(0 if reached else 1)
