"""Output files named on the command line: checked writable before any work starts, written with one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import click

from pvgen.errors import PvgenError


def check_writable(path: str | Path, option: str = "") -> Path:
    """Raise a one-line PvgenError unless `path` can be written: its directory exists, it is not a directory, and
    a write to it succeeds (a zero-byte write already fails on /dev/full; a FIFO needs its reader). Leaves no file behind and truncates
    nothing: a run that fails later does not leave an empty result where an old one was."""
    p = Path(path)
    what = f"{option} {p}" if option else str(p)
    if p.is_dir():
        raise PvgenError(f"{what}: is a directory, expected a file name")
    existed = p.exists()
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK, 0o666)
    except OSError as exc:
        raise PvgenError(f"{what}: cannot write: {exc.strerror}") from None
    try:
        os.write(fd, b"")
    except OSError as exc:
        raise PvgenError(f"{what}: cannot write: {exc.strerror}") from None
    finally:
        os.close(fd)
        if not existed:
            p.unlink(missing_ok=True)
    return p


def write_output(path: str | Path, data: str | bytes) -> None:
    """Write a result file; a failure (disk full, directory gone since the check) is one line naming the file."""
    raw = data.encode("utf-8", errors="surrogateescape") if isinstance(data, str) else data
    try:
        Path(path).write_bytes(raw)
    except OSError as exc:
        raise PvgenError(f"{path}: cannot write: {exc.strerror}") from None


class OutputPath(click.ParamType):
    """A file the command will write (--json, --plot, -o): checked when the command line is read, so that a typo
    in it costs nothing, not the run that came before the write."""

    name = "file"

    def __init__(self, path_type: type = str):
        self.path_type = path_type

    def convert(self, value, param, ctx):
        if value is None:
            return None
        check_writable(str(value), param.opts[0] if param is not None and param.opts else "")
        return self.path_type(value)
