"""Malformed, unsupported and foreign input: AsmSyntaxError with file:line, never a silent change."""

from __future__ import annotations

import pytest

from pvgen.errors import AsmSyntaxError, PvgenError, RewriteError
from pvgen.rewrite import rewrite_text


@pytest.mark.parametrize("src,line,needle", [
    ("\tnop\n\tlock inb %dx,%al\n", 2, "lock"),
    ("\tinb %bx,%al\n", 1, "port operand"),
    ("\tinb %dx,%bl\n", 1, "data operand"),
    ("\tinb %dx,%ax\n", 1, "size mismatch"),
    ("\toutl %al,%dx\n", 1, "size mismatch"),
    ("\tinb ($0x60,%al\n", 1, "cannot parse"),
    ("\thlt %eax\n", 1, "no operands"),
    ("\tinw $0x1f0,%ax\n", 1, "8 bits"),
    ("\toutb %al,$256\n", 1, "8 bits"),
    ("\toutb %al,$-129\n", 1, "8 bits"),
    ("\tinsb (%bx),%es:(%rdi)\n", 1, "%dx"),
    ("\n\n\t.intel_syntax\n\tin al, dx\n", 3, "noprefix"),
    ("\tldr r0, [r1]\n", 1, "ARM"),
    ("\t.syntax unified\n\tmov r0, r1\n", 1, "ARM"),
    ("\tli a0, 1\n\tecall\n", 1, "RISC-V"),
])
def test_error_names_file_and_line(src: str, line: int, needle: str) -> None:
    with pytest.raises(AsmSyntaxError) as exc:
        rewrite_text(src, "drv.s")
    assert exc.value.path == "drv.s" and exc.value.line == line
    assert needle in str(exc.value)
    assert str(exc.value).startswith(f"drv.s:{line}: ")
    assert "\n" not in str(exc.value)


def test_unknown_mode_is_a_pvgen_error() -> None:
    with pytest.raises(RewriteError):
        rewrite_text("hlt\n", mode="code128")


def test_unknown_directives_pass_through() -> None:
    src = "\t.frobnicate 1, 2\n\t.section .text.unlikely,\"ax\",@progbits\n\t.pushsection .foo\n\thlt\n"
    r = rewrite_text(src)
    assert r.text.splitlines()[:3] == src.splitlines()[:3]


def test_errors_are_pvgen_errors() -> None:
    assert issubclass(AsmSyntaxError, PvgenError)
