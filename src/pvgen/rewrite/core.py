"""rewrite_text: find candidate lines with one compiled regex, parse only those, replace each site in place."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pvgen.asm.lexer import Statement, blank_comments, split_statements
from pvgen.asm.operands import OperandSyntaxError, parse_operands
from pvgen.asm.sites import CODE_MODES, Malformed, NotRewritable, Site, classify_io
from pvgen.asm.table import (FOREIGN_DIRECTIVES, FOREIGN_MNEMONICS, IO_FORMS, MOV_MNEMONICS, PREFIXES,
                             REPORT_ONLY, SPECIAL_REG_PREFIXES)
from pvgen.errors import AsmSyntaxError, RewriteError
from pvgen.rewrite.emit import call_sequence


def _alt(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))


_PFX = _alt(PREFIXES)
_START = r"(?:^|[;:]|\*/)[ \t]*"
_SITE_WORDS = _alt(IO_FORMS)
_ALL_WORDS = _alt(set(IO_FORMS) | set(REPORT_ONLY) | FOREIGN_MNEMONICS)
_STATE_DIRECTIVES = ("intel_syntax", "att_syntax", "code16gcc", "code16", "code32", "code64", "macro", "endm",
                     "endmacro")
_DIRECTIVES = _alt(list(_STATE_DIRECTIVES) + [d[1:] for d in FOREIGN_DIRECTIVES])

# Every line that can hold a site, a report-only instruction, a state change or a foreign-architecture
# statement matches this; all other lines are copied without being looked at.
CANDIDATE = re.compile(
    rf"{_START}(?:(?:{_PFX})[ \t]*;?[ \t]*)*(?:(?:{_ALL_WORDS})(?![\w.$])"
    rf"|mov[lq]?[ \t][^\n;#]*?%?(?:cr|dr|db)[0-9])"
    rf"|\.(?:{_DIRECTIVES})(?![\w.$])"
    rf"|/\*"
    rf"|{_START}(?:{_PFX})[ \t]*;?[ \t]*(?:$|#)",
    re.M | re.I,
)
_MAY_HAVE_SITES = re.compile(rf"{_START}(?:(?:{_PFX})[ \t]*;?[ \t]*)*(?:{_SITE_WORDS})(?![\w.$])|/\*", re.M | re.I)


def may_have_sites(text: str) -> bool:
    """Cheap pre-check: False means the text has no port-I/O site (it may be passed through unchanged)."""
    return _MAY_HAVE_SITES.search(text) is not None


_MODE_ALIASES = {None: "code64", 64: "code64", 32: "code32", 16: "code16", "64": "code64", "32": "code32",
                 "16": "code16", "16gcc": "code16gcc"}


def _normalise_mode(mode) -> str:
    if mode in CODE_MODES:
        return mode
    try:
        return _MODE_ALIASES[mode]
    except (KeyError, TypeError):
        raise RewriteError(f"unknown code mode {mode!r}; use one of {', '.join(CODE_MODES)}") from None


@dataclass
class RewriteResult:
    """The rewritten text and the site table."""

    text: str
    sites: list[Site] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.sites:
            out[s.kind] = out.get(s.kind, 0) + 1
        return out

    @property
    def rewritten(self) -> list[Site]:
        return [s for s in self.sites if s.rewritten]


class _Rewriter:
    def __init__(self, path: str, mode: str):
        self.path = path
        self.mode = mode
        self.syntax = "att"
        self.macro_depth = 0
        self.sites: list[Site] = []

    # -- one unit (one or more whole lines) --------------------------------------------------------
    def unit(self, unit: str, in_comment: bool, first_line: int) -> tuple[list[tuple[int, int, str]], bool]:
        code, in_comment_after = blank_comments(unit, in_comment)
        stmts = split_statements(code)
        repl: list[tuple[int, int, str]] = []
        pending: list[Statement] = []
        for st in stmts:
            line = first_line + code.count("\n", 0, st.body_start)
            if st.prefix_only:
                pending.append(st)
                continue
            if st.word is None or st.word == "":
                pending = []
                continue
            word = st.word.lower()
            if st.is_directive:
                self.directive(word, st, line)
                pending = []
                continue
            prefixes = [p for q in pending for p in q.prefixes] + st.prefixes
            start = pending[0].prefix_starts[0] if pending else (st.prefix_starts[0] if st.prefixes else None)
            if start is None:
                body = code[st.body_start : st.end]
                start = st.body_start + len(body) - len(body.lstrip())
            pending = []
            new = self.instruction(word, st, prefixes, code[start : st.end], line)
            if new is not None:
                nl = code.count("\n", start, st.end)
                repl.append((start, st.end, new + "\n" * nl))
        return repl, in_comment_after

    def directive(self, word: str, st: Statement, line: int) -> None:
        args = st.operands.strip().lower()
        if word == ".intel_syntax":
            if args != "noprefix":
                raise AsmSyntaxError(self.path, line, "`.intel_syntax` without `noprefix` (registers written "
                                     "with `%`) is not supported; use `.intel_syntax noprefix`")
            self.syntax = "intel"
        elif word == ".att_syntax":
            if args == "noprefix":
                raise AsmSyntaxError(self.path, line, "`.att_syntax noprefix` is not supported")
            self.syntax = "att"
        elif word[1:] in CODE_MODES:
            self.mode = word[1:]
        elif word == ".macro":
            self.macro_depth += 1
        elif word in (".endm", ".endmacro"):
            self.macro_depth = max(0, self.macro_depth - 1)
        elif word in FOREIGN_DIRECTIVES:
            raise AsmSyntaxError(self.path, line, f"`{word} {st.operands}` is not a GNU as x86 directive: this "
                                 "looks like ARM/RISC-V assembly; pvgen rewrites x86 assembly only")

    def instruction(self, word: str, st: Statement, prefixes: list[str], text: str, line: int) -> str | None:
        """Record a site; return its replacement text, or None to keep the statement unchanged."""
        norm = " ".join(text.split())
        common = dict(file=self.path, line=line, text=norm, code_mode=self.mode, syntax=self.syntax,
                      in_macro=self.macro_depth > 0)
        form = IO_FORMS.get(word)
        if form is not None and self.syntax in form.syntaxes:
            try:
                ops = parse_operands(st.operands, self.syntax)
                io = classify_io(form, prefixes, ops, self.syntax, self.mode)
            except OperandSyntaxError as exc:
                raise AsmSyntaxError(self.path, line, f"{exc} in `{norm}`") from None
            except Malformed as exc:
                raise AsmSyntaxError(self.path, line, f"{exc} (in `{norm}`)") from None
            except NotRewritable as exc:
                kind = form.op if not any(p.startswith("rep") for p in prefixes) else f"rep-{form.op}"
                self.sites.append(Site(kind=kind, width=form.width, port_form=None, rewritten=False,
                                       reason=str(exc), **common))
                return None
            self.sites.append(Site(kind=io.kind, width=io.width, port_form=io.port_form, rewritten=True,
                                   thunk=io.thunk(self.mode), **common))
            return call_sequence(io, self.mode, self.syntax)
        if word in REPORT_ONLY:
            self.sites.append(Site(kind="report-only", width=None, port_form=None, rewritten=False,
                                   reason=REPORT_ONLY[word], **common))
        elif word in MOV_MNEMONICS and _special_reg(st.operands):
            self.sites.append(Site(kind="report-only", width=None, port_form=None, rewritten=False,
                                   reason="control/debug register", **common))
        elif word in FOREIGN_MNEMONICS:
            raise AsmSyntaxError(self.path, line, f"`{norm}` is not an x86 instruction: this looks like ARM/RISC-V "
                                 "assembly; pvgen rewrites x86 (GNU as) assembly only")
        return None


_SPECIAL = re.compile(rf"(?<![\w.$])%?(?:{'|'.join(SPECIAL_REG_PREFIXES)})[0-9]+(?![\w.$])", re.I)


def _special_reg(operands: str) -> bool:
    return _SPECIAL.search(operands) is not None


def rewrite_text(text: str, path: str = "<input>", *, mode=None) -> RewriteResult:
    """Rewrite every port-I/O site of GNU as source `text`; lines without a site are kept byte for byte.

    `mode` is the code mode at the start of the file (`code64` default, `code32` for `as --32`, ...).
    Raises AsmSyntaxError (file:line) for malformed or foreign input.
    """
    rw = _Rewriter(path, _normalise_mode(mode))
    out: list[str] = []
    n = len(text)
    pos = 0  # everything before pos has been emitted
    line_no = 1  # line number of pos
    in_comment = False
    search = CANDIDATE.search
    while pos < n:
        if in_comment:
            anchor = text.find("*/", pos)
        else:
            m = search(text, pos)
            anchor = -1 if m is None else m.start()
        if anchor < 0:
            break
        ustart = max(pos, text.rfind("\n", 0, anchor) + 1)
        uend = text.find("\n", anchor)
        uend = n if uend < 0 else uend
        # A line that ends in a bare prefix (`rep` alone) takes the next line along.
        while uend < n:
            code, _ = blank_comments(text[ustart:uend], in_comment)
            stmts = split_statements(code)
            if not (stmts and stmts[-1].prefix_only):
                break
            nxt = text.find("\n", uend + 1)
            uend = n if nxt < 0 else nxt
        out.append(text[pos:ustart])
        line_no += text.count("\n", pos, ustart)
        unit = text[ustart:uend]
        repl, in_comment = rw.unit(unit, in_comment, line_no)
        if repl:
            last = 0
            for a, b, new in repl:
                out.append(unit[last:a])
                out.append(new)
                last = b
            out.append(unit[last:])
        else:
            out.append(unit)
        line_no += unit.count("\n")
        pos = uend
    out.append(text[pos:])
    return RewriteResult("".join(out), rw.sites)
