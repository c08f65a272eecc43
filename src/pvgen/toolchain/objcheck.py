"""The object is the truth: every port-I/O instruction of an assembled object is a kept site, or an error."""

# A text scan cannot see everything `as` expands: a mnemonic passed as a macro argument (`\op %dx,%al`), a file
# pulled in with `.include`, bytes. So after assembling, pvgen-as and `pvgen verify` disassemble the object
# (objscan.scan, the scanner `pvgen kbuild` uses) and explain each port-I/O instruction outside the runtime's
# symbols. To tell a kept site from a leftover, and to decode `.code16`/`.code32` ranges in their own size, a
# tagged copy of the rewritten text is assembled (asm/sites.py: kept_tag, MODE_TAG) with a DWARF line table, so
# an unexplained instruction is named by the line `as` assembled it from (an `.include`d file, the line of a
# macro's invocation, or a `# N "file"` marker's header).

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass

from pvgen.asm.lexer import blank_comments
from pvgen.asm.sites import MODE_TAG
from pvgen.toolchain.gas import _CANDIDATE, STDIN, Invocation, _linefile, _memfd, write_sites
from pvgen.toolchain.objscan import IoHit, code_sections, is_runtime_symbol, scan, source_lines

# Lines after which the code size may change or another section begins: a mode tag follows each one.
_MODE_LINES = re.compile(
    r"^[ \t]*(?:(?:[A-Za-z_.$][\w.$]*|\d+)[ \t]*:[ \t]*)*\.(?:code16gcc|code16|code32|code64|text|data|bss|"
    r"section|pushsection|popsection|previous|subsection)(?![\w.$]).*$", re.M | re.I)
_CODE_DIRECTIVE = re.compile(r"^[ \t]*\.code(?:16|32|64)", re.M | re.I)

# `as` options that write a file besides the object; the diagnostic copy must not overwrite it.
_SIDE_OUTPUTS = re.compile(r"^-(?:-?MD(?:=.*)?|a[a-z]*(?:=.*)?)$")


def has_mode_switch(texts: list[str]) -> bool:
    return any(_CODE_DIRECTIVE.search(t) for t in texts)


def with_mode_tags(text: str) -> str:
    """text with a mode tag at the end of every `.codeNN` and section-switch line (before its comment)."""
    def tag(m: re.Match) -> str:
        line = m.group(0)
        code, open_comment = blank_comments(line)
        if open_comment:
            return line
        end = len(code.rstrip())
        return line[:end] + MODE_TAG + line[end:]

    return _MODE_LINES.sub(tag, text)


def tagged_copy(text: str, path: str, mode: str, candidate: bool = True, modes: bool | None = None) -> str:
    """The text `as` assembles for the check: kept sites tagged, mode tags if the code size changes (`modes`;
    default: this text has a `.codeNN`), and a `.linefile` so the line table names `path`."""
    from pvgen.rewrite import rewrite_text

    name = "{standard input}" if path == STDIN else path
    tagged = rewrite_text(text, name, mode=mode, tag_kept=True).text if candidate else text
    if has_mode_switch([text]) if modes is None else modes:
        tagged = with_mode_tags(tagged)
    if path == STDIN:
        return tagged
    return _linefile(path, tagged.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Leftover:
    """A port-I/O instruction of the object that no site explains."""

    where: str  # file:line, or `offset X in section Y`
    hit: IoHit

    def __str__(self) -> str:
        insn = f"{self.hit.mnemonic} {self.hit.operands}".strip()
        return (f"{self.where}: error: port I/O `{insn}` left in the object, not rewritten: no site explains it "
                "(a mnemonic from a macro argument, an .include'd file, bytes?)")


def leftovers(obj: str) -> tuple[list[Leftover], list[IoHit]]:
    """(unexplained I/O instructions, kept ones) of a tagged object, outside the runtime's symbols."""
    hits = [h for h in scan(obj) if not is_runtime_symbol(h.symbol)]
    bad = [h for h in hits if not h.kept]
    lines = source_lines(obj, bad) if bad else {}
    cwd = os.getcwd() + os.sep
    out = []
    for h in bad:
        where = lines.get(h)
        if where is None:
            where = f"offset {h.offset:#x} in section {h.section}" + (f" ({h.symbol})" if h.symbol else "")
        else:
            where = os.path.normpath(where[len(cwd):] if where.startswith(cwd) else where)
        out.append(Leftover(where, h))
    return out, [h for h in hits if h.kept]


def diagnostic_args(args: list[str], inputs: dict[int, str], output: str) -> list[str]:
    """The `as` arguments of the tagged copy: inputs replaced, `-o` redirected, line table on, no side outputs."""
    out: list[str] = []
    skip = False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if i in inputs:
            out.append(inputs[i])
        elif a == "-o":
            skip = True
        elif a.startswith("-o"):
            continue
        elif a in ("--MD", "-MD"):
            skip = True
        elif not _SIDE_OUTPUTS.match(a):
            out.append(a)
    return [*out, "--gdwarf-5", "-o", output]


def _say(line: str) -> None:
    sys.stderr.write(f"pvgen-as: {line}\n")


def assemble_checked(inv: Invocation, real_as: str, inputs: list[tuple[int, str, bytes]]) -> int:
    """pvgen-as's slow path: rewrite, assemble, check the object; one stderr line per problem. Returns the status."""
    from pvgen.errors import PvgenError
    from pvgen.rewrite import may_have_sites, rewrite_text
    from pvgen.rewrite.accessors import redirect_names, redirect_text

    mode = "code32" if inv.mode == 32 else "code64"
    texts: list[tuple[int, str, str, bool]] = []  # (index, path, text, holds a candidate)
    sites: list = []
    args = list(inv.args)
    fds: list[int] = []
    stdin_fd: int | None = None
    include_dirs: list[str] = []
    redirect = redirect_names()
    accessors: list[dict] = []     # the redirected references' site records
    for index, path, data in inputs:
        name = "{standard input}" if path == STDIN else path
        text = data.decode("utf-8", "surrogateescape")
        cand = bool(_CANDIDATE.search(data)) and may_have_sites(text)
        texts.append((index, path, text, cand))
        new = None
        if cand:
            if inv.syntax_option:
                _say(f"{inv.syntax_option} is not supported for input with port I/O; write `.intel_syntax noprefix` "
                     "in the source instead")
                return 1
            try:
                result = rewrite_text(text, name, mode=mode)
            except PvgenError as exc:
                msg = str(exc)
                sys.stderr.write(msg + "\n" if msg.startswith(name + ":") else f"{name}: {msg}\n")
                return 1
            sites.extend(result.sites)
            if result.text != text:
                new = result.text.encode("utf-8", "surrogateescape")
        if redirect:     # accessor redirection (rewrite/accessors.py): calls into the module's own iomap copy
            out, acc = redirect_text(text if new is None else new.decode("utf-8", "surrogateescape"), redirect, name)
            if acc:
                new = out.encode("utf-8", "surrogateescape")
                accessors.extend(acc)
        if path == STDIN:
            stdin_fd = _memfd(data if new is None else new)
        elif new is not None:
            fds.append(_memfd(_linefile(path, new)))
            args[index] = f"/proc/self/fd/{fds[-1]}"
            include_dirs.append(os.path.dirname(path) or ".")
    for d in dict.fromkeys(include_dirs):
        args += ["-I", d]  # `.include` in a rewritten file keeps resolving next to the original
    kept = [s for s in sites if not s.rewritten and s.kind != "report-only"]
    for s in kept:
        if inv.strict:
            _say(f"{s.file}:{s.line}: error: `{s.text}` cannot be rewritten exactly: {s.reason} (strict)")
        else:
            _say(f"{s.file}:{s.line}: warning: `{s.text}` kept, not rewritten: {s.reason}")
    if kept and inv.strict:
        return 1
    sites_dir = os.environ.get("PVGEN_SITES_DIR")
    if sites_dir:
        write_sites(sites_dir, inv, sites + accessors, bool(fds) or bool(sites) or bool(accessors))
    sys.stdout.flush()
    proc = subprocess.run([real_as, *args], pass_fds=fds, stdin=stdin_fd, stderr=subprocess.PIPE)
    if proc.returncode != 0 and inv.mode == 64 and _is_32bit_code(real_as, inv, inputs):
        errors = [ln for ln in proc.stderr.decode(errors="replace").splitlines() if "Error:" in ln]
        _say(f"{errors[0] if errors else 'as --64 failed'} (and {max(len(errors) - 1, 0)} more): this is 32-bit "
             "code; assemble it with --32 (gcc -m32)")
        return proc.returncode
    sys.stderr.buffer.write(proc.stderr)
    rc = proc.returncode
    if rc != 0 or inv.output == "/dev/null" or not os.path.isfile(inv.output):
        return rc
    try:
        bad, kept_hits = _check(inv, real_as, texts, mode, bool(kept))
    except PvgenError as exc:
        _say(f"{inv.output}: cannot check the object: {exc}")
        return 1
    for b in bad:
        _say(str(b))
    if bad:
        os.unlink(inv.output)  # no object with a silent leftover stays behind for make to link
        return 1
    io = [s for s in sites if s.kind != "report-only"]
    if io and not inv.quiet:
        counts = Counter(s.kind for s in io if s.rewritten)
        per = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
        held = f" ({len(kept_hits)} instructions in the object)" if kept else ""
        _say(f"{inv.output}: {len(io) - len(kept)} port-I/O sites rewritten ({per}), {len(kept)} kept{held}; "
             "no other port I/O in the object")
    return 0


def _is_32bit_code(real_as: str, inv: Invocation, inputs: list[tuple[int, str, bytes]]) -> bool:
    """Whether the original inputs, which `as --64` rejects, assemble as 32-bit code."""
    args = [a for a in diagnostic_args(inv.args, {}, os.devnull) if a not in ("--64", "--x32")] + ["--32"]
    stdin = next((_memfd(d) for _, p, d in inputs if p == STDIN), None)
    return subprocess.run([real_as, *args], stdin=stdin, capture_output=True).returncode == 0


def _check(inv: Invocation, real_as: str, texts: list[tuple[int, str, str, bool]], mode: str,
           any_kept: bool) -> tuple[list[Leftover], list[IoHit]]:
    """Unexplained and kept port-I/O instructions of inv.output (a tagged copy is assembled only when needed)."""
    mixed = has_mode_switch([t for _, _, t, _ in texts])
    if not mixed and not any_kept:
        hits = [h for h in scan(inv.output) if not is_runtime_symbol(h.symbol)]
        if not hits:
            return [], []
    import tempfile  # only here: it imports shutil and the compressors

    fds: list[int] = []
    replaced: dict[int, str] = {}
    stdin_fd: int | None = None
    dirs: list[str] = []
    for index, path, text, cand in texts:
        data = tagged_copy(text, path, mode, cand, mixed).encode("utf-8", "surrogateescape")
        if path == STDIN:
            stdin_fd = _memfd(data)
            continue
        fds.append(_memfd(data))
        replaced[index] = f"/proc/self/fd/{fds[-1]}"
        dirs.append(os.path.dirname(path) or ".")
    with tempfile.TemporaryDirectory(prefix="pvgen-as-") as tmp:
        diag = os.path.join(tmp, "tagged.o")
        dargs = diagnostic_args(inv.args, replaced, diag)
        for d in dict.fromkeys(dirs):
            dargs += ["-I", d]
        proc = subprocess.run([real_as, *dargs], pass_fds=fds, stdin=stdin_fd, capture_output=True, text=True,
                              errors="replace")
        if proc.returncode == 0 and code_sections(diag) == code_sections(inv.output):
            return leftovers(diag)
        first = (proc.stderr.strip().splitlines() or ["its code differs from the object's"])[-1]
    _say(f"warning: {inv.output}: cannot tag the kept sites ({first}); checking without them")
    if any_kept:
        return [], []
    bad = [h for h in scan(inv.output) if not is_runtime_symbol(h.symbol)]
    return [Leftover(f"{inv.output}: offset {h.offset:#x} in section {h.section}", h) for h in bad], []
