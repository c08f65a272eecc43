"""Build the guest runtime (thunks + a back end) for a target: Linux module, freestanding x86-64/i386, or host."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pvgen.cache import workdir as cache_workdir
from pvgen.errors import EnvironmentMissing, PvgenError

RUNTIME_DIR = Path(__file__).resolve().parent

# Warnings are errors everywhere; the back end must use general registers only (no_caller_saved_registers).
COMMON = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-mgeneral-regs-only", "-fno-stack-protector",
          "-fno-strict-aliasing", "-fno-asynchronous-unwind-tables", f"-I{RUNTIME_DIR}"]
KERNEL64 = ["-ffreestanding", "-fno-pic", "-mcmodel=kernel", "-mno-red-zone", "-mpreferred-stack-boundary=3"]


@dataclass(frozen=True)
class Target:
    name: str
    cflags: tuple[str, ...]
    asflags: tuple[str, ...]
    thunks: str
    glue: tuple[str, ...]          # extra C files of the target layer (batch back end only)
    link: str                      # "relocatable" (ld -r) or "shared" (a host .so for ctypes)
    doc: str
    file_flags: tuple[tuple[str, tuple[str, ...]], ...] = ()   # (source name, extra flags)
    # Mixed code sizes: the code is built for its own size (cflags) but assembled into an object of this format
    # (elf64 or elf32), and only the thunks (this glob) stay global, so that it links beside the object format's
    # own runtime, whose back-end names it would otherwise clash with.
    mixed: str = ""
    keep_global: str = ""

    @property
    def backends(self) -> tuple[str, ...]:
        # The batching back end calls its environment (pvio_arch_*), which a mixed object has only for its
        # format's own code size.
        return ("direct",) if self.mixed else BACKENDS


TARGETS: dict[str, Target] = {
    "linux-module": Target(
        "linux-module",
        (*KERNEL64, "-DPVIO_TARGET_LINUX", "-mindirect-branch=thunk-extern", "-mfunction-return=thunk-extern",
         "-mindirect-branch-register", "-fno-jump-tables"),
        ("-DPVIO_KERNEL", "-DPVIO_RETHUNK"), "thunks64.S", (), "relocatable",
        "x86-64 Linux kernel module object (-mcmodel=kernel, -mno-red-zone, RETHUNK returns)"),
    "x86_64": Target(
        "x86_64", tuple(KERNEL64), (), "thunks64.S", ("arch_hx.c",), "relocatable",
        "x86-64 freestanding for the CPL3 guest harness (harness.h supplies the hooks)"),
    "i386": Target(
        "i386", ("-m32", "-ffreestanding", "-fno-pic"), ("-m32",), "thunks32.S", (), "relocatable",
        "i386 freestanding (the environment supplies pvio_arch_virt_to_phys/irq_save/irq_restore)"),
    # .code32 / .code16 code inside a 64-bit object, .code16 inside a 32-bit one (docs/thunk-abi.md, "Mixed code
    # sizes"): link the object with its format's runtime and with this one.
    "x86_64-code32": Target(
        "x86_64-code32", ("-m32", "-ffreestanding", "-fno-pic"), (), "thunks32.S", (), "relocatable",
        "__pvio32_ thunks and a 32-bit direct back end in an ELF64 object (.code32 code of a 64-bit object)",
        mixed="elf64", keep_global="__pvio32_*"),
    "x86_64-code16": Target(
        "x86_64-code16", ("-m16", "-DPVIO_CODE16", "-ffreestanding", "-fno-pic"), (), "thunks16.S", (),
        "relocatable", "__pvio16_ thunks and a gcc -m16 direct back end in an ELF64 object (.code16 code of a "
        "64-bit object)", mixed="elf64", keep_global="__pvio16_*"),
    "i386-code16": Target(
        "i386-code16", ("-m16", "-DPVIO_CODE16", "-ffreestanding", "-fno-pic"), (), "thunks16.S", (),
        "relocatable", "__pvio16_ thunks and a gcc -m16 direct back end in an ELF32 object (.code16 code of a "
        "32-bit object)", mixed="elf32", keep_global="__pvio16_*"),
    "host": Target(
        "host", ("-fPIC", "-DPVIO_TARGET_HOST", "-mpreferred-stack-boundary=3"), (), "thunks64.S",
        ("arch_host.c", "arch_host_drive.c"), "shared",
        "x86-64 user-mode shared library for tests: the exit and real instructions are test doubles (ctypes)",
        # The test doubles call into Python, which needs the ABI's 16-byte stack alignment: they realign.
        (("arch_host.c", ("-mpreferred-stack-boundary=4", "-mincoming-stack-boundary=3")),)),
}
BACKENDS = ("direct", "batch")


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        first = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise PvgenError(f"{Path(cmd[0]).name} failed: {first[0] if first else 'exit ' + str(proc.returncode)}"
                         f" ({' '.join(cmd)})")


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise EnvironmentMissing(tool, "install build-essential (and gcc-multilib for i386)")
    return path


def sources(target: str, backend: str) -> list[Path]:
    t = TARGETS[target]
    files = [t.thunks, "batch.c", "models.c", *t.glue] if backend == "batch" else [t.thunks, "direct.c"]
    return [RUNTIME_DIR / f for f in files]


def build(target: str, backend: str, out: Path, *, extra_cflags: tuple[str, ...] = ()) -> Path:
    """Compile and link the runtime for target with the given back end into out; returns out."""
    if target not in TARGETS:
        raise PvgenError(f"unknown runtime target {target!r}: expected one of {', '.join(TARGETS)}")
    if backend not in BACKENDS:
        raise PvgenError(f"unknown runtime back end {backend!r}: expected one of {', '.join(BACKENDS)}")
    t = TARGETS[target]
    if backend not in t.backends:
        raise PvgenError(f"runtime target {target} has no {backend} back end (only {', '.join(t.backends)}): its "
                         "environment exists only for the object's own code size")
    gcc = _need("gcc")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with cache_workdir("rt-") as tmp:
        objs = []
        for src in sources(target, backend):
            if not src.exists():
                raise PvgenError(f"runtime source {src.name} is missing from {RUNTIME_DIR}")
            obj = Path(tmp) / (src.name + ".o")
            flags = [*t.cflags, *t.asflags] if src.suffix == ".S" else list(t.cflags)
            flags += [f for name, extra in t.file_flags if name == src.name for f in extra]
            if t.mixed:
                _compile_mixed(gcc, t, src, [*COMMON, *flags, *extra_cflags], obj)
            else:
                _run([gcc, *COMMON, *flags, *extra_cflags, "-c", str(src), "-o", str(obj)])
            objs.append(str(obj))
        if t.link == "shared":
            _run([gcc, "-shared", "-Wl,-Bsymbolic", "-Wl,-z,noexecstack", "-o", str(out), *objs])
        else:
            ld = _need("ld")
            elf32 = target == "i386" or t.mixed == "elf32"
            _run([ld, "-r", "-m", "elf_i386" if elf32 else "elf_x86_64", "-o", str(out), *objs])
            if t.keep_global:
                _run([_need("objcopy"), "--wildcard", "-G", t.keep_global, str(out)])
    return out


# The code size gcc compiles for (-m32, -m16) and the directive that keeps it when `as` assembles the output into
# an object of another format (gcc -m16 writes .code16gcc itself).
_CODE_DIRECTIVE = {"-m32": ".code32\n", "-m16": ""}


def _compile_mixed(gcc: str, t: Target, src: Path, flags: list[str], obj: Path) -> None:
    """Compile src for its code size into an object of format t.mixed: C through `gcc -S` and `as`, the thunks
    (which start with their own .codeNN) with the format's own -m option."""
    fmt = "-m64" if t.mixed == "elf64" else "-m32"
    if src.suffix == ".S":
        _run([gcc, *(f for f in flags if f not in _CODE_DIRECTIVE), fmt, "-c", str(src), "-o", str(obj)])
        return
    size = next(f for f in flags if f in _CODE_DIRECTIVE)
    asm = obj.with_suffix(".s")
    _run([gcc, *flags, "-S", str(src), "-o", str(asm)])
    asm.write_text(_CODE_DIRECTIVE[size] + asm.read_text())
    _run([_need("as"), "--64" if t.mixed == "elf64" else "--32", "-o", str(obj), str(asm)])


def build_host_bench(out: Path) -> Path:
    """The callgrind driver: host runtime objects + arch_host_bench.c, linked as an executable."""
    t = TARGETS["host"]
    gcc = _need("gcc")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with cache_workdir("rt-") as tmp:
        objs = []
        for src in [*sources("host", "batch"), RUNTIME_DIR / "arch_host_bench.c"]:
            obj = Path(tmp) / (src.name + ".o")
            flags = [*t.cflags, *t.asflags] if src.suffix == ".S" else list(t.cflags)
            flags += [f for name, extra in t.file_flags if name == src.name for f in extra]
            if src.name == "arch_host_bench.c":
                flags = ["-fPIC", "-DPVIO_TARGET_HOST"]     # ordinary user code: the libc calls need SSE
            _run([gcc, *(c for c in COMMON if c != "-mgeneral-regs-only" or src.name != "arch_host_bench.c"),
                  *flags, "-c", str(src), "-o", str(obj)])
            objs.append(str(obj))
        _run([gcc, "-o", str(out), *objs, "-Wl,-z,noexecstack"])
    return out


@dataclass(frozen=True)
class OutCost:
    calls: int
    threshold: int
    thunk_inclusive: float     # instructions per call inside the thunk, back end and amortized flush
    per_site: float            # + the rewritten site's lea/call/lea


def posted_out_cost(n: int = 100_000, threshold: int = 64, workdir: Path | None = None) -> OutCost:
    """Count the guest instructions of one posted `outb` with callgrind on the host build."""
    valgrind = shutil.which("valgrind")
    annotate = shutil.which("callgrind_annotate")
    if valgrind is None or annotate is None:
        raise EnvironmentMissing("valgrind (callgrind)", "apt-get install valgrind")
    with tempfile.TemporaryDirectory(prefix="pvgen-cg-", dir=workdir) if workdir else cache_workdir("cg-") as tmp:
        exe = build_host_bench(Path(tmp) / "pvio_bench")
        out = Path(tmp) / "callgrind.out"
        _run([valgrind, "--tool=callgrind", f"--callgrind-out-file={out}", str(exe), str(n), str(threshold)])
        text = subprocess.run([annotate, "--inclusive=yes", str(out)], capture_output=True, text=True).stdout
    for line in text.splitlines():
        if line.rstrip().endswith("]") and ":__pvio_outb_dx " in line:
            ir = int(line.split()[0].replace(",", ""))
            return OutCost(n, threshold, ir / n, ir / n + 3)
    raise PvgenError("callgrind output has no __pvio_outb_dx entry")


KBUILD_SOURCES = ("batch.c", "models.c", "thunks64.S", "thunks_strx64.h", "thunks_strx.h", "arch_linux_glue.c",
                  "pvio_arch.h", "pvio_protocol.h", "pvio_internal.h", "pvio_backend.h", "ioinsn.h", "arch_io.h",
                  "arch_linux.h", "arch_free.h", "arch_host.h")


def thunk_symbols() -> list[str]:
    """The global thunks of thunks64.S as the kernel build assembles it (the names pvgen-as's rewritten sites call),
    read from the object with nm: the macros that generate them stay the only list."""
    gcc, nm = _need("gcc"), _need("nm")
    with cache_workdir("rt-") as tmp:
        obj = Path(tmp) / "thunks64.o"
        _run([gcc, *TARGETS["linux-module"].asflags, f"-I{RUNTIME_DIR}", "-c", str(RUNTIME_DIR / "thunks64.S"),
              "-o", str(obj)])
        out = subprocess.run([nm, "-g", "--defined-only", str(obj)], capture_output=True, text=True).stdout
    return sorted(ln.split()[-1] for ln in out.splitlines() if ln.split() and ln.split()[-1].startswith("__pvio_"))


def exports_header() -> str:
    """pvio_exports.h for pvio_module.c: one PVIO_EXPORT(name) per thunk."""
    return "/* generated by pvgen from thunks64.S */\n" + "".join(f"PVIO_EXPORT({n})\n" for n in thunk_symbols())


def export_kbuild(dest: Path, module: str) -> Path:
    """Copy the runtime sources into dest (a subdirectory of a module's Kbuild directory) and write
    dest/Kbuild.pvio, a fragment to `include` from the module's Kbuild; returns the fragment's path."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in KBUILD_SOURCES:
        shutil.copyfile(RUNTIME_DIR / name, dest / name)
    sub = dest.name
    frag = dest / "Kbuild.pvio"
    frag.write_text(
        f"# pvgen batching runtime for module {module} (generated by `pvgen runtime export`)\n"
        f"{module}-y += {sub}/batch.o {sub}/models.o {sub}/thunks64.o {sub}/arch_linux_glue.o\n"
        f"CFLAGS_{sub}/batch.o := -mgeneral-regs-only -DPVIO_TARGET_LINUX -Werror\n"
        f"CFLAGS_{sub}/models.o := -mgeneral-regs-only -DPVIO_TARGET_LINUX -Werror\n"
        f"CFLAGS_{sub}/arch_linux_glue.o := -Werror\n"
        f"AFLAGS_{sub}/thunks64.o := -DPVIO_KERNEL -DPVIO_RETHUNK\n")
    return frag
