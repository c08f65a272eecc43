"""x86 decoders from capstone's C library through ctypes: the capstone wheel's engine without its Python import."""

# `import capstone` loads the bindings of all 18 architectures it supports and costs pvgen-as about as much CPU
# as the rewriting of a driver; the scanner needs cs_open/cs_option/cs_disasm for x86 only. So it loads the
# library the pinned capstone wheel ships (capstone/lib/libcapstone.so) and declares those calls from its header
# (include/capstone/capstone.h, API 5.0). When the library is missing or of another API version, decoder()
# falls back to capstone's own Python binding, which yields the same tuples (a test compares them).

from __future__ import annotations

import ctypes
import os
from importlib.util import find_spec

CS_API_MAJOR = 5  # the cs_insn layout below is API 5's
CS_ARCH_X86 = 3
CS_MODE = {16: 1 << 1, 32: 1 << 2, 64: 1 << 3}
CS_OPT_SKIPDATA, CS_OPT_ON = 5, 3


class _CsInsn(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint), ("address", ctypes.c_uint64), ("size", ctypes.c_uint16),
                ("bytes", ctypes.c_ubyte * 24), ("mnemonic", ctypes.c_char * 32), ("op_str", ctypes.c_char * 160),
                ("detail", ctypes.c_void_p)]


_lib: ctypes.CDLL | None | bool = None  # None: not tried yet; False: unavailable


def _library() -> ctypes.CDLL | None:
    global _lib
    if _lib is None:
        _lib = False
        spec = find_spec("capstone")  # finds the package without executing it
        for d in (spec.submodule_search_locations or []) if spec else []:
            path = os.path.join(d, "lib", "libcapstone.so")
            if not os.path.exists(path):
                continue
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            lib.cs_version.restype = ctypes.c_uint
            major, minor = ctypes.c_int(), ctypes.c_int()
            lib.cs_version(ctypes.byref(major), ctypes.byref(minor))
            if major.value != CS_API_MAJOR:
                continue
            lib.cs_open.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_size_t)]
            lib.cs_option.argtypes = [ctypes.c_size_t, ctypes.c_int, ctypes.c_size_t]
            lib.cs_disasm.argtypes = [ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64,
                                      ctypes.c_size_t, ctypes.POINTER(ctypes.POINTER(_CsInsn))]
            lib.cs_disasm.restype = ctypes.c_size_t
            lib.cs_free.argtypes = [ctypes.POINTER(_CsInsn), ctypes.c_size_t]
            lib.cs_close.argtypes = [ctypes.POINTER(ctypes.c_size_t)]
            _lib = lib
            break
    return _lib or None


class CDecoder:
    """One x86 decoder of the given code size in SKIPDATA mode (undecodable bytes become `.byte`)."""

    def __init__(self, lib: ctypes.CDLL, bits: int):
        self._lib = lib
        self._handle = ctypes.c_size_t()
        if lib.cs_open(CS_ARCH_X86, CS_MODE[bits], ctypes.byref(self._handle)) != 0:
            raise OSError(f"capstone: cs_open(x86, {bits}-bit) failed")
        lib.cs_option(self._handle, CS_OPT_SKIPDATA, CS_OPT_ON)

    def disasm_lite(self, code: bytes, offset: int):
        """(address, size, mnemonic, operands) of each instruction, as capstone's Cs.disasm_lite yields them."""
        insns = ctypes.POINTER(_CsInsn)()
        n = self._lib.cs_disasm(self._handle, bytes(code), len(code), offset, 0, ctypes.byref(insns))
        try:
            for i in range(n):
                ins = insns[i]
                yield ins.address, ins.size, ins.mnemonic.decode("ascii"), ins.op_str.decode("ascii")
        finally:
            if n:
                self._lib.cs_free(insns, n)

    def __del__(self):
        if self._handle.value:
            self._lib.cs_close(ctypes.byref(self._handle))


def decoder(bits: int, *, binding: bool = False):
    """An x86 decoder of `bits` (16, 32, 64) with a disasm_lite(code, offset) method, in SKIPDATA mode.

    The C library directly when it is there (binding=False), else capstone's Python binding."""
    lib = None if binding else _library()
    if lib is not None:
        return CDecoder(lib, bits)
    import capstone

    md = capstone.Cs(capstone.CS_ARCH_X86, {16: capstone.CS_MODE_16, 32: capstone.CS_MODE_32,
                                            64: capstone.CS_MODE_64}[bits])
    md.skipdata = True
    return md
