"""rewrite_text: visit only the candidate lines (scan.py), parse them, replace each site in place."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pvgen.asm.lexer import CODE, STRING, Statement, blank_comments, parse_statement, skeleton, statements_at, \
    string_end
from pvgen.asm.linemap import LineMap
from pvgen.asm.operands import OperandSyntaxError, parse_operands
from pvgen.asm.sites import CODE_MODES, Malformed, NotRewritable, Site, classify_io, kept_tag
from pvgen.asm.table import FOREIGN_DIRECTIVES, FOREIGN_MNEMONICS, IO_FORMS, MOV_MNEMONICS, PREFIXES, \
    REPORT_ONLY, SPECIAL_REG_PREFIXES
from pvgen.errors import AsmSyntaxError, RewriteError
from pvgen.rewrite.emit import call_sequence
from pvgen.rewrite.scan import CONDITIONALS, Candidates, candidates, may_have_sites, prefix_run  # noqa: F401


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
    def unit(self, code: str, first_line: int, offsets, pending: list[Statement] | None = None) \
            -> list[tuple[int, int, str]]:
        """Record the sites of one unit (comments blanked); return its replacements (start, end, text).

        Only the statements holding a candidate offset (scan.candidates, relative to the unit) are parsed; the
        others hold nothing of interest, but one between a prefix-only statement and an instruction ends the
        prefix's reach, as in the old full split. Line numbers are counted incrementally: linear time."""
        repl: list[tuple[int, int, str]] = []
        pending = pending or []  # prefix-only statements (a run of bare-prefix lines: one Statement)
        skel = skeleton(code)
        line, counted = first_line, 0  # line is the line number of offset `counted`
        for st in statements_at(code, skel, offsets):
            line += code.count("\n", counted, st.body_start)
            counted = st.body_start
            if pending and skel[pending[-1].end : st.start].strip(" \t\r\n;"):
                pending = []  # another statement came between
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
            # `rep; 1: insb`: as emits the prefix before the label, so a jump to the label runs `insb` alone
            split = bool(pending) and bool(st.labels)
            pending = []
            text = code[start : st.end].replace("\n", ";") if split else code[start : st.end]
            new = self.instruction(word, st, prefixes, text, line, split)
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

    def instruction(self, word: str, st: Statement, prefixes: list[str], text: str, line: int,
                    split: bool = False) -> str | None:
        """Record a site; return its replacement text, or None to keep the statement unchanged. `split`: a label
        stands between the prefix statements and the instruction."""
        norm = " ".join(text.split())
        common = dict(file=self.path, line=line, text=norm, code_mode=self.mode, syntax=self.syntax,
                      in_macro=self.macro_depth > 0)
        form = IO_FORMS.get(word)
        if form is not None and self.syntax in form.syntaxes:
            try:
                ops = parse_operands(st.operands, self.syntax)
                io = classify_io(form, prefixes, ops, self.syntax, self.mode)
                if split:
                    raise NotRewritable(f"a label stands between the prefix and `{form.mnemonic}`: a jump to it runs "
                                        f"`{form.mnemonic}` without the prefix, which one call cannot do")
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


def _last_is_prefix(code: str) -> bool | None:
    """Whether the last statement of `code` (comments blanked) is only prefixes (`rep`, `rep;`, `1: lock`);
    None when it holds no statement (blank, or a comment). Only the last statement is parsed."""
    tail = code.rstrip(" \t\r\n;")
    if not tail:
        return None
    word = tail.rsplit(None, 1)[-1]
    if word.rpartition(";")[2].rpartition(":")[2].lower() not in PREFIXES:
        return False
    skel = skeleton(tail)
    st = parse_statement(tail, max(skel.rfind(";"), skel.rfind("\n")) + 1, len(tail))
    return st is not None and st.prefix_only


_SPLIT_CHUNK = 1 << 16  # a chunk of a prefix run larger than this is checked only when it repeats a statement


def _first_separator(s: str) -> int:
    a, b = s.find(";"), s.find("\n")
    return b if a < 0 else a if b < 0 else min(a, b)


def _prefix_run(text: str, low: str, ustart: int) -> tuple[int, list[Statement]] | None:
    """When the statements from ustart on hold only bare prefixes (scan.prefix_run): the end of the run (after a
    separator) and the run as one prefix-only Statement (offsets relative to ustart; its prefixes each once, in
    the order they first appear, which classify_io reads as the full list); else None. `low` is the lower-cased
    text. Chunks that double in size (and halve near the run's end), cut at a separator, are checked with str
    methods (a chunk that repeats the first line, or a set of words), and the regex finishes the last few hundred
    characters: linear, and fast on 10 000 lines of `rep`."""
    starts, run = prefix_run()
    n = len(low)
    if starts.match(low, ustart) is None or run.match(low, ustart, min(n, ustart + 256)).end() == ustart:
        return None  # the first statement is not only prefixes (`rep insw`, `inb %dx,%al`)
    end, size = ustart, 256
    words: dict[str, None] = {}
    while end < n:
        cut = n if end + size >= n else max(low.rfind("\n", end, end + size), low.rfind(";", end, end + size)) + 1
        chunk = low[end:cut]
        got = None
        if cut > end and "#" not in chunk and "\f" not in chunk and "\v" not in chunk:
            first = _first_separator(chunk) + 1
            if 0 < first < len(chunk) and chunk.count(chunk[:first]) * first == len(chunk):
                got = chunk[:first].replace(";", " ").split()  # the chunk repeats its first statement
            elif len(chunk) <= _SPLIT_CHUNK:
                got = chunk.replace(";", " ").split()
        if got is not None and PREFIXES.issuperset(got):
            words.update(dict.fromkeys(got))
            end, size = cut, size * 2
        elif size > 256:
            size //= 2  # the run ends in this chunk (or it is too varied to split whole): narrow down
        else:
            break
    stop = run.match(low, end).end()
    if stop == ustart:
        return None
    tail, _ = blank_comments(text[end:stop])
    words.update(dict.fromkeys(tail.lower().replace(";", " ").split()))
    head = low[ustart:stop]
    first = len(head) - len(head.lstrip(" \t\r\n;"))
    last = (end - ustart) + len(tail.rstrip(" \t\r\n;")) if tail.strip(" \t\r\n;") else \
        len(head[: end - ustart].rstrip(" \t\r\n;"))
    return stop, [Statement(start=first, body_start=first, end=last, prefixes=list(words), prefix_starts=[first])]


def _extent(text: str, ustart: int, uend: int, state: int) -> tuple[int, str, int]:
    """The unit starting at ustart: its line (to uend) and, when it ends in a bare prefix, the following lines up
    to the next statement (`rep` alone on a line prefixes the next instruction). Returns its end, its code
    (comments blanked) and the lexical state after it; each character is looked at once."""
    n = len(text)
    code, state_after = blank_comments(text[ustart:uend], state)
    if uend >= n or not _last_is_prefix(code):
        return uend, code, state_after
    parts = [code]
    while uend < n:
        nxt = text.find("\n", uend + 1)
        nxt = n if nxt < 0 else nxt
        more, state_after = blank_comments(text[uend:nxt], state_after)
        parts.append(more)
        uend = nxt
        if _last_is_prefix(more) is False:
            break
    return uend, "".join(parts), state_after


def _keep_comments(orig: str, new: str) -> str:
    """`new` replacing `orig` (a site, with the bare prefixes of earlier lines it absorbed), with the comments of
    `orig` kept: each at the end of its own line of `new` (which has as many lines). Only code is rewritten."""
    if "#" not in orig and "/*" not in orig:
        return new
    blanked, _ = blank_comments(orig)
    if blanked == orig:
        return new
    olines, blines, nlines = orig.split("\n"), blanked.split("\n"), new.split("\n")
    if len(nlines) != len(olines):
        return new
    for k, (o, b) in enumerate(zip(olines, blines)):
        pieces, cur = [], []
        for oc, bc in zip(o, b):
            if oc != bc and bc == " ":      # a comment's character (a string spanning lines is '_': left out)
                cur.append(oc)
            elif cur:
                pieces.append("".join(cur))
                cur = []
        if cur:
            pieces.append("".join(cur))
        if pieces:
            nlines[k] = " ".join([nlines[k], *pieces]) if nlines[k] else " ".join(pieces)
    return "\n".join(nlines)


def _templates(sites: list[Site], line_no: int) -> list[Site]:
    """Copies of a unit's sites with line numbers relative to the unit (a cache entry)."""
    out = []
    for s in sites:
        t = _new_site(Site)
        t.__dict__.update(s.__dict__)
        t.line -= line_no
        out.append(t)
    return out


def _replay(templates: list[Site], sites: list[Site], line_no: int) -> None:
    for t in templates:
        site = _new_site(Site)
        site.__dict__.update(t.__dict__)
        site.line += line_no
        sites.append(site)


def rewrite_text(text: str, path: str = "<input>", *, mode=None, tag_kept: bool = False) -> RewriteResult:
    """Rewrite every port-I/O site of GNU as source `text`; lines without a site are kept byte for byte.

    `mode` is the code mode at the start of the file (`code64` default, `code32` for `as --32`, ...).
    `tag_kept` marks each kept site for the object check (asm/sites.py, kept_tag): the text to assemble is then
    a diagnostic copy, not the output. Site records name the logical file and line (`# N "file"` markers,
    `.loc`). Raises AsmSyntaxError (file:line) for malformed or foreign input. Time and memory are linear in
    len(text): every character is looked at a bounded number of times.
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
    pos = 0  # everything before pos has been looked at; pos is 0 or the end of a line
    emitted = 0  # text[:emitted] is in `out`
    lpos, line_no = 0, 1  # line_no is the line number of offset lpos
    state = CODE  # lexical state at pos: in code, in a /* comment, in a string
    # Lines repeat (`inb %dx, %al`): a unit with no directive is rewritten once per (text, state), and a
    # one-line unit in code is looked up by its raw text before anything else is done with it.
    cache: dict[tuple, tuple[list, list[Site]]] = {}
    lines: dict[tuple, tuple[list, list[Site]]] = {}
    cands = Candidates(text)
    count, find = text.count, text.find
    while pos < n:
        if state == CODE:
            anchor = cands.next(pos)
            if anchor >= n:
                break
        else:  # the next line to look at holds the end of the comment or string
            anchor = find("*/", pos) if state != STRING else string_end(text, pos)
            if anchor < 0:
                break  # open to the end of the text: `as` reads the rest as comment or string data
        ustart = text.rfind("\n", pos, anchor) + 1 or pos
        uend = find("\n", anchor)
        uend = n if uend < 0 else uend
        line_key = None
        if state == CODE:
            if uend <= ustart:  # an empty line: nothing to look at (guarantees progress)
                pos = anchor + 1
                continue
            if find("#", ustart, anchor) >= 0:
                seg = text[ustart:anchor]
                if '"' not in seg and "'" not in seg and "/*" not in seg:
                    pos = uend  # the candidate is inside a `#` comment, and so is the rest of its line
                    continue
            line_key = (text[ustart:uend], rw.syntax, rw.mode, rw.macro_depth > 0)
        line_no += count("\n", lpos, ustart)
        lpos = ustart
        hit = lines.get(line_key) if line_key else None
        if hit is not None:
            repl, templates = hit
            _replay(templates, rw.sites, line_no)
        else:
            run = _prefix_run(text, cands.low, ustart) if state == CODE else None
            if run is not None:
                if run[0] >= n:
                    break  # bare prefixes up to the end of the text: they prefix nothing the rewriter replaces
                uend = find("\n", run[0])
                uend = n if uend < 0 else uend
            line_end = uend
            uend, code, state_after = _extent(text, ustart, uend, state)
            # the key is the code without its comments: `inb %dx, %al  # tmp107` and `# tmp110` share an entry
            key = (code.rstrip(), state, rw.syntax, rw.mode, rw.macro_depth > 0)
            hit = None if state_after != CODE else cache.get(key)
            if hit is not None:
                repl, templates = hit
                _replay(templates, rw.sites, line_no)
            else:
                # candidates in a run are covered by its Statement; one on its last `;` marks the next statement
                offsets = cands.within(run[0] - 1 if run else ustart, uend)
                before = len(rw.sites)
                rstate = (rw.syntax, rw.mode, rw.macro_depth)
                repl = rw.unit(code, line_no, [c - ustart for c in offsets], run and run[1])
                templates = None
                if state_after == CODE and rstate == (rw.syntax, rw.mode, rw.macro_depth):
                    templates = _templates(rw.sites[before:], line_no)
                    cache[key] = (repl, templates)
            if templates is not None and line_key and run is None and uend == line_end:
                lines[line_key] = (repl, templates)
            state = state_after
        if repl:  # lines without a replacement are copied later, in one slice with their neighbours
            out.append(text[emitted:ustart])
            last = 0
            for a, b, new in repl:
                out.append(text[ustart + last : ustart + a])
                out.append(_keep_comments(text[ustart + a : ustart + b], new))
                last = b
            out.append(text[ustart + last : uend])
            emitted = uend
        pos = uend
    if not out:
        return RewriteResult(text, rw.sites)
    out.append(text[emitted:])
    return RewriteResult("".join(out), rw.sites)
