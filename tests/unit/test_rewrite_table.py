"""Table-driven rewrite tests: (code mode, input statement, expected emitted text), per docs/thunk-abi.md."""

from __future__ import annotations

import pytest

from pvgen.errors import AsmSyntaxError
from pvgen.rewrite import rewrite_text

L64 = "lea -128(%rsp),%rsp; "
R64 = "; lea 128(%rsp),%rsp"
R64_IMM = "; lea 136(%rsp),%rsp"  # the caller pops the pushed port too


def c64(thunk: str, push: str | None = None) -> str:
    return L64 + (f"pushq {push}; " if push else "") + f"call {thunk}" + (R64_IMM if push else R64)


CASES = [
    # x86-64, AT&T: every in/out form
    ("code64", "\tinb $0x60,%al", "\t" + c64("__pvio_inb_imm", "$0x60")),
    ("code64", "\tinb %dx,%al", "\t" + c64("__pvio_inb_dx")),
    ("code64", "\tinb (%dx),%al", "\t" + c64("__pvio_inb_dx")),
    ("code64", "\tin %dx,%al", "\t" + c64("__pvio_inb_dx")),
    ("code64", "\tin %dx,%ax", "\t" + c64("__pvio_inw_dx")),
    ("code64", "\tin $0x71,%eax", "\t" + c64("__pvio_inl_imm", "$0x71")),
    ("code64", "\tinb %dx", "\t" + c64("__pvio_inb_dx")),
    ("code64", "\tinw $0xf0", "\t" + c64("__pvio_inw_imm", "$0xf0")),
    ("code64", "\toutb %al,$0x80", "\t" + c64("__pvio_outb_imm", "$0x80")),
    ("code64", "\toutb %al,%dx", "\t" + c64("__pvio_outb_dx")),
    ("code64", "\toutb %al,(%dx)", "\t" + c64("__pvio_outb_dx")),
    ("code64", "\toutw %ax,%dx", "\t" + c64("__pvio_outw_dx")),
    ("code64", "\toutl %eax,%dx", "\t" + c64("__pvio_outl_dx")),
    ("code64", "\tout %eax,$0xcf", "\t" + c64("__pvio_outl_imm", "$0xcf")),
    ("code64", "\toutb $PORT+1", "\t" + c64("__pvio_outb_imm", "$(PORT+1)")),  # the thunk reads the low byte
    ("code64", "\toutb %al,$-1", "\t" + c64("__pvio_outb_imm", "$0xff")),
    ("code64", "\tinb $-128,%al", "\t" + c64("__pvio_inb_imm", "$0x80")),
    ("code64", "\tINB %DX,%AL", "\t" + c64("__pvio_inb_dx")),
    # string forms, with and without rep and operands
    ("code64", "\tinsb", "\t" + c64("__pvio_insb")),
    ("code64", "\tinsw (%dx),%es:(%rdi)", "\t" + c64("__pvio_insw")),
    ("code64", "\tinsl %dx,%es:(%rdi)", "\t" + c64("__pvio_insl")),
    ("code64", "\toutsb", "\t" + c64("__pvio_outsb")),
    ("code64", "\toutsl %ds:(%rsi),(%dx)", "\t" + c64("__pvio_outsl")),
    ("code64", "\trep insw", "\t" + c64("__pvio_rep_insw")),
    ("code64", "\trep; outsl", "\t" + c64("__pvio_rep_outsl")),
    ("code64", "\trepz insb", "\t" + c64("__pvio_rep_insb")),
    ("code64", "\trep insw (%dx),%es:(%rdi)", "\t" + c64("__pvio_rep_insw")),
    ("code64", "\trep outsb (%rsi),(%dx)", "\t" + c64("__pvio_rep_outsb")),
    ("code64", "\thlt", "\t" + c64("__pvio_hlt")),
    ("code64", "\tdata16 inl %dx,%eax", "\t" + c64("__pvio_inw_dx")),
    ("code64", "\taddr32 inb %dx,%al", "\t" + c64("__pvio_inb_dx")),
    # labels, comments, several statements on a line
    ("code64", "foo:\tinb %dx,%al", "foo:\t" + c64("__pvio_inb_dx")),
    ("code64", "1: 2: hlt", "1: 2: " + c64("__pvio_hlt")),
    ("code64", "\tinb %dx,%al\t# read status", "\t" + c64("__pvio_inb_dx") + "\t# read status"),
    ("code64", "\tmovl $1,%eax; outb %al,$0x80", "\tmovl $1,%eax; " + c64("__pvio_outb_imm", "$0x80")),
    ("code64", "\t/* x; inb */ inb %dx,%al", "\t/* x; inb */ " + c64("__pvio_inb_dx")),
    ("code64", "\trep\n\tinsb", "\t" + c64("__pvio_rep_insb") + "\n"),
    # i386: no red zone step; the caller pops the pushed port (the _imm thunks end with a plain ret)
    ("code32", "\tinb $0x60,%al", "\tpushl $0x60; call __pvio32_inb_imm; lea 4(%esp),%esp"),
    ("code32", "\toutw %ax,(%dx)", "\tcall __pvio32_outw_dx"),
    ("code32", "\trep insl (%dx),%es:(%edi)", "\tcall __pvio32_rep_insl"),
    ("code32", "\toutsb %ds:(%esi),(%dx)", "\tcall __pvio32_outsb"),
    ("code32", "\thlt", "\tcall __pvio32_hlt"),
    # 16-bit: __pvio16_ thunks, 32-bit near call and 32-bit pushed port in both .code16 and .code16gcc
    # (the caller pops the port off the 16-bit stack: %sp only, modulo 64 KiB, as pushl and retl move it)
    ("code16", "\tinb $0x60,%al", "\tpushl $0x60; calll __pvio16_inb_imm; lea 4(%esp),%sp"),
    ("code16gcc", "\toutl %eax,$0x80", "\tpushl $0x80; calll __pvio16_outl_imm; lea 4(%esp),%sp"),
    ("code16", "\trep outsw", "\tcalll __pvio16_rep_outsw"),
    ("code16", "\tinsb (%dx),%es:(%di)", "\tcalll __pvio16_insb"),
    ("code16gcc", "\toutb %al,%dx", "\tcalll __pvio16_outb_dx"),
    ("code16gcc", "\thlt", "\tcalll __pvio16_hlt"),
]

INTEL = ".intel_syntax noprefix\n"
ATT = ".att_syntax; "
BACK = "; .intel_syntax noprefix"
INTEL_CASES = [
    ("code64", "\tin al, dx", "\t" + ATT + c64("__pvio_inb_dx") + BACK),
    ("code64", "\tin eax, 0x60", "\t" + ATT + c64("__pvio_inl_imm", "$(0x60)") + BACK),
    ("code64", "\tout 0x80, al", "\t" + ATT + c64("__pvio_outb_imm", "$(0x80)") + BACK),
    ("code64", "\tout dx, ax", "\t" + ATT + c64("__pvio_outw_dx") + BACK),
    ("code64", "\trep insw", "\t" + ATT + c64("__pvio_rep_insw") + BACK),
    ("code64", "\tinsd", "\t" + ATT + c64("__pvio_insl") + BACK),
    ("code64", "\touts dx, DWORD PTR [rsi]", "\t" + ATT + c64("__pvio_outsl") + BACK),
    ("code64", "\tins BYTE PTR es:[rdi], dx", "\t" + ATT + c64("__pvio_insb") + BACK),
    ("code32", "\tout 0x80, al", "\t" + ATT + "pushl $(0x80); call __pvio32_outb_imm; lea 4(%esp),%esp" + BACK),
]


@pytest.mark.parametrize("mode,src,expected", CASES)
def test_att_rewrite(mode: str, src: str, expected: str) -> None:
    r = rewrite_text(src + "\n", mode=mode)
    assert r.text == expected + "\n"
    assert sum(s.rewritten for s in r.sites) >= 1


@pytest.mark.parametrize("mode,src,expected", INTEL_CASES)
def test_intel_rewrite(mode: str, src: str, expected: str) -> None:
    r = rewrite_text(INTEL + src + "\n", mode=mode)
    assert r.text == INTEL + expected + "\n"
    assert [s.syntax for s in r.sites] == ["intel"]


def test_site_record_fields() -> None:
    r = rewrite_text("\t.text\n\tnop\n\trep; insw # x\n", "drv.s", mode="code64")
    (s,) = r.sites
    assert (s.file, s.line, s.text, s.kind, s.width, s.port_form, s.code_mode, s.rewritten, s.thunk) == (
        "drv.s", 3, "rep; insw", "rep-ins", 2, "dx", "code64", True, "__pvio_rep_insw")
    assert set(s.to_json()) >= {"file", "line", "text", "kind", "width", "port_form", "code_mode", "rewritten"}


def test_code_mode_directives_switch_mode() -> None:
    src = "\t.code32\n\thlt\n\t.code16gcc\n\thlt\n\t.code16\n\thlt\n\t.code64\n\thlt\n"
    r = rewrite_text(src)
    assert [s.code_mode for s in r.sites] == ["code32", "code16gcc", "code16", "code64"]
    # each code size calls thunks built for it, also inside a 64-bit object (32-bit code called __pvio_hlt once)
    assert [s.thunk for s in r.sites] == ["__pvio32_hlt", "__pvio16_hlt", "__pvio16_hlt", "__pvio_hlt"]


@pytest.mark.parametrize("src", [
    "\tcli", "\tsti", "\tpushfq", "\tpopf", "\tlgdt (%rax)", "\tlidt gdt(%rip)", "\twrmsr", "\trdmsr",
    "\tinvlpg (%rdi)", "\tmovq %cr3, %rax", "\tmov %rax,%cr4", "\tmovq %db7, %rax", "\tiretq", "\tsysretq",
    "\tint $0x80", "\tltr %ax", "\tcpuid",
])
def test_report_only_not_rewritten(src: str) -> None:
    r = rewrite_text(src + "\n")
    assert r.text == src + "\n"
    assert [(s.kind, s.rewritten) for s in r.sites] == [("report-only", False)]


@pytest.mark.parametrize("src", [
    "\tmovl %eax, %ebx", "\tinc %eax", "\tint3x: nop", "\t.string \"inb %dx,%al\"", "\t# inb %dx,%al",
    "\tcall __pvio_inb_dx", "\tmovq in(%rip), %rax", "in_port:", "\t.globl outb", "\tjmp .Lin",
    "\trep movsb", "\tlock incl (%rax)", "\t.set in, 4", "\tmovl %cr_save(%rip), %eax",
])
def test_no_site(src: str) -> None:
    r = rewrite_text(src + "\n")
    assert r.text == src + "\n"
    assert [s for s in r.sites if s.kind != "report-only"] == []


def test_macro_body_port_argument_uses_ifc() -> None:
    src = ".macro rd port\n\tinb \\port,%al\n.endm\n"
    r = rewrite_text(src)
    (s,) = r.sites
    assert s.in_macro and s.port_form == "macro" and s.rewritten
    line = r.text.splitlines()[1]
    assert line.startswith("\t.ifc \\port,%dx; ") and "pushq \\port; call __pvio_inb_imm; lea 136(%rsp),%rsp" in line
    assert line.endswith(".endif; .endif")


def test_macro_immediate_argument() -> None:
    r = rewrite_text(".macro wr p\n\toutb %al,$\\p\n.endm\n")
    assert "pushq $((\\p)&0xff); call __pvio_outb_imm; lea 136(%rsp),%rsp" in r.text


def test_macro_register_argument_without_suffix_is_reported_not_rewritten() -> None:
    src = ".macro rd reg\n\tin %dx,\\reg\n.endm\n"
    r = rewrite_text(src)
    assert r.text == src
    (s,) = r.sites
    assert not s.rewritten and "macro" in s.reason


# The other address size and segment overrides of string I/O: each calls the thunk of its exact form.
@pytest.mark.parametrize("mode,src,thunk", [
    ("code64", "\taddr32 insb", "__pvio_insb_a32"),
    ("code64", "\trep insb (%dx),%es:(%edi)", "__pvio_rep_insb_a32"),
    ("code64", "\toutsb %fs:(%rsi),(%dx)", "__pvio_outsb_fs"),
    ("code64", "\tgs rep outsl", "__pvio_rep_outsl_gs"),
    ("code64", "\taddr32 fs outsw", "__pvio_outsw_a32_fs"),
    ("code64", "\toutsb %es:(%rsi),(%dx)", "__pvio_outsb"),          # ES, CS, SS, DS have base 0 in 64-bit mode
    ("code64", "\tfs insb", "__pvio_insb"),                          # ins always writes to ES
    ("code32", "\taddr16 outsw", "__pvio32_outsw_a16"),
    ("code32", "\trep outsb %es:(%esi),(%dx)", "__pvio32_rep_outsb_es"),
    ("code32", "\tcs outsl", "__pvio32_outsl_cs"),
    ("code32", "\toutsw %ss:(%si),(%dx)", "__pvio32_outsw_a16_ss"),
    ("code32", "\toutsb %ds:(%esi),(%dx)", "__pvio32_outsb"),
    ("code16", "\tinsb (%dx),%es:(%edi)", "__pvio16_insb_a32"),
    ("code16", "\trep insw (%dx),%es:(%edi)", "__pvio16_rep_insw_a32"),
    ("code16", "\trep outsw %es:(%esi),(%dx)", "__pvio16_rep_outsw_a32_es"),
    ("code16gcc", "\taddr32 rep insl", "__pvio16_rep_insl_a32"),
    ("code16", "\tfs rep outsb", "__pvio16_rep_outsb_fs"),
    ("code16", "\t.intel_syntax noprefix\n\tins WORD PTR es:[edi], dx", "__pvio16_insw_a32"),
    ("code32", "\t.intel_syntax noprefix\n\touts dx, BYTE PTR fs:[si]", "__pvio32_outsb_a16_fs"),
    ("code64", "\t.intel_syntax noprefix\n\trep outs dx, DWORD PTR gs:[esi]", "__pvio_rep_outsl_a32_gs"),
])
def test_address_size_and_segment_forms(mode: str, src: str, thunk: str) -> None:
    r = rewrite_text(src + "\n", mode=mode)
    (s,) = r.sites
    assert s.rewritten and s.thunk == thunk and thunk in r.text


@pytest.mark.parametrize("mode,src", [
    ("code64", "\trepne insb"),
    ("code64", "\toutsb %fs:(%esi,%eax),(%dx)"),
    ("code32", "\tinsb (%dx),%es:(%rdi)"),                     # not an address size of 32-bit code (as rejects it)
    ("code16", "\taddr32 rep insw (%dx),%es:(%di)"),           # prefix and register disagree (as rejects it)
    ("code16", "\tfs outsb %es:(%esi),(%dx)"),                 # two segments (as rejects it)
    ("code64", "\taddr16 insb"),
    # as emits a prefix statement before the label: falling through runs `rep insb`, a jump to 1 runs `insb`
    ("code64", "\trep; 1: insb"),
    ("code32", "\trep\nfoo:\toutsw"),
])
def test_inexact_string_forms_are_left_unchanged_and_reported(mode: str, src: str) -> None:
    r = rewrite_text(src + "\n", mode=mode)
    assert r.text == src + "\n"
    (s,) = r.sites
    assert not s.rewritten and s.reason
    assert s.kind.endswith(("ins", "outs"))


@pytest.mark.parametrize("mode,src,says", [("code32", "\taddr32 insb", "redundant"),
                                           ("code16", "\taddr16 rep outsw", "redundant"),
                                           ("code64", "\tes outsb", "not supported in 64-bit mode")])
def test_prefixes_as_rejects_are_errors(mode: str, src: str, says: str) -> None:
    with pytest.raises(AsmSyntaxError, match=says):   # as: "redundant addr32 prefix", "`es' is not supported ..."
        rewrite_text(src + "\n", "r.s", mode=mode)


def test_line_count_is_preserved() -> None:
    src = "\tinb %dx,%al\n\trep\n\tinsw\n\thlt\n\tnop\n"
    assert rewrite_text(src).text.count("\n") == src.count("\n")


def test_repeat_bodies_are_marked_and_rewritten() -> None:
    src = ".rept 3\n\tinb $0x60,%al\n.endr\n.irp p, 0x60, 0x64\n\tinb $\\p,%al\n.endr\n\thlt\n"
    r = rewrite_text(src)
    assert [s.in_macro for s in r.sites] == [True, True, False]
    assert "pushq $((\\p)&0xff); call __pvio_inb_imm" in r.text


def test_labels_named_like_mnemonics_are_not_sites() -> None:
    src = "inb:\n\tjmp inb\nhlt: .long 0\n"
    r = rewrite_text(src)
    assert r.text == src and r.sites == []


def test_conditional_bodies_are_marked() -> None:
    r = rewrite_text(".if 0\n\tinb %dx,%al\n.endif\n\toutb %al,%dx\n")
    assert [(s.kind, s.in_macro) for s in r.sites] == [("in", True), ("out", False)]
