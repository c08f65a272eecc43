"""The call sequences that replace a site, per code mode and syntax (see docs/thunk-abi.md, docs/rewriter.md)."""

from __future__ import annotations

import re

from pvgen.asm.sites import IoInstr, number

_SYMBOL = re.compile(r"(?<![\w.$\\])[A-Za-z_.$][\w.$]*")  # a name, not a macro argument (`\p`)
RED_ZONE = 128  # System V x86-64 ABI §3.2.2: the 128 bytes below %rsp belong to the interrupted code


def _call(thunk: str, push: str | None, code_mode: str) -> list[str]:
    """The AT&T statements calling `thunk`, pushing the port expression `push` (AT&T immediate) first.

    The caller pops the pushed port (a plain `ret` in every thunk): objtool, which checks every Kbuild object,
    does not model a callee popping its caller's argument (`ret $N`). Every step is a `lea`, which changes no flag.
    """
    if code_mode == "code64":
        seq = [f"lea -{RED_ZONE}(%rsp),%rsp"]
        if push is not None:
            seq.append(f"pushq {push}")
        return seq + [f"call {thunk}", f"lea {RED_ZONE + (8 if push is not None else 0)}(%rsp),%rsp"]
    if code_mode == "code32":
        if push is None:
            return [f"call {thunk}"]
        return [f"pushl {push}", f"call {thunk}", "lea 4(%esp),%esp"]
    # .code16 and .code16gcc: always a 32-bit near call and a 32-bit pushed port, so one set of
    # __pvio16_ thunks serves both (they return with `retl`). The pushed port is dropped as `pushl` and `retl`
    # move the stack pointer of a 16-bit stack segment: %sp only, modulo 64 KiB (`addr32 lea`, no flag changed).
    if push is None:
        return [f"calll {thunk}"]
    return [f"pushl {push}", f"calll {thunk}", "lea 4(%esp),%sp"]


def port_push(io: IoInstr, syntax: str) -> str:
    """The AT&T immediate that pushes the port of an `_imm` site: the zero-extended imm8 of the instruction.

    A literal 0..255 is kept as written; a negative literal (GNU as accepts -128..-1) becomes its 8-bit value;
    a constant expression (`$0x60+1`, which as truncates to 8 bits with a warning) is pushed as `$((expr)&0xff)`.
    An expression naming a symbol is pushed as it is: the symbol may be external (`inb $port,%al` assembles
    with an 8-bit relocation), and `&` of an undefined symbol is no relocatable expression; the thunk reads the
    pushed value's low byte only, the byte the original instruction encodes.
    """
    assert io.port is not None and io.port.value is not None
    value = number(io.port.value)
    if value is not None and value >= 0:
        return io.port.text if syntax == "att" else f"$({io.port.value})"
    if value is not None:
        return f"${value & 0xFF:#x}"
    if _SYMBOL.search(io.port.value):
        return f"$({io.port.value})"
    return f"$(({io.port.value})&0xff)"


def call_sequence(io: IoInstr, code_mode: str, syntax: str) -> str:
    """One line of `;`-separated statements (the line count of the file stays the same)."""
    if io.port_form == "imm":
        seq = _call(io.thunk(code_mode), port_push(io, syntax), code_mode)
    elif io.port_form == "macro":
        # A bare macro argument as port: `%dx`, `(%dx)` or `$imm` is known only at expansion, so let the
        # assembler choose with `.ifc` (string comparison of the expanded argument).
        assert io.port is not None
        arg = io.port.text
        dx = _call(io.thunk(code_mode), None, code_mode)
        imm_io = IoInstr(io.op, io.width, "imm", io.port, io.rep)
        imm = _call(imm_io.thunk(code_mode), arg if syntax == "att" else f"$({arg})", code_mode)
        dx_spellings = ["%dx", "(%dx)"] if syntax == "att" else ["dx"]
        seq = []
        for spelling in dx_spellings:
            seq += [f".ifc {arg},{spelling}", *dx, ".else"]
        seq += imm + [".endif"] * len(dx_spellings)
    else:
        seq = _call(io.thunk(code_mode), None, code_mode)
    if syntax == "intel":
        seq = [".att_syntax", *seq, ".intel_syntax noprefix"]
    return "; ".join(seq)
