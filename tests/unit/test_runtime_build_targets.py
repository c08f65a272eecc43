"""`pvgen runtime build` for every target and back end: warnings are errors, the right symbols, no I/O mnemonics."""

from __future__ import annotations

import re
import subprocess

import pytest
from click.testing import CliRunner

from pvgen.cli import cli
from pvgen.errors import PvgenError
from pvgen.runtime.build import RUNTIME_DIR, TARGETS, build

BACKEND_API = {"pvio_in", "pvio_out", "pvio_ins", "pvio_outs", "pvio_hlt"}
BATCH_API = {"pvio_init", "pvio_fini", "pvio_tick", "pvio_flush", "pvio_set_threshold", "pvio_area"}


def symbols(path, kind: str) -> set[str]:
    out = subprocess.run(["nm", kind, str(path)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("backend", ["direct", "batch"])
def test_runtime_build_every_target(tmp_path, target, backend):
    if backend not in TARGETS[target].backends:
        with pytest.raises(PvgenError, match=f"{target} has no {backend} back end"):
            build(target, backend, tmp_path / "rt.o")
        return
    out = build(target, backend, tmp_path / f"rt-{target}-{backend}.o")
    defined = symbols(out, "--defined-only")
    prefix = {"i386": "__pvio32_", "x86_64-code32": "__pvio32_", "x86_64-code16": "__pvio16_",
              "i386-code16": "__pvio16_"}.get(target, "__pvio_")  # each code size its own thunk names
    assert f"{prefix}outb_imm" in defined and f"{prefix}rep_insw" in defined
    if TARGETS[target].mixed:  # the back end is local: the object links beside its format's own runtime
        assert not BACKEND_API & symbols(out, "-g")
        assert {n for n in symbols(out, "-g") if not n.startswith(prefix)} == set()
        machine = "ELF64" if TARGETS[target].mixed == "elf64" else "ELF32"
        assert machine in subprocess.run(["readelf", "-h", str(out)], capture_output=True, text=True).stdout
    else:
        assert BACKEND_API <= defined
    if backend == "batch":
        assert BATCH_API <= defined
    undefined = symbols(out, "-u") if target != "host" else set()
    allowed = {
        "linux-module": {"cpu_number", "slow_virt_to_phys", "__x86_return_thunk"},
        "x86_64": {"hx_irq_save", "hx_irq_restore", "hx_virt_to_phys"},
        "i386": {"pvio_arch_irq_save", "pvio_arch_irq_restore", "pvio_arch_virt_to_phys", "pvio_arch_irq_lines",
                 "pvio_arch_irq_notify"},
    }.get(target, set())
    assert undefined <= allowed, undefined - allowed


def test_runtime_build_linux_module_returns_through_the_return_thunk(tmp_path):
    out = build("linux-module", "batch", tmp_path / "rt.o")
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(out)], capture_output=True, text=True,
                         check=True).stdout
    assert not re.search(r"\sret[q]?\s*(\$0x\w+)?\s*$", dis, re.M), "a bare ret in a CONFIG_RETHUNK object"
    assert "__x86_return_thunk" in subprocess.run(["objdump", "-dr", str(out)], capture_output=True,
                                                  text=True).stdout


def test_runtime_build_warnings_are_errors(tmp_path):
    (tmp_path / "w.h").write_text("static int unused_var;\n")     # only a warning (-Wunused-variable)
    with pytest.raises(PvgenError, match="gcc failed"):
        build("i386", "batch", tmp_path / "rt.o", extra_cflags=("-include", str(tmp_path / "w.h")))


def test_runtime_sources_never_spell_an_io_mnemonic():
    mnemonic = re.compile(r'"[^"\n]*\b(in|out|ins|outs|rep\s+ins|rep\s+outs)[bwl]?\s+%', re.I)
    for name in ("batch.c", "arch_io.h", "arch_host.h", "arch_linux.h", "arch_free.h", "arch_host.c",
                 "arch_hx.c", "arch_host_drive.c"):
        text = (RUNTIME_DIR / name).read_text()
        assert not mnemonic.search(text), name


def test_runtime_header_cli_check_and_stale(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(cli, ["runtime", "header", "--check"], obj={})
    assert ok.exit_code == 0, ok.output
    stale = tmp_path / "pvio_protocol.h"
    stale.write_text("/* old */\n")
    bad = runner.invoke(cli, ["runtime", "header", "--check", "-o", str(stale)], obj={})
    assert bad.exit_code == 1 and "stale" in bad.output and len(bad.output.strip().splitlines()) == 1


def test_runtime_build_cli(tmp_path):
    res = CliRunner().invoke(cli, ["runtime", "build", "--target", "x86_64", "--backend", "batch", "-o",
                                   str(tmp_path / "rt.o")], obj={})
    assert res.exit_code == 0, res.output
    assert (tmp_path / "rt.o").exists()
