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


def _trie(words) -> str:
    """A regex alternation of `words` as a trie (much faster in `re` than a flat alternation)."""
    root: dict = {}
    for w in words:
        node = root
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:
        alts = [re.escape(ch) + emit(sub) for ch, sub in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(root)


_END = r"(?![\w.$])"
_WORDS = _trie(set(IO_FORMS) | set(REPORT_ONLY) | FOREIGN_MNEMONICS | PREFIXES)
_SITE_WORDS = _trie(set(IO_FORMS) | PREFIXES)
_STATE_DIRECTIVES = ("intel_syntax", "att_syntax", "code16gcc", "code16", "code32", "code64", "macro", "endm",
                     "endmacro", "rept", "irp", "irpc", "endr")
_DIRECTIVES = _trie(list(_STATE_DIRECTIVES) + [d[1:] for d in FOREIGN_DIRECTIVES])

# The fast path: candidate lines are found by a few patterns, each starting with a literal character so
# that `re` can skip quickly, run over a lower-cased copy of the text. A line matched by none of them
# holds no site, no report-only instruction and no state change, and is copied without being looked at.
# An instruction starts a line, or follows `:` (a label), `;` or `*/`.
_AFTER_NEWLINE = re.compile(rf"\n[ \t]*{_WORDS}{_END}")
_AT_START = re.compile(rf"[ \t]*{_WORDS}{_END}")
_AFTER = {lit: re.compile(rf"{re.escape(lit)}[ \t]*{_WORDS}{_END}") for lit in (":", ";", "*/")}
_DIRECTIVE = re.compile(rf"\.{_DIRECTIVES}{_END}")
_COMMENT_OPEN = re.compile(r"/\*")
_SPECIAL_ATT = re.compile(r"%(?:cr|dr|db)[0-9]")
_SPECIAL_INTEL = re.compile(r"[ \t,](?:cr|dr|db)[0-9]")
_DANGLING = re.compile(rf"(?:^|[\s;:]){_trie(PREFIXES)}[ \t]*;?[ \t]*(?:#[^\n]*|/\*.*)?$", re.I)
_SITE_AT_START = re.compile(rf"[ \t]*{_SITE_WORDS}{_END}")
_SITE_AFTER = [re.compile(rf"{re.escape(lit)}[ \t]*{_SITE_WORDS}{_END}") for lit in ("\n", ":", ";", "*/")]


def candidates(text: str) -> list[int]:
    """Sorted offsets (one or more per candidate line) of everything the rewriter must look at."""
    low = _lower(text)
    pos: list[int] = []
    m = _AT_START.match(low)
    if m:
        pos.append(0)
    pos.extend(m.start() + 1 for m in _AFTER_NEWLINE.finditer(low))
    extra: list[int] = []
    for lit, rx in _AFTER.items():
        if lit in low:
            extra.extend(m.start() for m in rx.finditer(low))
    extra.extend(m.start() for m in _DIRECTIVE.finditer(low))
    if "/*" in low:
        extra.extend(m.start() for m in _COMMENT_OPEN.finditer(low))
    if "%cr" in low or "%dr" in low or "%db" in low:
        extra.extend(m.start() for m in _SPECIAL_ATT.finditer(low))
    if ".intel_syntax" in low:
        extra.extend(m.start() for m in _SPECIAL_INTEL.finditer(low))
    if extra:
        pos.extend(extra)
        pos.sort()
    return pos


def _lower(text: str) -> str:
    """Lower-case ASCII letters; every other character becomes `?`, so offsets stay those of `text`."""
    if text.isascii():
        return text.lower()
    return text.encode("ascii", errors="replace").lower().decode("ascii")


def may_have_sites(text: str) -> bool:
    """Cheap pre-check: False means the text has no port-I/O site (it may be passed through unchanged)."""
    low = _lower(text)
    return _SITE_AT_START.match(low) is not None or any(rx.search(low) for rx in _SITE_AFTER)


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
        elif word in (".macro", ".rept", ".irp", ".irpc"):
            self.macro_depth += 1
        elif word in (".endm", ".endmacro", ".endr"):
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


_new_site = object.__new__


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
    # Lines repeat (`inb %dx, %al`): a unit with no directive is rewritten once per (text, state).
    cache: dict[tuple, tuple[list, list[Site]]] = {}
    cands = candidates(text)
    ci, nc = 0, len(cands)
    count = text.count
    while pos < n:
        if in_comment:
            anchor = text.find("*/", pos)
            if anchor < 0:
                break
        else:
            while ci < nc and cands[ci] < pos:
                ci += 1
            if ci == nc:
                break
            anchor = cands[ci]
        ustart = text.rfind("\n", pos, anchor) + 1 or pos
        uend = text.find("\n", anchor)
        uend = n if uend < 0 else uend
        if uend <= ustart and not in_comment:  # an empty line: nothing to look at (guarantees progress)
            ci += 1
            continue
        # A line that ends in a bare prefix (`rep` alone) takes the next line along.
        while uend < n and _DANGLING.search(text, ustart, uend):
            stmts = split_statements(blank_comments(text[ustart:uend], in_comment)[0])
            if not (stmts and stmts[-1].prefix_only):
                break
            nxt = text.find("\n", uend + 1)
            uend = n if nxt < 0 else nxt
        out.append(text[pos:ustart])
        line_no += count("\n", pos, ustart)
        unit = text[ustart:uend]
        key = (unit, in_comment, rw.syntax, rw.mode, rw.macro_depth > 0)
        hit = cache.get(key)
        if hit is not None:
            repl, templates = hit
            for t in templates:
                site = _new_site(Site)
                site.__dict__.update(t.__dict__)
                site.line += line_no
                rw.sites.append(site)
        else:
            before = len(rw.sites)
            state = (rw.syntax, rw.mode, rw.macro_depth)
            repl, in_comment_after = rw.unit(unit, in_comment, line_no)
            if not in_comment_after and state == (rw.syntax, rw.mode, rw.macro_depth):
                templates = []
                for s in rw.sites[before:]:
                    t = _new_site(Site)
                    t.__dict__.update(s.__dict__)
                    t.line -= line_no
                    templates.append(t)
                cache[key] = (repl, templates)
            in_comment = in_comment_after
        if repl:
            last = 0
            for a, b, new in repl:
                out.append(unit[last:a])
                out.append(new)
                last = b
            out.append(unit[last:])
        else:
            out.append(unit)
        line_no += count("\n", ustart, uend)
        pos = uend
    out.append(text[pos:])
    return RewriteResult("".join(out), rw.sites)
