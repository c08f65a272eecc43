"""The environment's PCI enumeration (configuration mechanism #1) against random configurations of the PCI model.

Hypothesis builds a bus 0 with random functions (ids, class, IRQ routing, I/O and memory BARs, multi-function
slots); the `pci` workload registers a catch-all driver and prints what every probe was given. Profiles:
"default" a few configurations; PVGEN_HYPOTHESIS_PROFILE=long many more.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvgen.devices import pci
from pvgen.guest.linux import build as lxbuild

settings.register_profile("lxpci-default", max_examples=5, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.register_profile("lxpci-long", max_examples=150, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
PROFILE = "lxpci-long" if os.environ.get("PVGEN_HYPOTHESIS_PROFILE") == "long" else "lxpci-default"


@st.composite
def function(draw, io_slot: int):
    vendor = draw(st.integers(1, 0xFFFE))
    nbars = draw(st.integers(0, 3))
    bars = []
    for i in range(nbars):
        if draw(st.booleans()):
            size = 1 << draw(st.integers(2, 7))
            # each function gets its own I/O window, so BARs never overlap
            bars.append(pci.Bar(i, size, io=True, base=0x1000 + io_slot * 0x400 + i * 0x100))
        else:
            size = 1 << draw(st.integers(4, 20))
            bars.append(pci.Bar(i, size, io=False, base=0xE0000000 + io_slot * 0x800000 + i * 0x200000))
    return pci.PciFunction(
        "f", vendor_id=vendor, device_id=draw(st.integers(0, 0xFFFF)),
        class_code=draw(st.integers(0, 0xFFFFFF)), revision=draw(st.integers(0, 255)),
        subsystem_vendor_id=draw(st.integers(0, 0xFFFF)), subsystem_id=draw(st.integers(0, 0xFFFF)),
        interrupt_pin=draw(st.integers(0, 4)), interrupt_line=draw(st.integers(0, 15)), bars=bars)


@st.composite
def buses(draw):
    slots = draw(st.lists(st.integers(1, 31), min_size=1, max_size=5, unique=True))
    layout = {}
    n = 0
    for slot in slots:
        fns = sorted(draw(st.sets(st.integers(1, 7), max_size=2)) | {0})
        for fn in fns:
            f = draw(function(n))
            n += 1
            if fn == 0 and len(fns) > 1:
                f.header_type = 0x80      # multi-function device (PCI 3.0, 6.2.1)
            layout[(slot, fn)] = f
    return layout


@pytest.fixture(scope="module")
def image(kernel_headers, linux_source_tarball, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lxpci") / "pci.elf"
    lxbuild.link("pci", out)
    return out


def run(image: Path, layout: dict) -> str:
    from pvgen.vmm.machine import Machine

    host = pci.PciHost()
    host.add(0, 0, pci.host_bridge())
    for (slot, fn), f in layout.items():
        host.add(slot, fn, f)
    with Machine(ram_mb=32) as m:
        m.ports.register(pci.CONFIG_ADDRESS_PORT, 8, host)
        m.boot(image, "wl=pci")
        res = m.run(timeout=30)
    console = res.console.decode(errors="replace")
    assert res.stop == "exit" and res.code == 0, console
    return console


@settings(settings.get_profile(PROFILE))
@given(layout=buses())
def test_every_function_is_probed_as_configured(kvm, image, layout):
    bases = {key: [b.base for b in f.bars] for key, f in layout.items()}
    bases[(0, 0)] = []
    console = run(image, layout)
    want = dict(layout)
    want[(0, 0)] = pci.host_bridge()
    seen = {}
    for m in re.finditer(r"PCIDEV 0000:00:(\w\w)\.(\d) vendor=(\w+) device=(\w+) class=(\w+) rev=(\w+) irq=(\d+) "
                         r"pin=(\d+) sub=(\w+):(\w+) hdr=(\w+)", console):
        seen[(int(m[1], 16), int(m[2]))] = m
    assert set(seen) == set(want), console
    for key, f in want.items():
        m = seen[key]
        assert (int(m[3], 16), int(m[4], 16)) == (f.vendor_id, f.device_id)
        assert (int(m[5], 16), int(m[6], 16)) == (f.class_code, f.revision)
        assert (int(m[7]), int(m[8])) == (f.interrupt_line, f.interrupt_pin)
        assert (int(m[9], 16), int(m[10], 16)) == (f.subsystem_vendor_id, f.subsystem_id)
        name = f"0000:00:{key[0]:02x}.{key[1]}"
        bars = {int(i): (kind, int(s, 16), int(e, 16))
                for i, kind, s, e in re.findall(rf"PCIBAR {re.escape(name)} (\d) (\w+) (\w+) (\w+)", console)}
        assert bars == {b.index: ("io" if b.io else "mem", b.base, b.base + b.size - 1) for b in f.bars}
        # pci_enable_device turned on exactly the decoding the BARs need, and the BARs are restored after sizing.
        cmd = int(re.search(rf"PCICMD {re.escape(name)} (\w+)", console)[1], 16)
        assert bool(cmd & pci.PCI_COMMAND_IO) == any(b.io for b in f.bars)
        assert bool(cmd & pci.PCI_COMMAND_MEMORY) == any(not b.io for b in f.bars)
        assert [b.base for b in f.bars] == bases[key]       # sizing restored every BAR
        assert f"PCIREMOVE {name}" in console
    assert f"PCIBOUND {len(want)}" in console and "PCIBOUND 0" in console


def test_bar_bases_survive_sizing(kvm, image):
    f = pci.PciFunction("nic", vendor_id=0x10EC, device_id=0x8029, class_code=0x020000, interrupt_pin=1,
                        interrupt_line=11, bars=[pci.Bar(0, 32, io=True, base=0xC000)], command=pci.PCI_COMMAND_IO)
    console = run(image, {(3, 0): f})
    assert "PCIBAR 0000:00:03.0 0 io 0xc000 0xc01f" in console
    assert f.bars[0].base == 0xC000 and f.command & pci.PCI_COMMAND_IO
