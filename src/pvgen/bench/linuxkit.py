"""The Linux kit: real ne2k-pci/8390 (net) objects in the driver environment, original or pvgen-rewritten, on the
monitor's PCI + NE2000 models, with a lossless receive pacer feeding the peer's frames into the NIC's ring."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pvgen.bench import workload as wl
from pvgen.bench.runner import GuestSpec, Unavailable
from pvgen.bench.variants import Variant
from pvgen.cache import workdir
from pvgen.errors import PvgenError


NIC_IO_BASE, NIC_IRQ, NIC_SLOT = 0xC000, 11, 3
ISR_OFFSET = 0x07      # DP8390 page 0: the driver acknowledges PRX here after draining the ring
PUMP_BURST = 8         # < the 9 frames one call of 8390's ei_receive() takes before acknowledging PRX


@dataclass
class RxPacer:
    """Wraps the NE2000 on the bus: after the guest's RX phase starts, hands the peer's queued frames to the NIC in
    bursts of at most PUMP_BURST, each time the driver acknowledges a receive interrupt (ISR write), and only while
    the receive ring has room (checked before offering, so the model never overflows and nothing is dropped: the
    driver sees a sender that waits for it, like a paced wire). Bursts are smaller than what 8390's ei_receive()
    drains per call, so no frame is left in the ring behind an acknowledged interrupt."""

    nic: object
    inbox: object                        # a deque of frames (NetHost.peer.inbox)
    after_inject: Callable[[], None] = lambda: None
    enabled: bool = False
    injected: int = 0
    name: str = "ne2000+pacer"
    deferred: bool = False               # pump at the end of the batch being replayed (attach_to), not at the ack
    _busy: bool = field(default=False, repr=False)
    _acks: int = field(default=0, repr=False)   # the NIC's PRX acknowledges the last pump saw (attach_to)

    def attach_to(self, pvbatch) -> None:
        """Under the batch monitor, the acknowledge that asks for frames is replayed inside a batch: the frames then
        arrive when the batch has been replayed (PvBatch.after_replay), after every access the guest queued before
        its exit, as a frame arriving during that exit would; the shadows follow (refresh).  The NIC then sits on
        the bus itself (no wrapper on every replayed access): the pacer watches its count of PRX acknowledges."""
        self.deferred = True
        self.after_inject = pvbatch.refresh
        self._acks = self.nic.prx_acks
        pvbatch.after_replay.append(self._pump_due)

    def _pump_due(self) -> None:
        acks = self.nic.prx_acks
        if acks != self._acks:
            self._acks = acks
            if self.enabled and self.inbox:
                self.pump()

    def __getattr__(self, item):         # everything else (shadow_read, fifo_read, port_classes...) is the NIC's
        return getattr(self.nic, item)

    def io_read(self, offset: int, size: int) -> int:
        return self.nic.io_read(offset, size)

    def io_write(self, offset: int, size: int, value: int) -> None:
        self.nic.io_write(offset, size, value)
        if not self.deferred and self.enabled and self.inbox and offset == ISR_OFFSET and value & 0x01 and \
                self.nic.page == 0:
            self.pump()         # (attached: the NIC counts the acknowledge, prx_acks, and _pump_due pumps)

    def pump(self) -> int:
        if self._busy:
            return 0
        self._busy, done = True, 0
        try:
            while self.inbox and done < PUMP_BURST and self.nic.rx_fits(len(self.inbox[0])):
                if not self.nic.receive(self.inbox[0]):
                    break
                self.inbox.popleft()
                done += 1
        finally:
            self._busy = False
        if done:
            self.injected += done
            self.after_inject()
        return done


def _attach_net(m, host, nic_box: dict, posted_tx: bool = True, wrapped: bool = True) -> None:
    """`wrapped`: the pacer sits on the bus around the NIC and pumps at the acknowledge's exit (no batch monitor);
    else the NIC is on the bus and the pacer pumps after the replay of a batch that acknowledged (attach_to)."""
    from pvgen.devices import pci
    from pvgen.devices.ne2000 import Ne2000
    from pvgen.protocol import PortClass

    # CR writes flush only when they start a transmission (docs/devices.md, "NE2000 write classes")
    nic = Ne2000(mac=wl.GUEST_MAC, backend=host.peer, cr_write_class=PortClass.DOORBELL_IF, posted_tx=posted_tx)
    pacer = RxPacer(nic, host.peer.inbox)
    pcihost = pci.PciHost()
    pcihost.add(0, 0, pci.host_bridge())
    fn = pci.ne2000_function(pacer if wrapped else nic, io_base=NIC_IO_BASE, irq_line=NIC_IRQ,
                             platform_irq=lambda level: m.set_irq(NIC_IRQ, level), bus=m.ports)
    pci.wire_intx(nic, fn, NIC_IRQ)     # on the NIC itself, not on the pacer that wraps it
    pcihost.add(NIC_SLOT, 0, fn)
    m.ports.register(pci.CONFIG_ADDRESS_PORT, 8, pcihost)
    on_mark = m.hxdev.on_mark

    def mark(mid: int) -> None:
        if mid == wl.MARK_RX_START:
            pacer.enabled = True
            pacer.pump()
        on_mark(mid)

    m.hxdev.on_mark = mark
    nic_box.update(nic=nic, pacer=pacer)


def _attach_disk(m, host, box: dict) -> None:
    """The primary ATA channel (0x1F0/0x3F6, IRQ 14) over the host's in-memory image, and a PCI host bridge with a
    PIIX3 IDE function in legacy mode for a PCI probe. The storage is the DiskHost's (its bytearray, or the
    `--image` file), as pv-ideal's, so every variant pays the same host storage cost and the final image is checked
    where the device wrote it."""
    from pvgen.devices import ata, pci

    disk = ata.AtaDisk(host.ata_backend(), irq=lambda level: m.set_irq(ata.ATA_PRIMARY_IRQ, level))
    ata.attach_primary(m.ports, disk)
    pcihost = pci.PciHost()
    pcihost.add(0, 0, pci.host_bridge())
    pcihost.add(1, 0, pci.isa_bridge())            # function 0 present, so a scan finds 00:01.1
    pcihost.add(1, 1, pci.ide_legacy_function())
    m.ports.register(pci.CONFIG_ADDRESS_PORT, 8, pcihost)
    box.update(disk=disk)


class LinuxKit:
    """Builds the Linux net image for a variant (Kbuild; pvgen-as for the rewritten variants) and attaches PCI +
    NE2000 + pacer. Missing pieces (Linux sources, the rewriting toolchain, the runtime) make it Unavailable."""

    def __init__(self) -> None:
        self._images: dict[str, Path] = {}

    def image(self, variant: Variant, workload: str, audit: bool = False) -> Path:
        """The guest image; `audit`: the rewritten variants link the runtime's audit build (every value served
        without an exit is logged and checked by the monitor, docs/protocol.md "Audit mode")."""
        audit = audit and variant.objects != "unmodified"
        key = f"{workload}-{variant.objects}" + ("-audit" if audit else "")
        if key in self._images:
            return self._images[key]
        try:
            from pvgen.guest import build as gbuild
            from pvgen.guest.linux import build as lxbuild
        except ImportError as exc:
            raise Unavailable(f"Linux driver environment: {exc}") from None
        if workload not in lxbuild.SETS:
            raise Unavailable(f"the Linux driver environment has no {workload!r} driver set yet "
                              f"(it has {', '.join(lxbuild.SETS)})")
        with workdir("bench-") as wd:
            tmp = wd / f"bench-linux-{key}.elf"
            try:
                if variant.objects == "unmodified":
                    lxbuild.link(workload, tmp)
                else:
                    _link_generated(workload, tmp, audit)
            except Unavailable:
                raise
            except PvgenError as exc:
                raise Unavailable(f"Linux {workload} image for {variant.name}: {exc}") from None
            # named by content: a concurrent run (another checkout sharing the cache) never replaces the image this
            # run boots, and identical builds share one file
            out = gbuild.cache_dir() / f"bench-linux-{key}-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:16]}.elf"
            os.replace(tmp, out)
        self._images[key] = out
        return out

    def spec(self, variant: Variant, params: wl.Params, host) -> GuestSpec:
        image = self.image(variant, params.workload, bool(params.extra.get("run_audit")))
        box: dict = {}
        if params.workload == "net":
            hooks = [lambda m: _attach_net(m, host, box, variant.posted_tx, variant.pvbatch_classes is None)]
        else:
            hooks = [lambda m: _attach_disk(m, host, box)]
        spec = GuestSpec(image, params.cmdline(), [], variant.coalesced_posted, variant.pvbatch_classes,
                         irq_notify=variant.irq_notify, models=variant.models,
                         extra={"machine_hooks": hooks, "devices": box})
        return spec


def _link_generated(workload: str, out: Path, audit: bool = False) -> Path:
    """Kbuild the drivers through pvgen-as (gcc -B<dir holding as -> pvgen-as>), link them with the batching
    runtime for the harness and pvio_boot.c, which registers the runtime's area before the workload's main."""
    from pvgen.guest import build as gbuild
    from pvgen.guest.linux import build as lxbuild
    from pvgen.guest.linux import objects as elfobj

    try:
        from pvgen.runtime import build as rt_build
        from pvgen.toolchain import kbuild as tk
    except ImportError as exc:
        raise Unavailable(f"rewriting toolchain/runtime: {exc}") from None
    with workdir("bench-") as tmp:
        runtime = rt_build.build("x86_64", "batch", Path(tmp) / "pvio-x86_64-batch.o",
                                 extra_cflags=("-DPVIO_AUDIT",) if audit else ())
        boot = gbuild.compile_source(wl.GUEST_DIR / "pvio_boot.c", list(gbuild.CFLAGS),
                                     include_dirs=[wl.GUEST_DIR, Path(rt_build.RUNTIME_DIR)])
        provided = elfobj.defined_symbols(gbuild.harness_objects() + [runtime])
        renamed = Path(tmp) / "drivers.o"
        with lxbuild.locked():      # the relocatable stays as built until it is copied
            lb = lxbuild.build_unlocked(workload, f"gcc -B{tk.bdir()}", provided)
            elfobj.prepare_object(lb.relocatable, renamed, {"hx_main": "bench_workload_main"})
        return gbuild.link_image([renamed, runtime, boot], out)
