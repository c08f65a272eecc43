"""rewrite_text: visit only the candidate lines (scan.py), parse them, replace each site in place."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pvgen.asm.lexer import Statement, blank_comments, split_statements
from pvgen.asm.linemap import LineMap
from pvgen.asm.operands import OperandSyntaxError, parse_operands
from pvgen.asm.sites import CODE_MODES, Malformed, NotRewritable, Site, classify_io, kept_tag
from pvgen.asm.table import FOREIGN_DIRECTIVES, FOREIGN_MNEMONICS, IO_FORMS, MOV_MNEMONICS, PREFIXES, \
    REPORT_ONLY, SPECIAL_REG_PREFIXES
from pvgen.errors import AsmSyntaxError, RewriteError
from pvgen.rewrite.emit import call_sequence
from pvgen.rewrite.scan import CONDITIONALS, candidates, may_have_sites  # noqa: F401 (re-exported)


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
    def __init__(self, path: str, mode: str, tag_kept: bool = False):
        self.path = path
        self.tag_kept = tag_kept
        self.mode = mode
        self.syntax = "att"
        self.macro_depth = 0
        self.sites: list[Site] = []

    # -- one unit (one or more whole lines) --------------------------------------------------------
    def unit(self, code: str, first_line: int) -> list[tuple[int, int, str]]:
        """Record the sites of one unit (comments already blanked); return its replacements (start, end, text)."""
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
        return repl

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
        elif word in _OPENERS:
            self.macro_depth += 1
        elif word in (".endm", ".endmacro", ".endr", ".endif"):
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
                return kept_tag(text) if self.tag_kept else None
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
# Bodies assembled zero or more times: sites inside are marked in_macro.
_OPENERS = frozenset([".macro", ".rept", ".irp", ".irpc"] + ["." + c for c in CONDITIONALS])


def _ends_in_prefix(code: str) -> bool:
    """Whether the last statement of `code` is only prefixes (`rep`, `rep;`, `1: lock`)."""
    tail = code.rstrip(" \t\r\n;")
    word = tail[tail.rfind("\n") + 1 :].rsplit(None, 1)[-1:] if tail else []
    if not word or word[0].rpartition(";")[2].rpartition(":")[2].lower() not in PREFIXES:
        return False
    stmts = split_statements(code)
    return bool(stmts) and stmts[-1].prefix_only


def rewrite_text(text: str, path: str = "<input>", *, mode=None, tag_kept: bool = False) -> RewriteResult:
    """Rewrite every port-I/O site of GNU as source `text`; lines without a site are kept byte for byte.

    `mode` is the code mode at the start of the file (`code64` default, `code32` for `as --32`, ...).
    `tag_kept` marks each kept site for the object check (asm/sites.py, kept_tag): the text to assemble is then
    a diagnostic copy, not the output. Site records name the logical file and line (`# N "file"` markers,
    `.loc`). Raises AsmSyntaxError (file:line) for malformed or foreign input.
    """
    try:
        result = _rewrite(text, path, _normalise_mode(mode), tag_kept)
    except AsmSyntaxError as exc:
        where = LineMap.of(text, path).locate(exc.line) if exc.path == path else None
        if where is None or where == (path, exc.line):
            raise
        raise AsmSyntaxError(where[0], where[1], exc.message, exc.col) from None
    if result.sites:
        for s in result.sites:
            s.asm_line = s.line
        lines = LineMap.of(text, path)
        if lines.logical:
            for s in result.sites:
                s.file, s.line = lines.locate(s.line)
    return result


def _rewrite(text: str, path: str, mode: str, tag_kept: bool) -> RewriteResult:
    rw = _Rewriter(path, mode, tag_kept)
    out: list[str] = []
    n = len(text)
    pos = 0  # everything before pos has been looked at
    emitted = 0  # text[:emitted] is in `out`
    lpos, line_no = 0, 1  # line_no is the line number of offset lpos
    in_comment = False
    # Lines repeat (`inb %dx, %al`): a unit with no directive is rewritten once per (code, state).
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
        if not in_comment:
            seg = text[ustart:anchor]
            if "#" in seg and '"' not in seg and "'" not in seg and "/*" not in seg:
                ci += 1  # the candidate is inside a `#` comment (`# drv.c:479:   outb(v, port);`)
                continue
        uend = text.find("\n", anchor)
        uend = n if uend < 0 else uend
        if uend <= ustart and not in_comment:  # an empty line: nothing to look at (guarantees progress)
            ci += 1
            continue
        line_no += count("\n", lpos, ustart)
        lpos = ustart
        unit = text[ustart:uend]
        code, in_comment_after = blank_comments(unit, in_comment)
        # A line that ends in a bare prefix (`rep` alone) takes the next line along.
        while uend < n and _ends_in_prefix(code):
            nxt = text.find("\n", uend + 1)
            uend = n if nxt < 0 else nxt
            unit = text[ustart:uend]
            code, in_comment_after = blank_comments(unit, in_comment)
        # the key is the code without its comments: `inb %dx, %al  # tmp107` and `# tmp110` share an entry
        key = (code.rstrip(), in_comment, rw.syntax, rw.mode, rw.macro_depth > 0)
        hit = None if in_comment_after else cache.get(key)
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
            repl = rw.unit(code, line_no)
            if not in_comment_after and state == (rw.syntax, rw.mode, rw.macro_depth):
                templates = []
                for s in rw.sites[before:]:
                    t = _new_site(Site)
                    t.__dict__.update(s.__dict__)
                    t.line -= line_no
                    templates.append(t)
                cache[key] = (repl, templates)
        in_comment = in_comment_after
        if repl:  # lines without a replacement are copied later, in one slice with their neighbours
            out.append(text[emitted:ustart])
            last = 0
            for a, b, new in repl:
                out.append(unit[last:a])
                out.append(new)
                last = b
            out.append(unit[last:])
            emitted = uend
        pos = uend
    if not out:
        return RewriteResult(text, rw.sites)
    out.append(text[emitted:])
    return RewriteResult("".join(out), rw.sites)
