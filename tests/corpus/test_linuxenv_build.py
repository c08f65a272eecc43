"""The Linux driver environment builds: Kbuild objects, no undefined symbol after linking, exact stubs for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from pvgen.guest.linux import build as lxbuild
from pvgen.guest.linux import objects as elfobj
from pvgen.guest.linux.stubs import stub_names, stub_source, write_stubs


@pytest.fixture(scope="module")
def net(kernel_headers, linux_source_tarball) -> lxbuild.LinuxBuild:
    return lxbuild.build("net")


def test_kbuild_objects_reference_the_kernel(net):
    names = {p.name for p in net.drivers}
    assert names == {"ne2k-pci.o", "8390.o"}
    # What nm -u reports for the real objects: the kernel API the environment implements.
    for sym in ("alloc_netdev_mqs", "netif_rx", "__pci_register_driver", "request_threaded_irq",
                "_raw_spin_lock_irqsave", "jiffies", "__x86_return_thunk", "__fentry__"):
        assert sym in net.driver_undefined, sym
    assert len(net.driver_undefined) > 40


def test_module_entry_points_renamed(net):
    defined = elfobj.defined_symbols(net.drivers)
    assert {"lx_ne2k_pci_init_module", "lx_ne2k_pci_cleanup_module", "lx_8390_init_module"} <= defined
    assert "init_module" not in defined and "cleanup_module" not in defined


def test_kernel_only_sections_dropped(net):
    with open(net.relocatable, "rb") as f:
        names = {s.name for s in ELFFile(f).iter_sections()}
    assert not names & {"__mcount_loc", ".modinfo", ".orc_unwind", "__jump_table", ".return_sites"}
    assert not any(n.startswith(".debug") for n in names)
    assert not any(n in (".init.text", "__param", "__dyndbg") for n in names)


def test_environment_implements_every_symbol(net):
    # The net environment is complete: no generated stub is needed.
    assert net.stubs == []
    assert net.stub_object is None


def test_image_links_with_no_undefined_symbol(kernel_headers, linux_source_tarball, tmp_path):
    image = tmp_path / "net.elf"
    lxbuild.link("net", image)
    with open(image, "rb") as f:
        elf = ELFFile(f)
        undefined = [s.name for s in elf.get_section_by_name(".symtab").iter_symbols()
                     if s.name and s["st_shndx"] == "SHN_UNDEF" and s["st_info"]["bind"] != "STB_WEAK"]
        assert elf.header["e_entry"] >= 0xFFFFFFFF80000000
    assert undefined == []


def test_stub_generator_lists_exactly_the_missing_symbols(net):
    # Leave out the file that implements the interrupt API: exactly its symbols that the rest uses get stubs.
    irq_obj = next(o for o in net.env if o.name == "lx_irq.o")
    rest = [o for o in net.drivers + net.env if o != irq_obj]
    provided = lxbuild.harness_symbols()
    missing = elfobj.unresolved(rest, provided)
    implemented_there = elfobj.defined_symbols([irq_obj])
    used_elsewhere = elfobj.undefined_symbols(rest)
    assert set(missing) == implemented_there & used_elsewhere
    assert {"request_threaded_irq", "free_irq", "enable_irq", "disable_irq_nosync"} <= set(missing)


def test_runtime_symbols_are_never_stubbed(net, tmp_path):
    src = tmp_path / "uses_runtime.c"
    src.write_text("void __pvio_outb_dx(void); void pvio_tick(void); void f(void) { __pvio_outb_dx(); pvio_tick(); }\n")
    from pvgen.guest.build import CFLAGS, compile_source

    obj = compile_source(src, list(CFLAGS), out_dir=tmp_path)
    assert elfobj.unresolved([obj], set()) == []


def test_stub_source_and_object(tmp_path):
    syms = ["alpha_missing", "beta_missing"]
    text = stub_source(syms)
    assert stub_names(text) == syms
    assert 'hx_panic("unimplemented: %s", "alpha_missing")' in text
    obj = write_stubs(syms, tmp_path / "stubs.c")
    assert elfobj.defined_symbols([obj]) == set(syms)
    assert elfobj.undefined_symbols([obj]) == {"hx_panic"}


def test_stub_rejects_non_identifier():
    with pytest.raises(ValueError):
        stub_source(["not a symbol"])


@pytest.fixture(scope="module")
def disk(kernel_headers, linux_source_tarball) -> lxbuild.LinuxBuild:
    return lxbuild.build("disk")


def test_disk_set_stubs_only_what_the_workload_never_reaches(disk):
    assert {p.name for p in disk.drivers} == {"libata-sff.o", "iomap.o"}
    assert set(disk.stubs) == set(elfobj.unresolved(disk.drivers + disk.env, lxbuild.harness_symbols()))
    # libata-core, workqueues, devres: referenced by libata-sff.o, outside the PIO paths the workload drives.
    assert {"ata_host_register", "alloc_workqueue", "devm_request_threaded_irq"} <= set(disk.stubs)
    # What ata_sff_hsm_move reaches is implemented: completion, scatterlist walk, per-CPU and memory-map data.
    assert {"ata_qc_complete", "sg_next", "__preempt_count", "current_task", "vmemmap_base",
            "page_offset_base"} <= elfobj.defined_symbols(disk.env)
    # The PIO path itself is real code: libata-sff.o and lib/iomap.o define it, nothing of it is stubbed.
    used = {"ata_sff_tf_load", "ata_sff_exec_command", "ata_sff_check_status", "ata_sff_data_xfer",
            "ata_sff_std_ports", "ioread8", "iowrite8", "ioread16_rep", "iowrite16_rep", "ioport_map"}
    assert used <= elfobj.defined_symbols(disk.drivers)
    assert not used & set(disk.stubs)
    stub_defs = elfobj.defined_symbols([disk.stub_object])
    assert stub_defs == set(disk.stubs)


def test_disk_image_links_with_no_undefined_symbol(kernel_headers, linux_source_tarball, tmp_path):
    image = tmp_path / "disk.elf"
    lxbuild.link("disk", image)
    with open(image, "rb") as f:
        undefined = [s.name for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()
                     if s.name and s["st_shndx"] == "SHN_UNDEF" and s["st_info"]["bind"] != "STB_WEAK"]
    assert undefined == []


def test_unknown_set_is_an_error():
    from pvgen.errors import PvgenError

    with pytest.raises(PvgenError, match="unknown driver set"):
        lxbuild.build("floppy")


def test_rewritten_objects_call_the_runtime_and_need_no_stub(kernel_headers, linux_source_tarball):
    # The generated variant: the same Kbuild run with gcc -B<dir> (as -> pvgen-as); its port I/O becomes calls
    # of the runtime's thunks, which the stub generator leaves to the runtime object.
    from pvgen.toolchain import kbuild as tk

    lb = lxbuild.build("net", f"gcc -B{tk.bdir()}")
    pvio = {s for s in elfobj.undefined_symbols(lb.drivers) if s.startswith("__pvio_")}
    assert {"__pvio_inb_dx", "__pvio_outb_dx", "__pvio_rep_outsl", "__pvio_rep_insl"} <= pvio
    assert lb.stubs == []
    plain = lxbuild.build("net")
    assert plain.relocatable != lb.relocatable
    assert not {s for s in elfobj.undefined_symbols(plain.drivers) if s.startswith("__pvio_")}


def _port_io(obj: Path) -> list[str]:
    """The port-I/O instructions of an object (objdump)."""
    import re
    import subprocess

    text = subprocess.run(["objdump", "-d", str(obj)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\t((?:rep )?(?:in|out|ins|outs)[bwl]?) ", text)


@pytest.mark.parametrize("name", ["net", "pci"])
def test_config_accessors_are_built_with_the_drivers_compiler(kernel_headers, linux_source_tarball, name):
    # lx_pciconf.c plays arch/x86/pci/direct.c (built into vmlinux): the only port I/O of the environment, built
    # next to the drivers, so the rewritten variant's configuration accesses go through the runtime too.
    from pvgen.toolchain import kbuild as tk

    accessors = {"lx_pci_read32", "lx_pci_write32", "lx_pci_read16", "lx_pci_write16"}
    plain = lxbuild.build(name)
    conf = next(o for o in plain.env if o.name == "lx_pciconf.o")
    assert accessors <= elfobj.defined_symbols([conf])
    assert sorted(set(_port_io(conf))) == ["in", "out"]
    assert all(not _port_io(o) for o in plain.env if o != conf)          # no other port I/O in the environment
    lb = lxbuild.build(name, f"gcc -B{tk.bdir()}")
    conf = next(o for o in lb.env if o.name == "lx_pciconf.o")
    assert _port_io(conf) == []
    assert {"__pvio_outl_dx", "__pvio_inl_dx", "__pvio_inw_dx", "__pvio_outw_dx"} <= elfobj.undefined_symbols([conf])
    assert accessors.isdisjoint(elfobj.defined_symbols([o for o in lb.env if o != conf]))


def test_cli_build_reports_the_symbol_budget(kernel_headers, linux_source_tarball):
    from click.testing import CliRunner

    from pvgen.guest.linux.commands import linux

    res = CliRunner().invoke(linux, ["build", "net"])
    assert res.exit_code == 0, res.output
    assert "stubbed:     0" in res.output
    assert "by the harness/runtime (jiffies)" in res.output
