"""The statement splitter: comments, strings, `;`, labels, prefixes; and the operand grammar."""

from __future__ import annotations

import pytest

from pvgen.asm.lexer import COMMENT, STRING, blank_comments, split_statements
from pvgen.asm.operands import OperandSyntaxError, parse_operands


def test_blank_comments_keeps_length_and_newlines() -> None:
    src = 'a # c\n"x#y" /* q\n r */ b\n'
    code, open_ = blank_comments(src)
    assert len(code) == len(src) and code.count("\n") == src.count("\n")
    assert "c" not in code.split("\n")[0] and '"x#y"' in code and "q" not in code and " b" in code
    assert not open_


def test_block_comment_left_open() -> None:
    code, open_ = blank_comments("inb %dx /* start\n")
    assert open_ and code.startswith("inb %dx")
    code, open_ = blank_comments("end */ hlt", COMMENT)
    assert not open_ and code.strip() == "hlt"


def test_string_spanning_lines_is_data() -> None:
    """GNU as reads a string up to its closing quote across newlines (or to the end of the file)."""
    code, state = blank_comments('.ascii "abc\ninb %dx,%al\n')
    assert state == STRING and "inb" not in code and code.startswith(".ascii") and code.count("\n") == 2
    code, state = blank_comments('inb %dx,%al" ; outb %al,$0x80 # c\n', STRING)
    assert not state and "inb" not in code and code.split(";")[1].strip() == "outb %al,$0x80"
    code, state = blank_comments('.ascii "a\\"b"; \'"; .ascii "x\\\nstill" ; hlt\n')
    assert not state and '"a\\"b"' in code and "still" not in code and code.rstrip().endswith("hlt")


def test_split_on_semicolons_outside_strings() -> None:
    code, _ = blank_comments('.ascii "a;b"; nop ; hlt\n')
    words = [s.word for s in split_statements(code)]
    assert words == [".ascii", "nop", "hlt"]


def test_labels_prefixes_and_word() -> None:
    (st,) = split_statements("foo: 1: .L3: rep insw (%dx),%es:(%rdi)")
    assert st.labels == ["foo", "1", ".L3"]
    assert st.prefixes == ["rep"] and st.word == "insw"
    assert st.operands == "(%dx),%es:(%rdi)"


def test_prefix_only_statement() -> None:
    a, b = split_statements("rep; outsl")
    assert a.prefix_only and b.word == "outsl"


def test_char_constant_protects_separator() -> None:
    sts = split_statements("movb $';', %al; hlt")
    assert [s.word for s in sts] == ["movb", "hlt"]


@pytest.mark.parametrize("text,kinds", [
    ("$0x60,%al", ["imm", "reg"]),
    ("%dx,%al", ["reg", "reg"]),
    ("(%dx),%al", ["mem", "reg"]),
    ("(%dx),%es:(%rdi)", ["mem", "mem"]),
    ("%ds:(%rsi),(%dx)", ["mem", "mem"]),
    ("-8(%rbp,%rax,4)", ["mem"]),
    ("foo+4(%rip)", ["mem"]),
    ("$(1+2)*3", ["imm"]),
    ("\\port,%al", ["macro", "reg"]),
    ("$\\port", ["imm"]),
    ("*%rax", ["other"]),
    ("", []),
])
def test_att_operand_shapes(text: str, kinds: list[str]) -> None:
    assert [o.kind for o in parse_operands(text, "att")] == kinds


@pytest.mark.parametrize("text,kinds", [
    ("al, dx", ["reg", "reg"]),
    ("eax, 0x60", ["reg", "imm"]),
    ("BYTE PTR es:[rdi], dx", ["mem", "reg"]),
    ("dx, DWORD PTR [rsi]", ["reg", "mem"]),
    ("rax, cr0", ["reg", "reg"]),
])
def test_intel_operand_shapes(text: str, kinds: list[str]) -> None:
    assert [o.kind for o in parse_operands(text, "intel")] == kinds


def test_operand_details() -> None:
    port, dst = parse_operands("(%dx),%es:(%rdi)", "att")
    assert port.base == "dx" and dst.seg == "es" and dst.base == "rdi"
    (m,) = parse_operands("WORD PTR [rsi]", "intel")
    assert m.size == 2 and m.base == "rsi"


@pytest.mark.parametrize("text", ["(%dx", "$", "%al,,%dx", "$0x60)"])
def test_operand_syntax_errors(text: str) -> None:
    with pytest.raises(OperandSyntaxError):
        parse_operands(text, "att")


@pytest.mark.parametrize("syntax,text", [
    ("att", "%dx, %al"), ("att", "%dx,%AX"), ("att", "$96, %al"), ("att", "$0x3F8,%eax"), ("att", "%al, (%dx)"),
    ("att", "(%dx),%al"), ("att", "%dx"), ("att", " $0x80 "), ("att", "%eax, $0xcf8"),
    ("intel", "al, dx"), ("intel", "dx, eax"), ("intel", "0x80, al"), ("intel", "eax, 96"), ("intel", "AL, DX"),
])
def test_fast_path_agrees_with_grammar(syntax: str, text: str) -> None:
    from pvgen.asm.operands import _simple, parse_with_grammar

    fast = _simple(text, syntax)
    assert fast is not None
    assert fast == parse_with_grammar(text, syntax)
