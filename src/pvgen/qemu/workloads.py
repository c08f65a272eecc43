"""The `pvgen qemu` workloads as data: the modules under test, the kernel's modules they need, the QEMU devices, the
traced device model, the phases, and the /init script that runs every variant in one boot."""

from __future__ import annotations

from dataclasses import dataclass

from pvgen.bench import workload as wl
from pvgen.qemu.trace import MARK_SESSION, MARK_VARIANT, NE2000, PIIX_IDE, DeviceTrace

# The variants: which Kbuild build of the corpus target (toolchain/kbuild.py) is loaded.
VARIANTS = {"original": "plain", "generated": "pvgen"}
GUEST_MAC = "02:00:00:00:00:01"      # wl.GUEST_MAC: the source address of the frames the guest transmits


@dataclass(frozen=True)
class Workload:
    name: str
    target: str                       # the kbuild corpus target that builds the modules
    load: tuple[str, ...]             # our modules, in insmod order (rmmod in reverse)
    kernel_modules: tuple[str, ...]   # Debian's modules loaded first (modprobe, from the image)
    device: DeviceTrace
    phases: dict[str, tuple[int, int]]   # phase -> (start mark, end mark)
    params: tuple[tuple[str, str], ...] = ()   # (module, insmod parameters)

    def script(self, variants: list[str], seed: int, ops: int, blocks: int) -> str:
        lines = ["#!/bin/sh", "/bin/busybox --install -s", "mount -t proc proc /proc", "mount -t sysfs sysfs /sys",
                 "mount -t devtmpfs devtmpfs /dev", "echo PVGEN-BOOTED"]
        lines += [f"modprobe {m} || echo PVGEN-ERROR modprobe {m}" for m in self.kernel_modules]
        lines.append(f"pvqwl mark {MARK_SESSION}")
        for k, v in enumerate(variants):
            lines += [f"echo PVGEN-VARIANT {v}", f"pvqwl mark {MARK_VARIANT + k}"]
            lines += self._variant(k, v, seed, ops, blocks)
            lines += [f"rmmod {m.replace('-', '_')} || echo PVGEN-ERROR rmmod {m}" for m in reversed(self.load)]
        lines += ["echo PVGEN-DONE", "poweroff -f", ""]
        return "\n".join(lines)

    def _insmod(self, variant: str) -> str:
        params = dict(self.params)
        return " && ".join(f"insmod /pvgen/{variant}/{m}.ko {params.get(m, '')}".rstrip() for m in self.load) \
            + " || { echo PVGEN-ERROR insmod; dmesg | tail -n 5; }"

    def _variant(self, k: int, variant: str, seed: int, ops: int, blocks: int) -> list[str]:
        if self.name == "net":
            return [f"pvqwl mark {wl.MARK_PROBE_START}", self._insmod(variant), f"pvqwl mark {wl.MARK_PROBE_END}",
                    "ip link set eth0 up || echo PVGEN-ERROR link", f"pvqwl net eth0 {seed} {ops}",
                    "ip link set eth0 down"]
        # disk: variant k works on the master of IDE channel k (ata<k+1>), a disk of its own; libata probes in the
        # background and under TCG on a loaded host may take long: wait up to 120 s for its block device
        return [self._insmod(variant),
                f"dev=''; for i in $(seq 1200); do for b in /sys/block/sd*; do case $(readlink $b) in "
                f"*/ata{k + 1}/*) dev=/dev/${{b##*/}};; esac; done; [ -n \"$dev\" ] && break; sleep 0.1; done",
                f"[ -n \"$dev\" ] && pvqwl disk $dev {seed} {ops} {blocks} || echo PVGEN-ERROR no disk on ata{k + 1}"]

    def devices(self, netdev: str = "", images: list[str] = ()) -> list[str]:
        if self.name == "net":
            return ["-netdev", netdev, "-device", f"ne2k_pci,netdev=n0,mac={GUEST_MAC},romfile="]
        out = []    # the pc machine's own PIIX3 IDE function (00:01.1), channels ide.0 and ide.1
        for k, img in enumerate(images):
            out += ["-drive", f"file={img},format=raw,if=none,id=d{k},cache=writeback",
                    "-device", f"ide-hd,drive=d{k},bus=ide.{k},unit=0"]
        return out


NET = Workload("net", "ne2k-pci", ("8390", "ne2k-pci"), (), NE2000,
               {p: wl.PHASE_MARKS[p] for p in ("probe", "tx", "rx")})
DISK = Workload("disk", "libata", ("libata", "ata_piix"), ("sd_mod",), PIIX_IDE,
                {p: wl.PHASE_MARKS[p] for p in ("disk", "seq-write", "seq-read", "rand-write", "rand-read")},
                params=(("libata", "dma=0"),))       # PIO only: every data word through the data port
WORKLOADS = {w.name: w for w in (NET, DISK)}
