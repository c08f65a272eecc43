"""The runtime builds cleanly (user space, i386, Linux module), spells no I/O mnemonic, and keeps OUT cheap."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from capstone import CS_ARCH_X86, CS_MODE_16, CS_MODE_32, CS_MODE_64, Cs
from elftools.elf.elffile import ELFFile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "differential"))
import pvio_gen as G  # noqa: E402
import pvio_oracle as O  # noqa: E402
from pvgen.asm.sites import THUNK_PREFIX  # noqa: E402

from pvgen.rewrite import rewrite_text  # noqa: E402

RT = O.RUNTIME
IO_MNEMONICS = re.compile(r"^(in|out|ins[bwd]|outs[bwd]|hlt)$")


def _symbols(obj: Path) -> dict[str, tuple[str, int, int]]:
    with open(obj, "rb") as f:
        elf = ELFFile(f)
        return {s.name: (s["st_info"]["type"], s["st_value"], s["st_size"])
                for s in elf.get_section_by_name(".symtab").iter_symbols() if s.name}


def _disasm(obj: Path, bits: int) -> dict[str, list[str]]:
    """Function name -> instruction mnemonics (with rep prefix), by capstone."""
    md = Cs(CS_ARCH_X86, {64: CS_MODE_64, 32: CS_MODE_32, 16: CS_MODE_16}[bits])
    with open(obj, "rb") as f:
        text = ELFFile(f).get_section_by_name(".text").data()
    out = {}
    for name, (typ, value, size) in _symbols(obj).items():
        if typ == "STT_FUNC":
            out[name] = [i.mnemonic for i in md.disasm(text[value:value + size], value)]
    return out


@pytest.mark.parametrize("bits", [64, 32, 16])
def test_objects_define_the_whole_abi_as_sized_functions(bits: int) -> None:
    thunks, direct = O.build_runtime(O.MODES[bits])
    syms = _symbols(thunks)
    for s in G.site_spellings(bits):
        typ, _, size = syms[s.thunk.replace("__pvio_", THUNK_PREFIX[O.MODES[bits].code_mode])]
        assert typ == "STT_FUNC" and size > 0, s.thunk
    for fn in ("pvio_in", "pvio_out", "pvio_ins", "pvio_outs", "pvio_hlt"):
        assert _symbols(direct)[fn][0] == "STT_FUNC"


@pytest.mark.parametrize("bits", [64, 32, 16])
def test_io_instructions_only_in_the_direct_back_end(bits: int) -> None:
    thunks, direct = O.build_runtime(O.MODES[bits])
    for fn, insns in _disasm(thunks, bits).items():
        assert not [i for i in insns if IO_MNEMONICS.match(i.split()[-1])], fn
    io = {fn: sorted(i for i in insns if IO_MNEMONICS.match(i.split()[-1])) for fn, insns in
          _disasm(direct, bits).items()}
    assert io == {"pvio_in": ["in", "in", "in"], "pvio_out": ["out", "out", "out"],
                  "pvio_ins": ["rep insb", "rep insd", "rep insw"],
                  "pvio_outs": ["rep outsb", "rep outsd", "rep outsw"], "pvio_hlt": ["hlt"]}


@pytest.mark.parametrize("bits", [64, 32, 16])
def test_runtime_sources_hold_no_site_for_the_rewriter(bits: int, tmp_path: Path) -> None:
    """docs/team.md: the runtime passes through pvgen-as unchanged (I/O only as .byte)."""
    flags = [*O.MODES[bits].cc_flags, f"-I{RT}"]
    thunks = subprocess.run(["gcc", *flags, "-E", str(RT / O.THUNKS[bits])], capture_output=True, text=True,
                            check=True).stdout
    direct = subprocess.run(["gcc", *flags, *O.CFLAGS, "-S", "-o", "-", str(RT / "direct.c")], capture_output=True,
                            text=True, check=True).stdout
    for text in (thunks, direct):
        res = rewrite_text(text, mode=bits)
        assert [s for s in res.sites if s.rewritten] == [] and res.text == text


def test_direct_back_end_builds_with_kernel_flags(tmp_path: Path) -> None:
    """The flags Kbuild uses on x86-64 (no SSE, kernel code model, no red zone, return thunks)."""
    kflags = ["-m64", "-mcmodel=kernel", "-mno-red-zone", "-fno-pic", "-mno-sse", "-mno-mmx", "-mno-sse2",
              "-mno-3dnow", "-mno-avx", "-mno-80387", "-mno-fp-ret-in-387", "-mskip-rax-setup",
              "-mpreferred-stack-boundary=3", "-mindirect-branch=thunk-extern", "-mfunction-return=thunk-extern",
              "-ffreestanding", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{RT}"]
    subprocess.run(["gcc", *kflags, "-c", str(RT / "direct.c"), "-o", str(tmp_path / "d.o")], check=True)
    subprocess.run(["gcc", *kflags, "-DPVIO_KERNEL", "-DPVIO_RETHUNK", "-c", str(RT / "thunks64.S"), "-o",
                    str(tmp_path / "t.o")], check=True)
    insns = _disasm(tmp_path / "t.o", 64)
    assert all("ret" not in i for fn in insns.values() for i in fn), "a bare ret in a RETHUNK build"


@pytest.mark.parametrize("bits", [64, 32])
def test_posted_out_thunk_leaves_room_for_the_back_end(bits: int) -> None:
    """Issue 3 budget: a posted OUT costs <= 40 instructions including lea/call/lea; the thunk part
    (everything executed outside the back-end function) must leave at least half of that to the back end."""
    mode = O.MODES[bits]
    for text, site in [("outb %al,%dx", G.Site("outb %al,%dx", "out", "b", "dx")),
                       ("outb %al,$0x80", G.Site("outb %al,$0x80", "out", "b", "imm", port=0x80))]:
        img = O.link_pair(mode, "", G.render([(text, site)], bits, True))
        lo, hi = img.symbols["pvio_out"], img.symbols["pvio_out"] + img.sizes["pvio_out"]
        counts = {"thunk": 0, "back end": 0}
        O.run(mode, img, img.symbols["rw_start"], img.symbols["rw_end"], O.Machine.make(mode, 1),
              on_insn=lambda a: counts.__setitem__("back end" if lo <= a < hi else "thunk",
                                                   counts["back end" if lo <= a < hi else "thunk"] + 1))
        assert counts["back end"] > 0
        assert counts["thunk"] - 1 <= 20, (text, counts)      # -1: the nop before the end marker


KMOD_MAIN = """
#include <linux/module.h>
extern void __pvio_outb_dx(void), __pvio_rep_insw(void), __pvio_inb_imm(void);
static int __init pvt_init(void) { pr_info("%px %px %px\\n", __pvio_outb_dx, __pvio_rep_insw, __pvio_inb_imm); return 0; }
static void __exit pvt_exit(void) {}
module_init(pvt_init);
module_exit(pvt_exit);
MODULE_LICENSE("GPL");
"""
KMOD_KBUILD = """obj-m := pvtest.o
pvtest-y := main.o thunks64.o direct.o
AFLAGS_thunks64.o := -DPVIO_KERNEL $(if $(CONFIG_RETHUNK),-DPVIO_RETHUNK)
"""


@pytest.mark.kernel
def test_runtime_builds_into_a_linux_module_objtool_clean(kernel_headers: Path, tmp_path: Path) -> None:
    for name in ("thunks64.S", "thunks_strx64.h", "thunks_strx.h", "direct.c", "pvio_backend.h", "ioinsn.h"):
        (tmp_path / name).write_bytes((RT / name).read_bytes())
    (tmp_path / "main.c").write_text(KMOD_MAIN)
    (tmp_path / "Kbuild").write_text(KMOD_KBUILD)
    proc = subprocess.run(["make", "-j2", "-C", str(kernel_headers), f"M={tmp_path}", "modules"],
                          capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert (tmp_path / "pvtest.ko").exists()
    assert "objtool" not in log and "warning" not in log.lower(), log
