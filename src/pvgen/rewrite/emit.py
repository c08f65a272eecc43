"""The call sequences that replace a site, per code mode and syntax (see docs/thunk-abi.md, docs/rewriter.md)."""

from __future__ import annotations

from pvgen.asm.sites import IoInstr

RED_ZONE = 128  # System V x86-64 ABI §3.2.2: the 128 bytes below %rsp belong to the interrupted code


def _call(thunk: str, push: str | None, code_mode: str) -> list[str]:
    """The AT&T statements calling `thunk`, pushing the port expression `push` (AT&T immediate) first."""
    if code_mode == "code64":
        seq = [f"lea -{RED_ZONE}(%rsp),%rsp"]
        if push is not None:
            seq.append(f"pushq {push}")
        return seq + [f"call {thunk}", f"lea {RED_ZONE}(%rsp),%rsp"]
    if code_mode == "code32":
        return ([f"pushl {push}"] if push is not None else []) + [f"call {thunk}"]
    # .code16 and .code16gcc: always a 32-bit near call and a 32-bit pushed port, so one set of
    # __pvio16_ thunks serves both (they return with `retl` / `retl $4`).
    return ([f"pushl {push}"] if push is not None else []) + [f"calll {thunk}"]


def call_sequence(io: IoInstr, code_mode: str, syntax: str) -> str:
    """One line of `;`-separated statements (the line count of the file stays the same)."""
    if io.port_form == "imm":
        assert io.port is not None
        push = io.port.text if syntax == "att" else f"$({io.port.value})"
        seq = _call(io.thunk(code_mode), push, code_mode)
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
