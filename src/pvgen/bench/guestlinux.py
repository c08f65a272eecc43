"""`pvgen bench net --guest linux`: the guest is Debian's own kernel booted in the monitor (vmm/linuxboot.py) with a
busybox initramfs that loads the variant's modules and runs the bench's net workload through the real network
stack (qemu/guest/pvqwl.c, a raw packet socket), one boot per variant.

- original / coalesced: `ne2k-pci.ko` + `8390.ko` as Kbuild builds them (toolchain/kbuild.py, `plain`);
- generated-*: the same drivers through pvgen-as (`pvgen-batch`), their thunk calls resolved against `pvio.ko`
  (toolchain/pviomod.py), the batching runtime, loaded first: it registers its per-CPU area with the monitor's
  batch device at load; without the device it would stay direct.
The workload program marks its phases on the monitor's hx_mark port (PVQWL_MARK=hx), where the monitor snapshots
KVM's statistics, so exits per frame are KVM's own counters, as in the driver environment (docs/bench.md). The
monitor's devices are the bench's: PCI host bridge, the RTL-8029 NE2000 with the receive pacer and the peer, the
batch device for the generated variants, and the MC146818 RTC and POST port a kernel reads at boot. Needs a KVM
with VMX/SVM: here, `pvgen nested -- pvgen bench net --guest linux --json F` (docs/nested.md)."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from pvgen.bench import workload as wl
from pvgen.bench.netbench import NetHost, verify_net
from pvgen.bench.runner import GuestRun, GuestSpec, Unavailable
from pvgen.bench.variants import Variant
from pvgen.cache import workdir
from pvgen.errors import PvgenError
from pvgen.toolchain.linuxsrc import cache_root

DONE = "PVGEN-DONE"
CMDLINE = "console=ttyS0 nokaslr panic=-1 rdinit=/init quiet ipv6.disable=1"
RAM = 512 << 20
DEFAULT_VARIANTS = "original,generated-regs"
# Why the in-guest device models (`generated`, `generated-txdoorbell`) are refused here: in Debian's kernel with
# pvio.ko they lose whole transmitted frames (35-44 of 50 reach the peer; the monitor never sees the lost frames'
# byte-count writes, data or transmit start), while the same drivers verify in the driver environment; the cause is
# not found yet (docs/nested.md).  A shortcut that is not exact in some state is not published for that state: for a
# kernel guest the monitor publishes no models (vmm/linuxboot.py), and the bench says why instead of measuring.
NO_MODELS = ("the in-guest device models lose transmitted frames in Debian's kernel (cause under investigation, "
             "docs/nested.md): they are not published to a kernel guest")
# Why `coalesced` does not apply here: the kernel idles with `hlt`, which KVM handles itself (in-kernel LAPIC), so
# a write waiting in the coalesced ring reaches the device only at the next exit to the monitor.  The driver's ISR
# acknowledge (POSTED) that the receive pacing waits for, and the console's last line, then wait for ever (a first
# run with it did not finish).  The driver environment idles with an exit to the monitor, which drains the ring.
NO_COALESCED = ("the kernel idles with an in-KVM hlt, so posted writes coalesced in KVM's ring (the driver's "
                "receive acknowledge, the console) wait for an exit that never comes (docs/nested.md)")
DRIVERS = ("8390", "ne2k-pci")          # insmod order (ne2k-pci needs 8390's exports)
KERNEL_LOG = "eth0|ne2k|8390|pvio|timed out"   # the kernel's lines the console gets after the run
KERNEL_MARK = "PVGEN-KERNEL "


def init_script(kos: list[str], seed: int, ops: int, batching: bool) -> str:
    """/init: load the modules between the probe marks, bring eth0 up (no address: the kernel sends nothing of its
    own), run the workload, report whether the runtime batched, then the line the monitor stops at."""
    insmod = " && ".join(f"insmod /pvgen/m/{ko}" for ko in kos)
    lines = ["#!/bin/sh", "/bin/busybox --install -s", "mount -t proc proc /proc", "mount -t sysfs sysfs /sys",
             "mount -t devtmpfs devtmpfs /dev", "export PVQWL_MARK=hx"]
    if batching:
        lines.append("insmod /pvgen/m/pvio.ko || echo PVGEN-ERROR insmod pvio.ko")
    lines += [f"pvqwl mark {wl.MARK_PROBE_START}", f"{insmod} || echo PVGEN-ERROR insmod",
              f"pvqwl mark {wl.MARK_PROBE_END}", "ip link set eth0 up || echo PVGEN-ERROR link",
              f"pvqwl net eth0 {seed} {ops}",
              "s=/sys/class/net/eth0/statistics; echo \"PVGEN-NETSTAT $(for f in tx_packets tx_errors tx_dropped "
              "tx_aborted_errors tx_fifo_errors rx_packets rx_errors rx_dropped; do printf '%s=%s ' $f $(cat $s/$f); "
              "done)\"", "ip link set eth0 down"]
    if batching:
        lines.append("echo \"PVGEN-PVIO $(dmesg | grep -o 'pvio: batching on [0-9]* CPU' | tail -n 1)\"")
    lines += [f"dmesg | grep -E '{KERNEL_LOG}' | sed 's/^/{KERNEL_MARK}/'", f"echo {DONE}", "exec sh", ""]
    return "\n".join(lines)


@dataclass
class LinuxGuestHost(NetHost):
    """The bench's net host (peer frames injected by the pacer, transmitted frames recorded) with the checks a
    whole kernel needs: only the workload's EtherType is compared (anything else the kernel sent is counted in
    the checks), the init script's error lines fail the variant, and a batching variant must have registered."""

    batching: bool = False

    def verify(self, run: GuestRun) -> list[str]:
        ours = [f for f in self.peer.sent if int.from_bytes(f[12:14], "big") == wl.ETHERTYPE]
        checks = verify_net(self.seed, self.ops, ours, self.rx, run.console)
        other = len(self.peer.sent) - len(ours)
        checks.append(f"ok: the kernel sent {other} frames of its own (not compared)" if other < 16 else
                      f"FAIL: the kernel sent {other} frames of its own")
        checks += [f"FAIL: guest: {e}" for e in re.findall(r"^PVGEN-ERROR .*$", run.console, flags=re.M)]
        bad = [ln for ln in re.findall(rf"^{KERNEL_MARK}(.*)$", run.console, flags=re.M)
               if re.search(r"timed out|timeout|BUG|WARNING|reset", ln) and re.search(r"eth0|ne2k|8390|pvio", ln)]
        checks += [f"FAIL: kernel: {ln.strip()}" for ln in bad[:3]]
        return checks + (batching_checks(run) if self.batching else [])


class LinuxGuestKit:
    """Builds the initramfs of a variant and boots Debian's kernel in the monitor with the bench's devices."""

    def __init__(self) -> None:
        self._initrds: dict[tuple, Path] = {}

    def spec(self, variant: Variant, params: wl.Params, host) -> GuestSpec:
        if params.workload != "net":
            raise Unavailable("--guest linux runs the net workload (the disk's port I/O is in vmlinux's iomap)")
        if variant.driver != "linux":
            raise Unavailable("--guest linux: pv-ideal has no driver for a Linux kernel")
        if variant.coalesced_posted:
            raise Unavailable(f"--guest linux: {NO_COALESCED}")
        if variant.models:
            raise Unavailable(f"--guest linux: {NO_MODELS}")
        if params.extra.get("run_audit") and variant.objects != "unmodified":
            raise Unavailable("--guest linux: --audit needs the runtime's audit build, and pvio.ko is built without it")
        from pvgen.bench.linuxkit import _attach_net
        from pvgen.devices import mc146818
        from pvgen.qemu.kernel import ensure_kernel
        from pvgen.vmm import linuxboot

        kernel = ensure_kernel()
        batching = variant.objects != "unmodified"
        initrd = self.initrd(batching, params, kernel)
        watch = linuxboot.ConsoleWatch(DONE)
        box: dict = {}

        def devices(m) -> None:
            mc146818.attach(m.ports)
            _attach_net(m, host, box, variant.posted_tx, wrapped=variant.pvbatch_classes is None)

        def boot(m) -> None:
            m.guest_delay_ns = lambda: 0        # no harness: the kernel keeps no hx_udelay total
            linuxboot.load(m, kernel.image, CMDLINE, initrd)

        return GuestSpec(kernel.image, CMDLINE, [], variant.coalesced_posted, variant.pvbatch_classes,
                         irq_notify=variant.irq_notify, models=variant.models, ram=RAM, timeout_s=1800.0,
                         extra={"machine_hooks": [devices], "devices": box, "boot": boot, "console": watch,
                                "initrd": str(initrd), "kernel": kernel.version})

    def initrd(self, batching: bool, params: wl.Params, kernel) -> Path:
        key = (batching, params.seed, params.ops)
        if key in self._initrds:
            return self._initrds[key]
        from pvgen.qemu.helper import build_helper
        from pvgen.qemu.initramfs import build_initramfs
        from pvgen.toolchain import kbuild

        try:
            built = kbuild.build(kbuild.TARGETS["ne2k-pci"], kbuild.BATCH if batching else kbuild.PLAIN)
        except PvgenError as exc:
            raise Unavailable(f"Kbuild of ne2k-pci: {exc}") from None
        kos = [built.modules[m] for m in (("pvio",) if batching else ()) + DRIVERS]
        with workdir("guestlinux-") as wd:
            tmp = wd / "initrd.cpio"
            build_initramfs(tmp, init=init_script([f"{m}.ko" for m in DRIVERS], params.seed, params.ops, batching),
                            helper=build_helper(), modules={"m": kos}, kernel=kernel)
            # named by content: a concurrent run never replaces the archive this one boots
            out = cache_root() / "guestlinux" / f"initrd-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:16]}.cpio"
            out.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, out)
        self._initrds[key] = out
        return out


def prepare(variants: list[Variant]) -> None:
    """Build what the guests need (Kbuild modules, the workload program, the kernel image: all cached) here, so
    that a run one level down, where gcc runs emulated, finds them in the cache it shares. A piece that fails to
    build is left for the variant to report."""
    from pvgen.qemu.helper import build_helper
    from pvgen.qemu.kernel import ensure_kernel
    from pvgen.toolchain import kbuild

    try:
        ensure_kernel()
        build_helper()
        for kind in {kbuild.BATCH if v.objects != "unmodified" else kbuild.PLAIN for v in variants
                     if v.driver == "linux"}:
            kbuild.build(kbuild.TARGETS["ne2k-pci"], kind)
    except PvgenError:
        pass


def batching_checks(run: GuestRun) -> list[str]:
    """A generated variant must have batched: pvio.ko registered its area with the monitor."""
    pv = run.info.get("pvbatch") or {}
    line = re.search(r"^PVGEN-PVIO (.*)$", run.console, flags=re.M)
    said = line.group(1).strip() if line else "no PVGEN-PVIO line"
    if pv.get("registrations", 0) >= 1:
        return [f"ok: pvio.ko registered its area ({said})"]
    return [f"FAIL: pvio.ko did not register an area with the monitor, the runtime stayed direct ({said})"]
