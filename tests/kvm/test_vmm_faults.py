"""A guest that really faults gets a readable exit reason (issue 12): what happened, where (rip, symbol, CPL), and
the instruction's bytes decoded, at CPL3 (through the harness's fault stub) and at CPL0 (no handler at all)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.one_line import run_pvgen

pytestmark = pytest.mark.kvm


def _harness_guest(tmp_path: Path, name: str, body: str) -> Path:
    from pvgen.guest.build import build_guest

    src = tmp_path / f"{name}.c"
    src.write_text('#include "harness.h"\nint hx_main(void) { ' + body + ' return 0; }\n')
    return build_guest([src], tmp_path / f"{name}.elf")


def _bare_guest(tmp_path: Path, name: str, asm: str) -> Path:
    """An image with no harness: _start runs at CPL0 with no IDT, so any exception ends in a triple fault."""
    from pvgen.guest import build

    src = tmp_path / f"{name}.S"
    src.write_text(f"\t.text\n\t.globl _start\n_start:\n{asm}\n")
    obj = build.assemble(src, tmp_path / f"{name}.o")
    elf = tmp_path / f"{name}.elf"
    subprocess.run(["ld", *build.LDFLAGS, "-T", str(build.LINKER_SCRIPT), "-o", str(elf), str(obj)], check=True)
    return elf


def _run(image: Path):
    from pvgen.vmm.machine import Machine

    with Machine() as m:
        m.boot(image)
        return m.run(timeout=10)


def test_cpl3_invalid_opcode(kvm, gcc, tmp_path):
    res = _run(_harness_guest(tmp_path, "ud0", '__asm__ volatile(".byte 0x0f, 0xff");'))
    assert res.stop == "fault", res.message
    assert res.message.startswith("guest fault #UD (invalid opcode) at CPL3, rip=0x")
    assert "<hx_main+0x" in res.message and ": 0f ff (ud0)" in res.message


def test_cpl3_page_fault_says_what_was_touched(kvm, gcc, tmp_path):
    res = _run(_harness_guest(tmp_path, "pf", "*(volatile int *)0x0000700000000000UL = 1;"))
    assert res.stop == "fault"
    assert "#PF (page fault: write to 0x700000000000 (not mapped), user mode) at CPL3" in res.message
    assert "(mov dword ptr [" in res.message and "<hx_main+0x" in res.message


def test_cpl0_ud2_without_handler_is_a_readable_triple_fault(kvm, gnu_as, tmp_path):
    res = _run(_bare_guest(tmp_path, "ud2", "\tud2"))
    assert res.stop == "shutdown"
    assert res.message.startswith("guest shut down (triple fault: an exception it could not handle) at CPL0, "
                                  "rip=0xffffffff80100000 <_start+0x0>: 0f 0b (ud2); registers: rax=")


def test_cpl0_unmapped_access_names_the_instruction(kvm, gnu_as, tmp_path):
    res = _run(_bare_guest(tmp_path, "pf0", "\tmovabs $0x700000000000, %rax\n\tmovl $1, (%rax)\n\thlt"))
    assert res.stop == "shutdown" and "<_start+0xa>: c7 00 01 00 00 00 (mov dword ptr [rax], 1)" in res.message


def test_cpl0_instruction_kvm_cannot_emulate(kvm, gnu_as, tmp_path):
    from pvgen.vmm.machine import UnhandledExit

    image = _bare_guest(tmp_path, "avx", "\tvaddps %zmm1, %zmm0, %zmm0\n\thlt")
    try:
        res = _run(image)
    except UnhandledExit as exc:          # this host: CPL0 is emulated, and the emulator has no AVX-512
        assert "KVM_EXIT_INTERNAL_ERROR (suberror 1: KVM could not emulate the instruction) at CPL0" in str(exc)
        assert "<_start+0x0>: 62 f1 7c 48 58 c1 (vaddps zmm0, zmm0, zmm1)" in str(exc)
        return
    assert res.stop in ("shutdown", "hlt"), res.message     # a host that runs it (or faults: no AVX-512 there)


def test_run_cli_reports_the_fault_readably(kvm, gcc, tmp_path):
    image = _harness_guest(tmp_path, "ud0", '__asm__ volatile(".byte 0x0f, 0xff");')
    proc = run_pvgen("run", str(image), "--timeout", "10")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    stop = next(line for line in proc.stderr.splitlines() if line.startswith("guest stopped:"))
    assert stop.startswith("guest stopped: fault, code 128: guest fault #UD (invalid opcode) at CPL3") and "(ud0)" in stop
