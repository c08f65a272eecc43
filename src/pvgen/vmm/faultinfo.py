"""Where a guest stopped, readably: the exception by name, the instruction's address, symbol, bytes and decoding."""

from __future__ import annotations

from typing import Callable

from pvgen.vmm import layout

MAX_INSN = 15      # the longest x86 instruction (SDM vol. 2 §2.3.11)

# Exceptions and interrupts, SDM vol. 3 §6.15 ("Exception and Interrupt Reference").
EXCEPTIONS = {0: ("#DE", "divide error"), 1: ("#DB", "debug"), 2: ("NMI", "non-maskable interrupt"),
              3: ("#BP", "breakpoint"), 4: ("#OF", "overflow"), 5: ("#BR", "bound range exceeded"),
              6: ("#UD", "invalid opcode"), 7: ("#NM", "device not available"), 8: ("#DF", "double fault"),
              9: ("CSO", "coprocessor segment overrun"), 10: ("#TS", "invalid TSS"),
              11: ("#NP", "segment not present"), 12: ("#SS", "stack fault"), 13: ("#GP", "general protection"),
              14: ("#PF", "page fault"), 16: ("#MF", "x87 floating-point error"), 17: ("#AC", "alignment check"),
              18: ("#MC", "machine check"), 19: ("#XM", "SIMD floating-point exception"),
              20: ("#VE", "virtualization exception"), 21: ("#CP", "control protection")}

# KVM_EXIT_INTERNAL_ERROR suberrors (Documentation/virt/kvm/api.rst, include/uapi/linux/kvm.h).
INTERNAL_SUBERRORS = {1: "KVM could not emulate the instruction",
                      2: "an exception arrived while another was being delivered",
                      3: "KVM could not deliver an event to the guest",
                      4: "KVM met an exit reason it did not expect"}


def exception_name(vector: int) -> str:
    return EXCEPTIONS.get(vector, (f"vector {vector}", ""))[0]


def exception_text(vector: int, error: int, cr2: int) -> str:
    """"#PF (page fault: write to 0x7000 (not mapped), user mode)": the vector's name and what its error code
    says (SDM vol. 3 §4.7 for the page-fault error code)."""
    name, what = EXCEPTIONS.get(vector, (f"vector {vector}", "reserved or external"))
    if vector == 14:
        access = "instruction fetch at" if error & 0x10 else ("write to" if error & 2 else "read of")
        cause = "protection violation" if error & 1 else "not mapped"
        what = f"{what}: {access} {cr2:#x} ({cause}), {'user' if error & 4 else 'supervisor'} mode"
    return f"{name} ({what})"


def decode(code: bytes, va: int) -> tuple[int, str]:
    """(length, "mnemonic operands") of the first instruction in code; (0, why) when it does not decode."""
    try:
        from capstone import CS_ARCH_X86, CS_MODE_64, Cs
    except ImportError:
        return 0, "capstone not installed: not decoded"
    for insn in Cs(CS_ARCH_X86, CS_MODE_64).disasm(code, va, 1):
        return insn.size, f"{insn.mnemonic} {insn.op_str}".strip()
    return 0, "not a valid x86-64 instruction"


def instruction_at(read: Callable[[int, int], bytes], ram_size: int, va: int,
                   symbolize: Callable[[int], str]) -> str:
    """"rip=0xffffffff80100004 <hx_main+0x4>: 0f ff 00 (ud0 eax, dword ptr [rax])": the instruction at guest
    virtual address va under the harness page tables, read through read(gpa, n)."""
    gpa = layout.virt_to_phys(va)
    where = f"rip={symbolize(va)}"
    if gpa is None or not 0 <= gpa < ram_size:
        return f"{where} (not in guest RAM: no instruction there)"
    code = read(gpa, min(MAX_INSN, ram_size - gpa))
    n, text = decode(code, va)
    shown = code[:n] if n else code[:8]
    return f"{where}: {shown.hex(' ')}{'' if n else ' ...'} ({text})"
