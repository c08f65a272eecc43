"""ELF handling of the driver environment on small gcc objects: symbol sets, section folding, renames, relinking."""

from __future__ import annotations

import subprocess
from pathlib import Path

from elftools.elf.elffile import ELFFile

from pvgen.guest.linux import objects as elfobj

MODULE_C = r"""
int helper_defined(int x) { return x + 1; }
extern int kernel_api(int);
extern unsigned long volatile jiffies;
__attribute__((section(".init.text"))) int init_module(void) { return kernel_api(helper_defined(0)) + (int)jiffies; }
__attribute__((section(".exit.text"))) void cleanup_module(void) { }
__attribute__((section("__param"))) const int param_block = 3;
__attribute__((section("__dyndbg"))) int dyndbg_desc = 4;
__attribute__((section("__mcount_loc"))) const void *mcount_entry = &helper_defined;
__attribute__((section(".modinfo"))) const char modinfo[] = "license=GPL";
"""


def compile_c(tmp_path: Path, name: str, text: str) -> Path:
    src = tmp_path / f"{name}.c"
    src.write_text(text)
    obj = tmp_path / f"{name}.o"
    subprocess.run(["gcc", "-O2", "-g", "-fno-pic", "-mcmodel=kernel", "-c", str(src), "-o", str(obj)], check=True)
    return obj


def sections(path: Path) -> set[str]:
    with open(path, "rb") as f:
        return {s.name for s in ELFFile(f).iter_sections()}


def test_symbol_sets(tmp_path):
    obj = compile_c(tmp_path, "mod", MODULE_C)
    assert {"helper_defined", "init_module", "cleanup_module"} <= elfobj.defined_symbols([obj])
    assert elfobj.undefined_symbols([obj]) == {"kernel_api", "jiffies"}
    # provided symbols and renamed ones (jiffies -> hx_jiffies) need no stub; the rest does
    assert elfobj.unresolved([obj], {"hx_jiffies"}) == ["kernel_api"]
    assert elfobj.unresolved([obj], {"kernel_api"}) == ["jiffies"]
    assert elfobj.unresolved([obj], {"kernel_api", "hx_jiffies"}) == []


def test_symbols_defined_by_another_object_are_resolved(tmp_path):
    a = compile_c(tmp_path, "a", MODULE_C)
    b = compile_c(tmp_path, "b", "int kernel_api(int x) { return x; }\n")
    assert elfobj.unresolved([a, b], {"hx_jiffies"}) == []


def test_prepare_driver_object_folds_sections_and_renames_entry_points(tmp_path):
    obj = compile_c(tmp_path, "mod", MODULE_C)
    out = elfobj.prepare_driver_object(obj, tmp_path / "out.o", "lx_mod")
    names = sections(out)
    assert not names & {".init.text", ".exit.text", "__param", "__dyndbg", "__mcount_loc", ".modinfo"}
    assert not any(n.startswith(".debug") for n in names)
    assert {".text.lx_init_text", ".text.lx_exit_text", ".rodata.lx___param", ".data.lx___dyndbg"} <= names
    defined = elfobj.defined_symbols([out])
    assert {"lx_mod_init_module", "lx_mod_cleanup_module", "helper_defined"} <= defined
    assert not defined & {"init_module", "cleanup_module"}


def test_link_relocatable_applies_renames(tmp_path):
    a = elfobj.prepare_driver_object(compile_c(tmp_path, "a", MODULE_C), tmp_path / "a2.o", "lx_a")
    b = compile_c(tmp_path, "b", "int kernel_api(int x) { return x; }\n")
    out = elfobj.link_relocatable([a, b], tmp_path / "all.o", renames={"jiffies": "hx_jiffies"})
    assert elfobj.undefined_symbols([out]) == {"hx_jiffies"}
    assert {"lx_a_init_module", "kernel_api"} <= elfobj.defined_symbols([out])


def test_symbol_cache_sees_a_rewritten_file(tmp_path):
    obj = compile_c(tmp_path, "x", "int first_symbol(void) { return 1; }\n")
    assert "first_symbol" in elfobj.defined_symbols([obj])
    other = compile_c(tmp_path, "y", "int second_symbol_longer_name(void) { return 2; }\n")
    obj.write_bytes(other.read_bytes())
    assert elfobj.defined_symbols([obj]) == {"second_symbol_longer_name"}
