"""Accessor redirection: references to the kernel's out-of-line port-I/O accessors become references to a rewritten
copy the module carries.

With CONFIG_GENERIC_IOMAP (x86) `ioread8`, `iowrite16_rep`, … are functions of lib/iomap.c built into vmlinux: a
driver built on them (libata's SFF layer, 8139too, via-rhine, many pata drivers) executes its port I/O there, so
rewriting the driver's own instructions changes nothing. The Kbuild recipe (toolchain/kbuild.py, Target.iomap) builds
lib/iomap.c from Debian's linux-source into the module, through pvgen-as (its `in`/`out` become thunk calls), with
every exported name prefixed (PREFIX) by the preprocessor; pvgen-as then renames, in the driver's assembly, each
reference to a redirected accessor (a call, a tail-call `jmp`, an address taken in code or data) and records it as
a site of kind KIND. The copy keeps iomap's semantics: a cookie below PIO_RESERVED is a port (rewritten I/O), above it
an MMIO address (a direct memory access, as in the kernel's own copy)."""

from __future__ import annotations

import os
import re

PREFIX = "pvio_iomap_"
KIND = "accessor"
ENV = "PVGEN_AS_REDIRECT"            # colon-separated accessor names pvgen-as redirects (set by the Kbuild recipe)
IOMAP_SOURCE = "lib/iomap.c"

_EXPORT = re.compile(r"^\s*EXPORT_SYMBOL(?:_GPL)?\((\w+)\)", re.M)
_IO_ACCESSOR = re.compile(r"^io(?:read|write)\d+(?:be)?(?:_lo_hi|_hi_lo|_rep)?$")
# Statements whose operands are names, not references: definitions, strings, debug line info.
_NO_REFS = (".globl", ".global", ".local", ".weak", ".type", ".size", ".string", ".ascii", ".asciz", ".file", ".loc",
            ".ident", ".section", ".set", ".equ")


def iomap_exports(source: str) -> list[str]:
    """The names lib/iomap.c exports (its public functions), in source order."""
    return list(dict.fromkeys(_EXPORT.findall(source)))


def port_accessors(exports: list[str]) -> list[str]:
    """The exports that perform I/O (ioreadN/iowriteN, big-endian, 64-bit halves, _rep): the ones redirected.
    ioport_map/ioport_unmap/pci_iounmap only compute or drop cookies and stay the kernel's."""
    return [n for n in exports if _IO_ACCESSOR.match(n)]


def redirect_names() -> frozenset[str]:
    """The accessors named in $PVGEN_AS_REDIRECT (empty: no redirection)."""
    return frozenset(n for n in os.environ.get(ENV, "").split(":") if n)


def redirect_text(text: str, names: frozenset[str], file: str) -> tuple[str, list[dict]]:
    """Rename every reference to one of `names` in GNU as input (AT&T or Intel); returns the new text and one site
    record per renamed statement (the pvgen-as site table's fields, kind KIND)."""
    if not names or not any(n in text for n in names):
        return text, []
    word = re.compile(r"(?<![\w.@])(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True))
                      + r")(?![\w$@])")
    out, sites = [], []
    for lineno, line in enumerate(text.splitlines(keepends=True), 1):
        code = line.split("#", 1)[0]
        stmt = code.strip()
        if not word.search(code) or stmt.startswith(_NO_REFS) or stmt.endswith(":"):
            out.append(line)
            continue
        new_code = word.sub(lambda m: PREFIX + m.group(1), code)
        out.append(new_code + line[len(code):])
        for m in word.finditer(code):
            sites.append({"file": file, "line": lineno, "text": stmt, "kind": KIND, "accessor": m.group(1),
                          "target": PREFIX + m.group(1), "rewritten": True, "reason": None})
    return "".join(out), sites
