"""The real ne2k-pci driver probes, opens, transmits and receives in the monitor; a stub stops the guest by name."""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path

import pytest

from pvgen.bench import workload as wl
from pvgen.devices import ne2000, pci
from pvgen.guest.linux import build as lxbuild
from pvgen.guest.linux import objects as elfobj
from pvgen.guest.linux.stubs import write_stubs

NIC_IO, NIC_IRQ = 0xC000, 11


class Peer:
    """Records what the NIC transmits; offers queued frames to it only when the ring has room and the guest has
    acknowledged the previous PRX (every batch is a fresh edge on the PIC)."""

    def __init__(self, frames: list[bytes]):
        self.sent: list[bytes] = []
        self.queue = deque(frames)
        self.nic: ne2000.Ne2000 | None = None
        self.on = False

    def send(self, frame: bytes) -> None:
        self.sent.append(bytes(frame))

    def pace(self) -> None:
        n = self.nic
        while self.on and self.queue and not n.isr & ne2000.ISR_PRX and n.started:
            if not n.rx_fits(len(self.queue[0])):   # the model's own free-space rule
                return
            if not n.receive(self.queue.popleft()):
                return


def boot(image: Path, cmdline: str, peer: Peer | None = None):
    from pvgen.vmm.machine import Machine

    with Machine(ram_mb=64) as m:
        if peer is not None:
            nic = ne2000.Ne2000(mac=wl.GUEST_MAC, backend=peer)
            peer.nic = nic
            write = nic.io_write

            def io_write(offset, size, value):
                write(offset, size, value)
                peer.pace()
            nic.io_write = io_write
            fn = pci.ne2000_function(nic, io_base=NIC_IO, irq_line=NIC_IRQ,
                                     platform_irq=lambda level: m.set_irq(NIC_IRQ, level), bus=m.ports)
            host = pci.PciHost()
            host.add(0, 0, pci.host_bridge())
            host.add(3, 0, fn)
            m.ports.register(pci.CONFIG_ADDRESS_PORT, 8, host)
            on_mark = m.hxdev.on_mark

            def mark(mid):
                on_mark(mid)
                if mid == wl.MARK_RX_START:
                    peer.on = True
                    peer.pace()
            m.hxdev.on_mark = mark
        m.boot(image, cmdline)
        return m.run(timeout=60)


@pytest.fixture(scope="module")
def net_image(kernel_headers, linux_source_tarball, tmp_path_factory) -> Path:
    image = tmp_path_factory.mktemp("lxenv") / "net.elf"
    lxbuild.link("net", image)
    return image


def test_ne2k_pci_probe_tx_rx(kvm, net_image):
    ops, seed = 8, 3
    rx = [wl.frame(seed, wl.TAG_RX, i) for i in range(ops)]
    peer = Peer(rx)
    res = boot(net_image, f"wl=net ops={ops} seed={seed}", peer)
    console = res.console.decode(errors="replace")
    assert res.stop == "exit" and res.code == 0, console
    # The real driver's probe message, printed through netdev_info with the kernel's %#lx and %pM.
    assert "RealTek RTL-8029(AS) found at 0xc000, IRQ 11, 02:00:00:00:00:01." in console
    assert peer.sent == [wl.frame(seed, wl.TAG_TX, i) for i in range(ops)]
    result = wl.parse_result(console)
    assert result["rx"] == ops and result["errors"] == 0
    assert result["rx_crc"] == wl.frames_crc(rx)
    assert [m for m, _ in res.marks] == [wl.MARK_PROBE_START, wl.MARK_PROBE_END, wl.MARK_TX_START, wl.MARK_TX_END,
                                         wl.MARK_RX_START, wl.MARK_RX_END]


def test_no_nic_is_reported(kvm, net_image):
    res = boot(net_image, "wl=net ops=1")
    console = res.console.decode(errors="replace")
    assert res.stop == "exit" and res.code == 2
    assert "probe found no device" in console


def test_called_stub_stops_the_guest_with_its_name(kvm, tmp_path):
    from pvgen.guest.build import CFLAGS, compile_source, harness_objects, link_image

    src = tmp_path / "calls_missing.c"
    src.write_text("void lx_missing_kernel_fn(void);\nint hx_main(void);\n"
                   "int hx_main(void) { lx_missing_kernel_fn(); return 0; }\n")
    obj = compile_source(src, list(CFLAGS), out_dir=tmp_path)
    missing = elfobj.unresolved([obj], elfobj.defined_symbols(harness_objects()))
    assert missing == ["lx_missing_kernel_fn"]
    image = link_image([obj, write_stubs(missing, tmp_path / "stubs.c")], tmp_path / "stub.elf")
    res = boot(image, "")
    assert res.stop == "panic"
    assert "unimplemented: lx_missing_kernel_fn" in res.console.decode(errors="replace")


@pytest.mark.parametrize("hsm", [0, 1], ids=["direct-calls", "ata_sff_hsm_move"])
def test_libata_sff_disk_workload(kvm, kernel_headers, linux_source_tarball, tmp_path, hsm):
    from pvgen.bench import diskbench
    from pvgen.devices import ata
    from pvgen.devices.diskimage import SECTOR_SIZE, MemoryDisk
    from pvgen.vmm.machine import Machine

    ops, seed, size = 8, 5, 4 << 20
    image = tmp_path / "disk.elf"
    lxbuild.link("disk", image)
    initial = bytes(wl.initial_image(seed, size))
    data = bytearray(initial)
    with Machine(ram_mb=64) as m:
        disk = ata.AtaDisk(MemoryDisk(size // SECTOR_SIZE, data), irq=lambda level: m.set_irq(14, level))
        ata.attach_primary(m.ports, disk)
        m.boot(image, f"wl=disk ops={ops} seed={seed} blocks={size // wl.BLOCK} hsm={hsm}")
        res = m.run(timeout=60)
    console = res.console.decode(errors="replace")
    assert res.stop == "exit" and res.code == 0, console
    assert "lxdisk: PVGEN ATA DISK" in console          # IDENTIFY's model string, read by ata_sff_data_xfer
    assert disk.metrics["cmd_ec"] == 1 and disk.metrics["cmd_c6"] == 1
    assert wl.parse_result(console)["hsm"] == hsm
    checks = diskbench.verify_disk(seed, ops, initial, bytes(data), console)
    assert all(c.startswith("ok:") for c in checks), checks


def test_cli_run_net_verifies_every_byte(kvm, kernel_headers, linux_source_tarball):
    from click.testing import CliRunner

    from pvgen.guest.linux.commands import linux

    res = CliRunner().invoke(linux, ["run", "net", "--ops", "4", "--seed", "7"])
    assert res.exit_code == 0, res.output
    assert "ok: 4 transmitted frames" in res.output and "ok: 4 received frames" in res.output
    assert re.search(r"^tx: \d+ exits", res.output, re.M)
