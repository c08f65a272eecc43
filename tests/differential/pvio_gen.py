"""Instruction-sequence generator for the differential oracle: every site form, mixed with ordinary code."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

WIDTHS = {"b": 1, "w": 2, "l": 4}
ACC = {"b": "%al", "w": "%ax", "l": "%eax"}


@dataclass(frozen=True)
class Site:
    """One port-I/O site as generated: its text and what the thunk ABI calls it."""

    text: str
    kind: str            # in | out | ins | outs | hlt
    width: str = ""      # b | w | l
    port_form: str = ""  # dx | imm (in/out only)
    rep: bool = False
    port: int = 0        # the immediate, for port_form == "imm"
    intel: bool = False  # written in Intel syntax (rendered between .intel_syntax noprefix / .att_syntax)

    @property
    def thunk(self) -> str:
        if self.kind == "hlt":
            return "__pvio_hlt"
        if self.kind in ("in", "out"):
            return f"__pvio_{self.kind}{self.width}_{self.port_form}"
        return f"__pvio_{'rep_' if self.rep else ''}{self.kind}{self.width}"


def site_spellings(bits: int) -> list[Site]:
    """Every spelling of every site form the assembler accepts (AT&T), for one code mode."""
    di, si = {64: ("%rdi", "%rsi"), 32: ("%edi", "%esi"), 16: ("%di", "%si")}[bits]
    out: list[Site] = []
    for w, acc in ACC.items():
        out += [Site(f"in{w} %dx,{acc}", "in", w, "dx"), Site(f"in{w} (%dx),{acc}", "in", w, "dx"),
                Site(f"in %dx,{acc}", "in", w, "dx"), Site(f"in{w} $PORT,{acc}", "in", w, "imm"),
                Site(f"in $PORT,{acc}", "in", w, "imm"),
                Site(f"out{w} {acc},%dx", "out", w, "dx"), Site(f"out{w} {acc},(%dx)", "out", w, "dx"),
                Site(f"out {acc},%dx", "out", w, "dx"), Site(f"out{w} {acc},$PORT", "out", w, "imm"),
                Site(f"out {acc},$PORT", "out", w, "imm")]
        for rep in (False, True):
            p = "rep " if rep else ""
            out += [Site(f"{p}ins{w}", "ins", w, rep=rep), Site(f"{p}outs{w}", "outs", w, rep=rep),
                    Site(f"{p}ins{w} (%dx),%es:({di})", "ins", w, rep=rep),
                    Site(f"{p}outs{w} ({si}),(%dx)", "outs", w, rep=rep)]
    out += [Site("inb %dx", "in", "b", "dx"), Site("outb $PORT", "out", "b", "imm"),
            Site("rep; insb", "ins", "b", rep=True), Site("rep; outsw", "outs", "w", rep=True), Site("hlt", "hlt")]
    return out + intel_spellings(bits)


INTEL_ACC = {"b": "al", "w": "ax", "l": "eax"}
INTEL_STR = {"b": "b", "w": "w", "l": "d"}        # Intel spells the dword string forms insd/outsd


def intel_spellings(bits: int) -> list[Site]:
    """The Intel-syntax (noprefix) spellings: destination first, `insd`/`outsd`."""
    di, si = {64: ("rdi", "rsi"), 32: ("edi", "esi"), 16: ("di", "si")}[bits]
    size = {"b": "BYTE", "w": "WORD", "l": "DWORD"}
    out: list[Site] = []
    for w, acc in INTEL_ACC.items():
        s = INTEL_STR[w]
        out += [Site(f"in {acc}, dx", "in", w, "dx", intel=True), Site(f"in {acc}, PORT", "in", w, "imm", intel=True),
                Site(f"out dx, {acc}", "out", w, "dx", intel=True),
                Site(f"out PORT, {acc}", "out", w, "imm", intel=True),
                Site(f"ins{s}", "ins", w, intel=True), Site(f"rep outs{s}", "outs", w, rep=True, intel=True),
                Site(f"rep ins {size[w]} PTR es:[{di}], dx", "ins", w, rep=True, intel=True),
                Site(f"outs dx, {size[w]} PTR [{si}]", "outs", w, intel=True)]
    return out


def hand_rewrite(site: Site, bits: int) -> list[str]:
    """The rewritten form of one site exactly as docs/thunk-abi.md specifies, independent of the rewriter
    (16-bit: a 32-bit pushed port and `calll __pvio16_...`, as src/pvgen/rewrite/emit.py documents)."""
    imm = site.port_form == "imm"
    push = [f"push{'q' if bits == 64 else 'l'} ${site.port:#x}"] if imm else []
    if bits == 64:  # the caller pops the pushed port with the red zone
        return ["lea -128(%rsp), %rsp", *push, f"call {site.thunk}", f"lea {136 if imm else 128}(%rsp), %rsp"]
    if bits == 16:  # the pushed port leaves the 16-bit stack as pushl put it there: %sp only
        return [*push, f"calll {site.thunk.replace('__pvio_', '__pvio16_')}", *(["lea 4(%esp), %sp"] if imm else [])]
    return [*push, f"call {site.thunk.replace('__pvio_', '__pvio32_')}", *(["lea 4(%esp), %esp"] if imm else [])]


PORTS = [0x20, 0x21, 0x40, 0x60, 0x64, 0x70, 0x71, 0x80, 0xED, 0x1F0, 0x1F7, 0x3F6, 0x3F8, 0x3FD, 0xCF8, 0xCFC,
         0xFFFF]
# Registers ordinary code may clobber (never %rcx/%rsi/%rdi/%rsp, which steer string operations and the stack).
FREE = {64: ["%rax", "%rbx", "%rdx", "%rbp", "%r8", "%r9", "%r10", "%r11", "%r12", "%r13", "%r14", "%r15",
             "%eax", "%ebx", "%edx", "%r9d", "%ax", "%bx", "%dx", "%r10w", "%al", "%ah", "%bl", "%dl", "%dh"],
        32: ["%eax", "%ebx", "%edx", "%ebp", "%ax", "%bx", "%dx", "%bp", "%al", "%ah", "%bl", "%bh", "%dl", "%dh"]}
FREE[16] = FREE[32]
FULL = {64: ["%rax", "%rbx", "%rdx", "%rbp", "%r8", "%r9", "%r10", "%r11", "%r12", "%r13", "%r14", "%r15"],
        32: ["%eax", "%ebx", "%edx", "%ebp"]}
FULL[16] = FULL[32]
ALL_FULL = {64: FULL[64] + ["%rcx", "%rsi", "%rdi"], 32: FULL[32] + ["%ecx", "%esi", "%edi"],
            16: FULL[32] + ["%ecx", "%esi", "%edi", "%cx", "%si", "%di"]}
STRING_OPS = {64: ["movsb", "movsw", "movsl", "movsq", "rep movsb", "rep movsl", "rep movsq", "stosb", "stosw",
                   "stosq", "rep stosb", "rep stosw", "lodsb", "lodsl", "scasb", "cmpsw", "repe cmpsb"],
              32: ["movsb", "movsw", "movsl", "rep movsb", "rep movsw", "rep movsl", "stosb", "stosl", "rep stosb",
                   "rep stosl", "lodsw", "scasl", "cmpsb", "repne scasb"],
              16: ["movsb", "movsw", "movsl", "rep movsb", "rep movsw", "stosb", "stosw", "rep stosb", "lodsb",
                   "scasw", "cmpsb", "repe cmpsw"]}
FLAG_OPS = ["add", "sub", "cmp", "and", "or", "xor", "adc", "sbb", "test"]

# A generated line: (text, Site or None).
Line = tuple[str, "Site | None"]


def _suffix(reg: str, bits: int) -> str:
    if reg in FULL[64] or reg in ("%rcx", "%rsi", "%rdi"):
        return "q"
    if reg.endswith("l") or reg.endswith("h") or reg.endswith("b"):
        return "b"
    if reg.startswith("%e") or reg.endswith("d"):
        return "l"
    return "w"


@st.composite
def arith(draw, bits: int) -> list[Line]:
    reg = draw(st.sampled_from(FREE[bits]))
    sfx = _suffix(reg, bits)
    kind = draw(st.sampled_from(["imm", "imm", "reg", "inc", "dec", "neg", "mov"]))
    if kind == "imm":
        lim = {"b": 0x7F, "w": 0x7FFF, "l": 0x7FFFFFFF, "q": 0x7FFFFFFF}[sfx]
        imm = draw(st.one_of(st.integers(-2, 2), st.integers(-lim - 1, lim)))
        return [(f"{draw(st.sampled_from(FLAG_OPS))}{sfx} ${imm},{reg}", None)]
    if kind == "reg":
        other = draw(st.sampled_from([r for r in FREE[bits] if _suffix(r, bits) == sfx]))
        return [(f"{draw(st.sampled_from(FLAG_OPS))}{sfx} {other},{reg}", None)]
    if kind == "mov":
        return [(f"{draw(st.sampled_from(['mov', 'mov' + sfx]))} ${draw(st.integers(0, 0xFF))},{reg}", None)]
    return [(f"{kind}{sfx} {reg}", None)]


@st.composite
def site_line(draw, bits: int, spellings: list[Site]) -> list[Line]:
    s = draw(st.sampled_from(spellings))
    if s.port_form == "imm":
        port = draw(st.sampled_from([p for p in PORTS if p < 0x100] + [draw(st.integers(0, 0xFF))]))
        s = Site(s.text.replace("PORT", f"{port:#x}"), s.kind, s.width, s.port_form, s.rep, port, s.intel)
    return [(s.text, s)]


@st.composite
def sequence(draw, bits: int, max_ops: int = 24) -> list[Line]:
    """A straight-line sequence: sites, port/count/DF set-up, flag-setting arithmetic, stack use, string ops."""
    spellings = site_spellings(bits)
    lines: list[Line] = []
    depth = 0
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(["site", "site", "site", "site", "dx", "cx", "df", "arith", "arith", "push",
                                   "pop", "pushf", "string", "redzone"]))
        if op == "site":
            lines += draw(site_line(bits, spellings))
        elif op == "dx":
            port = draw(st.one_of(st.sampled_from(PORTS), st.integers(0, 0xFFFF)))
            lines.append((draw(st.sampled_from([f"movw ${port:#x},%dx", f"mov ${port:#x},%dx", f"movl ${port:#x},%edx"])), None))
        elif op == "cx":
            lines.append((f"movl ${draw(st.integers(0, 5))},%ecx", None))
        elif op == "df":
            lines.append((draw(st.sampled_from(["std", "cld"])), None))
        elif op == "arith":
            lines += draw(arith(bits))
        elif op == "push" and depth < 40:
            lines.append((f"push {draw(st.sampled_from(ALL_FULL[bits]))}", None))
            depth += 1
        elif op == "pop" and depth > -16:
            lines.append((f"pop {draw(st.sampled_from(FULL[bits]))}", None))
            depth -= 1
        elif op == "pushf":
            lines += [("pushf", None), (f"pop {draw(st.sampled_from(FULL[bits]))}", None)]
        elif op == "string":
            lines += [(f"movl ${draw(st.integers(0, 5))},%ecx", None), (draw(st.sampled_from(STRING_OPS[bits])), None)]
        elif op == "redzone" and bits == 64:
            # A value kept below %rsp across I/O sites must survive them (the call steps over the red zone).
            off = draw(st.sampled_from([8, 16, 64, 120, 128]))
            src, dst = draw(st.sampled_from(FULL[64])), draw(st.sampled_from(FULL[64]))
            lines.append((f"movq {src},-{off}(%rsp)", None))
            for _ in range(draw(st.integers(1, 3))):
                lines += draw(st.one_of(site_line(bits, spellings), arith(bits)))
            lines.append((f"movq -{off}(%rsp),{dst}", None))
    return lines


def render(lines: list[Line], bits: int, rewrite: bool) -> str:
    """Assembly text of the original sequence, or of its hand-rewritten form."""
    out = []
    for text, site in lines:
        if rewrite and site:
            out += hand_rewrite(site, bits)
        elif site and site.intel:
            out += [".intel_syntax noprefix", text, ".att_syntax prefix"]
        else:
            out.append(text)
    return "".join(f"\t{t}\n" for t in out)
