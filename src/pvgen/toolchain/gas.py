"""pvgen-as: a drop-in GNU as that rewrites port I/O in its input, then execs the real assembler."""

# Keep this module's import cost tiny: it runs once per object file in a kernel build. Only `os`, `sys` and
# `re` are imported on the fast path (input with no site); the rewriter (and lark behind it) is imported only
# when the cheap pre-filter below finds a candidate mnemonic.

from __future__ import annotations

import os
import re
import sys

# Options that make `as` exit before reading any input: hand them over untouched (reading stdin would block).
EXIT_EARLY = frozenset({"--version", "--help", "--target-help", "--dump-config"})

# Short options whose value is the next argument when not joined (`-o out.o`, `-I dir`).
SHORT_WITH_ARG = frozenset({"-o", "-I"})

# Long options declared with required_argument in binutils 2.40 (as.c and config/tc-i386.c). getopt_long_only
# accepts one or two dashes and a separate value when no `=` is given.
LONG_WITH_ARG = frozenset({
    "debug-prefix-map", "defsym", "MD", "hash-size", "listing-lhs-width", "listing-lhs-width2",
    "listing-rhs-width", "listing-cont-lines", "size-check", "elf-stt-common", "generate-missing-build-notes",
    "multibyte-handling", "gdwarf-cie-version", "march", "mtune", "msse-check", "moperand-check", "mavxscalar",
    "mvexwig", "mevexlig", "mevexwig", "mevexrcig", "mmnemonic", "msyntax", "mx86-used-note",
    "momit-lock-prefix", "mfence-as-lock-add", "mrelax-relocations", "malign-branch-boundary", "malign-branch",
    "malign-branch-prefix-size", "mlfence-after-load", "mlfence-before-indirect-branch", "mlfence-before-ret",
})

STDIN = "-"
PVGEN_OPTIONS = frozenset({"--strict", "--quiet"})  # pvgen-as's own (`gcc -Wa,--strict`), not passed to as

# A superset of the lines on which the rewriter finds a site (in/out/ins/outs with any suffix, hlt): the mnemonic
# is a whole word at a statement start (line start, or after `:`, `;` or `*/`), possibly behind other words
# (prefixes such as `rep` or `lock`, whatever the rewriter's list is) each followed by blanks or `;`. A word
# elsewhere (`-mno-fp-ret-in-387` in gcc's recorded switches, `call in_x`) does not count. It only decides
# whether the rewriter is imported at all; the rewriter's may_have_sites() refines it. launcher.py has the same
# expression for grep.
# Blanks include the form feed `as` accepts; a prefix word may be `rex.W` or a `{disp32}` pseudo-prefix.
_CANDIDATE = re.compile(
    rb"(?:^|[:;]|\*/)[^\S\n]*(?:(?:[a-z_][a-z0-9_.]*|\{[a-z0-9_]+\})(?:[^\S\n]+|[^\S\n]*;[^\S\n]*))*"
    rb"(?:(?:in|out|ins|outs)[bwld]?|hlt)(?![\w.$])",
    re.I | re.M,
)
# Input the text scan cannot see through, so the object is checked (objcheck.py) even without a candidate: an
# `.include`d or `.incbin`ed file, or a macro/.irp (its arguments may name an I/O mnemonic) in input that spells
# one somewhere (`X inb`, `.irp op,inb,outb`). launcher.py has the same expressions for grep.
_INCLUDE = re.compile(rb"^[^\S\n]*\.(?:include|incbin)(?![\w.$])", re.I | re.M)
_MACRO = re.compile(rb"\.(?:macro|irpc?)(?![\w.$])", re.I)
_IO_WORD = re.compile(rb"(?<![\w.$-])(?:(?:in|out|ins|outs)[bwld]?|hlt)(?![\w.$-])", re.I)


def needs_check(datas: list[bytes]) -> bool:
    """Whether the object of these inputs must be checked (and the rewriter imported): the slow path."""
    if any(_CANDIDATE.search(d) or _INCLUDE.search(d) for d in datas):
        return True
    return any(_MACRO.search(d) for d in datas) and any(_IO_WORD.search(d) for d in datas)


class Invocation:
    """The parts of an `as` command line pvgen-as cares about."""

    __slots__ = ("args", "inputs", "output", "mode", "early_exit", "syntax_option", "strict", "quiet")

    def __init__(self, args: list[str]):
        self.args = args  # the full argument list (response files expanded), without argv[0]
        self.inputs: list[tuple[int, str]] = []  # (index in args, path); path "-" is stdin
        self.output = "a.out"
        self.mode = 64
        self.early_exit = False
        self.syntax_option: str | None = None  # -msyntax=intel / -mnaked-reg: not understood by the rewriter
        self.strict = os.environ.get("PVGEN_STRICT", "") not in ("", "0")  # a kept site fails the build
        self.quiet = False  # no summary line (warnings and errors are always printed)


def expand_response_files(args: list[str], depth: int = 0) -> list[str]:
    """Expand `@file` arguments as libiberty's expandargv does (quotes, backslashes, recursion)."""
    out: list[str] = []
    for arg in args:
        if not arg.startswith("@") or len(arg) == 1 or depth > 16:
            out.append(arg)
            continue
        try:
            with open(arg[1:], encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except OSError:
            out.append(arg)  # libiberty keeps an unreadable @file as a literal argument
            continue
        out.extend(expand_response_files(_split_response(text), depth + 1))
    return out


def _split_response(text: str) -> list[str]:
    """Split response-file text on whitespace, honouring '...', "..." and backslash escapes."""
    words: list[str] = []
    cur: list[str] = []
    have = False
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur.append(text[i + 1])
            have = True
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
            else:
                cur.append(c)
        elif c in "'\"":
            quote = c
            have = True
        elif c.isspace():
            if have:
                words.append("".join(cur))
                cur, have = [], False
        else:
            cur.append(c)
            have = True
        i += 1
    if have:
        words.append("".join(cur))
    return words


def parse_command_line(argv: list[str]) -> Invocation:
    """Find the input files, the output and the code mode in an `as` command line; take pvgen's own options out."""
    inv = Invocation(expand_response_files(argv))
    inv.strict = inv.strict or "--strict" in inv.args
    inv.quiet = "--quiet" in inv.args
    inv.args = args = [a for a in inv.args if a not in PVGEN_OPTIONS]
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-", "--"):
            inv.inputs.append((i, STDIN))
        elif not arg.startswith("-"):
            inv.inputs.append((i, arg))
        elif arg in EXIT_EARLY:
            inv.early_exit = True
        elif arg in SHORT_WITH_ARG:
            if arg == "-o" and i + 1 < len(args):
                inv.output = args[i + 1]
            i += 1
        elif arg.startswith("-o"):
            inv.output = arg[2:]
        elif arg == "--32":
            inv.mode = 32
        elif arg in ("--64", "--x32"):
            inv.mode = 64
        else:
            name = arg.lstrip("-")
            if name in ("msyntax=intel", "mnaked-reg", "mmnemonic=intel") and inv.syntax_option is None:
                inv.syntax_option = arg
            if "=" not in name and name in LONG_WITH_ARG:
                i += 1
        i += 1
    if not inv.inputs:
        inv.inputs.append((-1, STDIN))
    return inv


def _is_self(path: str, me: set[str]) -> bool:
    """True for pvgen-as itself, a link to it, or a pvgen launcher script (launcher.py)."""
    real = os.path.realpath(path)
    if real in me or os.path.basename(real) == "pvgen-as":
        return True
    try:
        with open(real, "rb") as f:
            return b"Generated by pvgen" in f.read(256)
    except OSError:
        return False


def find_real_as(argv0: str) -> str:
    """The GNU as to hand over to: $PVGEN_REAL_AS, else the first `as` in PATH that is not pvgen-as."""
    env = os.environ.get("PVGEN_REAL_AS")
    if env:
        return _checked_real_as(env)
    me = {os.path.realpath(argv0), os.path.realpath(sys.argv[0])}
    own_dirs = {os.path.dirname(os.path.abspath(argv0)), os.path.dirname(os.path.realpath(argv0))}
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not d or os.path.abspath(d) in own_dirs:
            continue
        cand = os.path.join(d, "as")
        if os.path.isfile(cand) and os.access(cand, os.X_OK) and not _is_self(cand, me):
            return cand
    return "/usr/bin/as"


def _checked_real_as(value: str) -> str:
    """$PVGEN_REAL_AS as a program to exec: a path, or a name looked up on PATH; else a SettingError naming it."""
    import shutil

    from pvgen.errors import SettingError

    path = value if "/" in value else shutil.which(value)
    if path is None:
        raise SettingError("PVGEN_REAL_AS", value, "not found on PATH")
    if not os.path.exists(path):
        raise SettingError("PVGEN_REAL_AS", value, "no such file")
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        raise SettingError("PVGEN_REAL_AS", value, "not an executable program")
    return path


def _read_input(path: str) -> bytes | None:
    """The bytes of one input, or None when `as` itself should report the problem (missing file...)."""
    if path == STDIN:
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _linefile(path: str, text: bytes) -> bytes:
    """Prefix rewritten text with a .linefile naming the original, so `as` diagnostics and -g line info match.

    A first line `#NO_APP` switches off as's preprocessor and must stay first, so the directive follows it."""
    quoted = path.replace("\\", "\\\\").replace('"', '\\"').encode("utf-8", "surrogateescape")
    if text.startswith(b"#NO_APP\n"):
        return b"#NO_APP\n\t.linefile 2 \"" + quoted + b'"\n' + text[8:]
    return b'\t.linefile 1 "' + quoted + b'"\n' + text


def _memfd(data: bytes) -> int:
    """An inheritable, rewound file descriptor holding data (memfd; a deleted temp file where unavailable)."""
    try:
        fd = os.memfd_create("pvgen-as", 0)
    except (AttributeError, OSError):
        import tempfile

        fd, name = tempfile.mkstemp(prefix="pvgen-as-")
        os.unlink(name)
        os.set_inheritable(fd, True)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def rewrite_input(path: str, data: bytes, mode: int) -> tuple[bytes | None, list]:
    """Rewrite one input; (None, sites) when nothing changes. Raises PvgenError on malformed input."""
    from pvgen.rewrite import may_have_sites, rewrite_text

    text = data.decode("utf-8", "surrogateescape")
    if not may_have_sites(text):
        return None, []
    name = "{standard input}" if path == STDIN else path
    result = rewrite_text(text, name, mode=mode)
    new = result.text.encode("utf-8", "surrogateescape")
    return (None if new == data else new), list(result.sites)


def _site_record(site, obj: str) -> dict:
    rec = site.to_json() if hasattr(site, "to_json") else dict(site)   # accessor sites are records already
    rec["object"] = obj
    return rec


def write_sites(sites_dir: str, inv: Invocation, sites: list, rewritten: bool) -> None:
    """One JSON per object in $PVGEN_SITES_DIR: the object, its inputs and the site records. A directory that
    cannot take it costs a warning, not the object: the assembly is correct without its site table."""
    try:
        _write_sites(sites_dir, inv, sites, rewritten)
    except OSError as exc:
        problem = "not a directory" if os.path.exists(sites_dir) and not os.path.isdir(sites_dir) else exc.strerror
        sys.stderr.write(f"pvgen-as: warning: PVGEN_SITES_DIR={sites_dir}: {problem}; "
                         f"no site table for {inv.output}\n")


def _write_sites(sites_dir: str, inv: Invocation, sites: list, rewritten: bool) -> None:
    import json

    obj = os.path.abspath(inv.output)
    if inv.output == "/dev/null":
        return
    os.makedirs(sites_dir, exist_ok=True)
    doc = {
        "object": obj,
        "inputs": [p for _, p in inv.inputs],
        "rewritten": rewritten,
        "sites": [_site_record(s, obj) for s in sites],
    }
    name = obj.strip("/").replace("/", "__") + ".json"
    tmp = os.path.join(sites_dir, f".{name}.{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, default=str)
    os.replace(tmp, os.path.join(sites_dir, name))


def _excluded(output: str) -> bool:
    """$PVGEN_AS_EXCLUDE: colon-separated glob patterns of object names assembled without rewriting."""
    pats = os.environ.get("PVGEN_AS_EXCLUDE")
    if not pats:
        return False
    from fnmatch import fnmatchcase

    name = os.path.basename(output)
    return any(fnmatchcase(name, p) for p in pats.split(":") if p)


def run(argv: list[str], argv0: str = "pvgen-as") -> int:
    """Rewrite the inputs named by an `as` command line and run the real `as`; returns only on the slow path."""
    real_as = find_real_as(argv0)
    if os.environ.get("PVGEN_AS_ACTIVE") and _is_self(real_as, {os.path.realpath(argv0)}):
        sys.stderr.write("pvgen-as: the real as resolves to pvgen-as itself; set PVGEN_REAL_AS=/usr/bin/as\n")
        return 1
    inv = parse_command_line(argv)
    if inv.early_exit or _excluded(inv.output):
        os.execv(real_as, [real_as, *inv.args])
    inputs: list[tuple[int, str, bytes]] = []
    for index, path in inv.inputs:
        data = _read_input(path)
        if data is not None:  # unreadable: the real as names the problem in its own words
            inputs.append((index, path, data))
    os.environ["PVGEN_AS_ACTIVE"] = "1"
    if needs_check([d for _, _, d in inputs]) or os.environ.get("PVGEN_AS_REDIRECT"):   # rewrite/accessors.py
        from pvgen.toolchain.objcheck import assemble_checked

        return assemble_checked(inv, real_as, inputs)
    stdin = next((d for _, p, d in inputs if p == STDIN), None)
    if stdin is not None:
        fd = _memfd(stdin)
        os.dup2(fd, 0)
        os.close(fd)
    sys.stdout.flush()
    os.execv(real_as, [real_as, *inv.args])
    return 1  # not reached


def main() -> None:
    from pvgen.errors import PvgenError

    try:
        sys.exit(run(sys.argv[1:], sys.argv[0]))
    except PvgenError as exc:
        sys.stderr.write(f"pvgen-as: {exc}\n")
        sys.exit(1)
    except OSError as exc:
        what = f"{exc.filename}: " if exc.filename is not None else ""
        sys.stderr.write(f"pvgen-as: {what}{exc.strerror or exc}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
