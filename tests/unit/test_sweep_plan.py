"""pvgen sweep's plan, without building: module selection, locating a module's Makefile, the generated Kbuild, the
document's totals."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvgen.errors import PvgenError
from pvgen.toolchain.sweep import document, locate, selected
from pvgen.toolchain.sweepbuild import SweepModule, prepare, wrapper_text


def test_only_globs_match_module_paths_and_directories():
    rel = "kernel/drivers/ata/pata_legacy.ko"
    assert selected(rel, [])
    assert selected(rel, ["drivers/ata"]) and selected(rel, ["drivers/ata/"]) and selected(rel, ["drivers/*"])
    assert selected(rel, ["drivers/ata/pata_legacy"]) and selected(rel, ["*/pata_*"])
    assert not selected(rel, ["drivers/at"]) and not selected(rel, ["drivers/net"])


def _tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    (tree / "drivers/foo/sub").mkdir(parents=True)
    (tree / "drivers/foo/Makefile").write_text("obj-$(CONFIG_A) += a.o sub/b.o\nobj-$(CONFIG_C) += bar/\n")
    (tree / "drivers/foo/a.c").write_text("int a;\n")
    (tree / "drivers/foo/sub/b.c").write_text("int b;\n")
    (tree / "drivers/other").mkdir()
    (tree / "drivers/other/x.h").write_text("\n")
    (tree / "lib").mkdir()
    (tree / "lib/iomap.c").write_text("EXPORT_SYMBOL(ioread8);\nEXPORT_SYMBOL(pci_iomap);\n")
    return tree


def test_locate_finds_the_makefile_that_names_the_object(tmp_path):
    tree = _tree(tmp_path)
    assert locate(tree, "kernel/drivers/foo/a.ko") == ("drivers/foo", "a")
    # installed as drivers/foo/sub/b.ko, built by drivers/foo/Makefile as sub/b.o
    assert locate(tree, "kernel/drivers/foo/sub/b.ko") == ("drivers/foo", "sub/b")
    with pytest.raises(PvgenError, match="no Makefile"):
        locate(tree, "kernel/drivers/foo/missing.ko")


def test_generated_kbuild_narrows_obj_m_and_links_the_runtime(tmp_path):
    tree = _tree(tmp_path)
    mods = [SweepModule("a", "drivers/foo", "kernel/drivers/foo/a.ko", {"in": 1}, {}),
            SweepModule("sub/b", "drivers/foo", "kernel/drivers/foo/sub/b.ko", {}, {"ioread8": 1})]
    plain = wrapper_text(tree, "drivers/foo", mods, "plain")
    assert f"include {tree}/drivers/foo/Makefile" in plain
    assert "obj-m := $(filter $(addsuffix .o,$(pvgen-modules)),$(obj-m))" in plain
    assert "pvgen-modules := a sub/b" in plain and "subdir-m :=" in plain and "pvio" not in plain
    pv = wrapper_text(tree, "drivers/foo", mods, "pvgen")
    assert "$(1)-y += $(1)-pvio-thunks.o $(1)-pvio-direct.o" in pv
    assert "sub/b-y += sub/b-pvgen-iomap.o" in pv and "-Dioread8=pvio_iomap_ioread8" in pv
    assert "a-pvgen-iomap" not in pv        # only accessor users carry a copy of lib/iomap.c
    moddir = prepare(tree, "drivers/foo", mods, "pvgen", tmp_path / "work")
    assert (moddir / "Kbuild").read_text() == wrapper_text(tree, "drivers/foo", mods, "pvgen")
    assert (moddir / "a-pvgen-drv.c").resolve() == (tree / "drivers/foo/a.c").resolve()
    assert (moddir / "sub/b-pvio-thunks.S").is_symlink() and (moddir / "sub/b-pvgen-iomap.c").is_symlink()
    # everything else of the tree is reachable at its usual place (relative includes)
    assert (moddir / "../other/x.h").resolve() == (tree / "drivers/other/x.h").resolve()
    assert (tree / "drivers/foo/Kbuild").exists() is False   # the tree itself is never written


def test_document_totals_count_failures_and_silent_leftovers():
    recs = [{"module": "a", "ok": True, "sites": {"in": 2}, "kept": [], "silent_leftovers": 0, "seconds": 1.0},
            {"module": "b", "ok": False, "sites": {"in": 1, "out": 3}, "kept": [{"reason": "r"}],
             "silent_leftovers": 2, "seconds": 2.0, "plain_matches_debian": False},
            {"module": "c", "ok": False, "failure": {"variant": "pvgen", "error": "e"}, "seconds": 0.5}]
    doc = document(recs, 4000, 3, 9.0, [], None)
    assert (doc["modules_total"], doc["modules_ok"], doc["modules_failed_build"]) == (3, 1, 1)
    assert doc["silent_leftovers"] == 2 and doc["kept_sites"] == 1 and doc["plain_differs_from_debian"] == 1
    assert doc["sites_by_kind"] == {"in": 3, "out": 3}
