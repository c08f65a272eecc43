"""The pvgen exception hierarchy: every error a user can cause carries its context."""

from __future__ import annotations


class PvgenError(Exception):
    """Base of every error pvgen reports to a user (printed as one line by the CLI)."""


class AsmSyntaxError(PvgenError):
    """Malformed or unsupported assembly, located as file:line[:col]."""

    def __init__(self, path: str, line: int, message: str, col: int | None = None):
        self.path, self.line, self.col, self.message = path, line, col, message
        where = f"{path}:{line}" + (f":{col}" if col is not None else "")
        super().__init__(f"{where}: {message}")


class RewriteError(PvgenError):
    """A site that cannot be rewritten without changing the driver's behaviour."""


class ProtocolError(PvgenError):
    """A batch page or protocol message that violates the pvgen batch protocol."""


class KvmError(PvgenError):
    """A failing KVM ioctl, named, with its errno."""

    def __init__(self, ioctl: str, errno: int, detail: str = ""):
        import os

        self.ioctl, self.errno = ioctl, errno
        msg = f"{ioctl} failed: {os.strerror(errno)} (errno {errno})"
        super().__init__(msg + (f": {detail}" if detail else ""))


class EnvironmentMissing(PvgenError):
    """Something pvgen needs from the machine is absent; says what and how to fix it."""

    def __init__(self, what: str, how_to_fix: str):
        self.what, self.how_to_fix = what, how_to_fix
        super().__init__(f"{what} is missing: {how_to_fix}")


class SettingError(PvgenError):
    """An environment variable pvgen reads holds an unusable value; names the variable, its value and why."""

    def __init__(self, variable: str, value: str, problem: str):
        self.variable, self.value, self.problem = variable, value, problem
        super().__init__(f"{variable}={value}: {problem}")
