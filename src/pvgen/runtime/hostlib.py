"""The host build of the runtime in-process (ctypes): guest RAM is a buffer, the exit runs the Python monitor."""

from __future__ import annotations

import ctypes
import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pvgen import protocol as P
from pvgen.errors import ProtocolError

PAGE = P.PAGE_SIZE


class HostMemory:
    """GuestMemory over a page-aligned ctypes buffer: GPA = offset from `base` (a host address)."""

    def __init__(self, size: int):
        self._raw = ctypes.create_string_buffer(size + PAGE)
        addr = ctypes.addressof(self._raw)
        self.base = (addr + PAGE - 1) & ~(PAGE - 1)
        self.size = size

    def _check(self, gpa: int, n: int) -> None:
        if gpa < 0 or n < 0 or gpa + n > self.size:
            raise ProtocolError(f"GPA range {gpa:#x}+{n:#x} outside guest RAM ({self.size:#x})")

    def read(self, gpa: int, n: int) -> bytes:
        self._check(gpa, n)
        return ctypes.string_at(self.base + gpa, n)

    def write(self, gpa: int, data: bytes) -> None:
        self._check(gpa, len(data))
        ctypes.memmove(self.base + gpa, bytes(data), len(data))   # any bytes-like (the monitor may pass a bytearray)


class Hop(enum.IntEnum):
    """Operation kinds of pvio_host_run (arch_host_drive.c)."""

    OUT = 1
    IN = 2
    OUTS = 3
    INS = 4
    TICK = 5
    HLT = 6
    THRESHOLD = 7
    FLUSH = 8


class HostOp(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_uint32), ("port", ctypes.c_uint32), ("size", ctypes.c_uint32),
                ("value", ctypes.c_uint32), ("buf", ctypes.c_uint64)]


_EXIT = ctypes.CFUNCTYPE(None, ctypes.c_uint16, ctypes.c_uint32)
_IN = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_uint16, ctypes.c_uint)
_OUT = ctypes.CFUNCTYPE(None, ctypes.c_uint16, ctypes.c_uint, ctypes.c_uint32)
_STR = ctypes.CFUNCTYPE(None, ctypes.c_uint16, ctypes.c_uint, ctypes.c_void_p, ctypes.c_ulong)
_HLT = ctypes.CFUNCTYPE(None)


class _Ops(ctypes.Structure):
    _fields_ = [("exit", _EXIT), ("in_", _IN), ("out", _OUT), ("ins", _STR), ("outs", _STR), ("hlt", _HLT),
                ("irq", _HLT)]


@dataclass
class Strict:
    """What the host runtime does with a real instruction: the test doubles call these."""

    read: Callable[[int, int], int]
    write: Callable[[int, int, int], None]
    hlt: Callable[[], None] = lambda: None


_LAST: dict[str, "HostRuntime"] = {}    # per library: the runtime whose area may still be registered


class HostRuntime:
    """One loaded host build.  `exit(port, value)` is the flush/registration exit (the monitor's control ports);
    `strict` receives real instructions.  A Python exception inside a callback is stored and re-raised by run()."""

    def __init__(self, lib: Path, mem: HostMemory, exit: Callable[[int, int], None], strict: Strict,
                 irq: Callable[[], None] | None = None):
        self.lib = ctypes.CDLL(str(lib))
        self.mem, self._exit, self.strict = mem, exit, strict
        self._area_gpa: int | None = None
        old = _LAST.get(str(lib))
        if old is not None:
            old.detach()            # the library's globals outlive a runtime object: drop its area first
        _LAST[str(lib)] = self
        self.exits = 0
        self.unmasked = 0          # exits and real instructions made with the soft interrupt mask clear
        self.error: BaseException | None = None
        ctypes.c_ulong.in_dll(self.lib, "pvio_host_ram_base").value = mem.base
        self.lib.pvio_host_irq_depth.restype = ctypes.c_ulong
        self._cbs = _Ops(_EXIT(self._on_exit), _IN(self._guard(strict.read, 0)), _OUT(self._guard(strict.write)),
                         _STR(self._guard(self._ins)), _STR(self._guard(self._outs)),
                         _HLT(self._guard(strict.hlt, masked=False)), _HLT(self._guard(irq or (lambda: None))))
        self.on_masked_call: Callable[[], None] | None = None   # runs at every masked callback (interrupt tests)
        ctypes.memmove(ctypes.addressof(_Ops.in_dll(self.lib, "pvio_host_ops")), ctypes.addressof(self._cbs),
                       ctypes.sizeof(_Ops))
        self.lib.pvio_init.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        self.lib.pvio_init.restype = ctypes.c_int
        self.lib.pvio_host_run.argtypes = [ctypes.POINTER(HostOp), ctypes.c_ulong, ctypes.POINTER(ctypes.c_uint32)]
        self.lib.pvio_host_outb_loop.argtypes = [ctypes.c_uint16, ctypes.c_ulong]
        self.lib.pvio_set_threshold.argtypes = [ctypes.c_uint]
        self.lib.pvio_set_threshold.restype = ctypes.c_uint

    def _guard(self, fn: Callable, default=None, masked: bool = True) -> Callable:
        """Wrap a callback; `masked`: the runtime must call it with interrupts masked (all but hlt)."""
        def call(*args):
            if masked:
                if self.lib.pvio_host_irq_depth() == 0:
                    self.unmasked += 1
                elif self.on_masked_call is not None:
                    self.on_masked_call()
            try:
                return fn(*args)
            except BaseException as exc:  # noqa: BLE001 - must not unwind through C; re-raised by run()
                self.error = self.error or exc
                return default
        return call

    def raise_irq(self) -> int:
        """Make an interrupt pending (delivered when the mask drops to zero); returns the running op's index."""
        ctypes.c_ulong.in_dll(self.lib, "pvio_host_irq_pending").value = 1
        return ctypes.c_ulong.in_dll(self.lib, "pvio_host_cur_op").value

    def _on_exit(self, port: int, value: int) -> None:
        self.exits += 1
        self._guard(self._exit)(port, value)

    def _ins(self, port: int, size: int, dst: int, count: int) -> None:
        data = b"".join(self.strict.read(port, size).to_bytes(size, "little") for _ in range(count))
        ctypes.memmove(dst, data, len(data))

    def _outs(self, port: int, size: int, src: int, count: int) -> None:
        data = ctypes.string_at(src, count * size)
        for k in range(0, len(data), size):
            self.strict.write(port, size, int.from_bytes(data[k:k + size], "little"))

    def _reraise(self) -> None:
        if self.error is not None:
            exc, self.error = self.error, None
            raise exc

    def init(self, area_gpa: int) -> int:
        rc = self.lib.pvio_init(self.mem.base + area_gpa, P.AREA_SIZE)
        self._reraise()
        if rc == 0:
            self._area_gpa = area_gpa
        return rc

    def detach(self) -> None:
        """Forget the registered area without flushing it (its monitor may be gone): the runtime is direct again."""
        if self._area_gpa is not None:
            off, size = P.HEADER.field("count")
            self.mem.write(self._area_gpa + off, bytes(size))
            self.lib.pvio_fini()
            self._area_gpa = None

    def run(self, ops: list[HostOp]) -> list[int]:
        arr = (HostOp * max(1, len(ops)))(*ops)
        res = (ctypes.c_uint32 * max(1, len(ops)))()
        self.lib.pvio_host_run(arr, len(ops), res)
        self._reraise()
        return list(res[: len(ops)])

    def header(self, area_gpa: int) -> dict[str, int]:
        return P.decode_header(self.mem.read(area_gpa, P.HEADER.size))
