"""pvio.ko: the batching runtime as a kernel module of its own, built in the same Kbuild directory as the rewritten
drivers of a `pvgen-batch` corpus build (toolchain/kbuild.py), which resolve their thunk calls against its exports.

Its objects are named `pvio-pvio-*.o` so that pvgen-as ($PVGEN_AS_EXCLUDE, kbuild.RUNTIME_EXCLUDE) assembles them
as they are: the runtime's own `in`/`out` are the instructions it falls back to without a monitor."""

from __future__ import annotations

from pathlib import Path

MODULE = "pvio"
# object stem -> the runtime source it is a copy of
PARTS = {"main": "pvio_module.c", "thunks": "thunks64.S", "batch": "batch.c", "models": "models.c",
         "glue": "arch_linux_glue.c"}
EXPORTS_HEADER = "pvio_exports.h"


def stem(part: str) -> str:
    return f"{MODULE}-pvio-{part}"


def files(runtime_dir: Path) -> dict[str, bytes]:
    """The module's sources in the build directory (the runtime's headers are copied by the caller)."""
    from pvgen.runtime.build import exports_header

    out = {stem(p) + Path(src).suffix: (runtime_dir / src).read_bytes() for p, src in PARTS.items()}
    out[EXPORTS_HEADER] = exports_header().encode()
    return out


def kbuild_lines() -> list[str]:
    """Kbuild lines of the module (flags as `pvgen runtime export` gives them; docs/protocol.md, "Kbuild recipe")."""
    objs = " ".join(f"{stem(p)}.o" for p in PARTS)
    lines = [f"obj-m += {MODULE}.o", f"{MODULE}-y := {objs}",
             f"AFLAGS_{stem('thunks')}.o += -DPVIO_KERNEL -DPVIO_RETHUNK"]
    lines += [f"CFLAGS_{stem(p)}.o += -mgeneral-regs-only -DPVIO_TARGET_LINUX" for p in ("batch", "models")]
    return lines
