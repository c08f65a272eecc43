"""Build real Linux drivers as external modules through Kbuild, unmodified or with pvgen-as and the direct runtime."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pvgen.errors import EnvironmentMissing, PvgenError
from pvgen.rewrite.accessors import ENV as REDIRECT_ENV
from pvgen.rewrite.accessors import IOMAP_SOURCE, PREFIX, iomap_exports, port_accessors
from pvgen.toolchain import pviomod
from pvgen.toolchain.linuxsrc import cache_root, ensure_extracted, headers_dir, locked

PLAIN, PVGEN = "plain", "pvgen"
VARIANTS = (PLAIN, PVGEN)
# On request only (pvgen bench --guest linux): the drivers through pvgen-as without a runtime of their own, plus
# pvio.ko (toolchain/pviomod.py), the batching runtime whose exported thunks they call.
BATCH = "pvgen-batch"
REWRITTEN = (PVGEN, BATCH)

# The direct runtime (src/pvgen/runtime/), copied into every pvgen build directory and linked into each module.
RUNTIME_SOURCES = {"thunks": "thunks64.S", "direct": "direct.c"}
RUNTIME_EXCLUDE = "*-pvio-*.o"  # $PVGEN_AS_EXCLUDE: the runtime's own objects are assembled as they are


@dataclass(frozen=True)
class Module:
    """One kernel module: its name (the .ko) and its main C file, relative to the Linux tree."""

    name: str
    source: str
    parts: tuple[str, ...] = ()   # a composite module (libata.ko): its other C files, each keeping its own name

    @property
    def srcdir(self) -> str:
        return os.path.dirname(self.source)

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.source, *self.parts)

    def stems(self, variant: str) -> list[str]:
        """The object names of the driver's own code (a single-file pvgen module's source is renamed)."""
        if self.parts:
            return [os.path.splitext(os.path.basename(p))[0] for p in self.sources]
        return [_driver_stem(self, variant)]


@dataclass(frozen=True)
class Target:
    """A corpus entry: modules built together in one external-module directory."""

    name: str
    modules: tuple[Module, ...]
    ccflags: tuple[str, ...] = ()
    modpost_warn: bool = False  # KBUILD_MODPOST_WARN=1: undefined kernel symbols are warnings
    license: bool = False  # library code without MODULE_LICENSE: one is supplied (modpost requires it)
    note: str = ""
    iomap: bool = False    # pvgen: each module carries a rewritten lib/iomap.c, its accessor calls redirected to it
    headers: tuple[str, ...] = ()   # other files of the Linux tree the sources include ("../scsi/…")

    def sources(self) -> list[str]:
        """Every file of the Linux tree the build reads."""
        return [s for m in self.modules for s in m.sources] + list(self.headers) + [IOMAP_SOURCE]


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("ne2k-pci", (Module("ne2k-pci", "drivers/net/ethernet/8390/ne2k-pci.c"),
                        Module("8390", "drivers/net/ethernet/8390/8390.c"))),
    Target("pata_legacy", (Module("pata_legacy", "drivers/ata/pata_legacy.c"),)),
    Target("i8042", (Module("i8042", "drivers/input/serio/i8042.c"),), ccflags=("-D__DISABLE_EXPORTS",),
           note="built into Debian's kernel (CONFIG_SERIO_I8042=y): its exports are disabled, else modpost "
                "reports them exported twice"),
    Target("8250_port", (Module("8250_port", "drivers/tty/serial/8250/8250_port.c"),),
           ccflags=("-D__DISABLE_EXPORTS",), modpost_warn=True,
           note="built in (CONFIG_SERIAL_8250=y): exports disabled; 4 built-in helpers (8250 DMA, Fintek probe) "
                "are not exported to modules, so modpost only warns about them"),
    Target("rtc-cmos", (Module("rtc-cmos", "drivers/rtc/rtc-cmos.c"),)),
    Target("libata-sff", (Module("libata-sff", "drivers/ata/libata-sff.c"), Module("iomap", "lib/iomap.c")),
           ccflags=("-D__DISABLE_EXPORTS",), modpost_warn=True, license=True,
           note="parts of libata.ko and of the kernel: exports disabled, MODULE_LICENSE supplied, libata's "
                "internal helpers are not exported, so modpost only warns about them"),
    Target("libata", (Module("libata", "drivers/ata/libata-core.c", tuple(f"drivers/ata/libata-{p}.c" for p in (
        "scsi", "eh", "transport", "trace", "sata", "sff", "pmp", "acpi", "zpodd", "pata-timings"))),
                      Module("ata_piix", "drivers/ata/ata_piix.c")), iomap=True,
           headers=("drivers/scsi/scsi_transport_api.h",),
           note="libata.ko as Debian builds it (CONFIG_ATA=m: core, SCSI, EH, transport, trace, SATA, SFF, PMP, "
                "ACPI, ZPODD, PATA timings) and ata_piix.ko; their port I/O is in lib/iomap.c, so the pvgen build redirects the "
                "accessor calls into a rewritten copy of it"),
)}
MODINFO_HEADER = "pvgen-modinfo.h"  # for Target.license: included before the driver's own source
DEMO_TARGET = "ne2k-pci"


@dataclass
class BuildResult:
    """A finished (or cached) Kbuild build of one target in one variant."""

    target: Target
    variant: str
    dir: Path
    modules: dict[str, Path]  # module name -> .ko
    sites: list[dict] = field(default_factory=list)  # pvgen-as site records (pvgen variant)
    seconds: float = 0.0
    cached: bool = False
    cpu_seconds: float = 0.0  # user + system time of make and everything it ran

    @property
    def log(self) -> Path:
        return self.dir / "build.log"

    def driver_object(self, mod: Module) -> Path:
        return self.dir / f"{mod.stems(self.variant)[0]}.o"

    def driver_objects(self, mod: Module) -> list[Path]:
        return [self.dir / f"{stem}.o" for stem in mod.stems(self.variant)]


def iomap_stem(mod: Module) -> str:
    """The module's copy of lib/iomap.c: rewritten by pvgen-as (the name escapes RUNTIME_EXCLUDE)."""
    return f"{mod.name}-pvgen-iomap"


def redirected_accessors(tree: Path) -> list[str]:
    return port_accessors(iomap_exports((tree / IOMAP_SOURCE).read_text()))


def iomap_kbuild_lines(mod: Module, tree: Path) -> list[str]:
    """The copy of lib/iomap.c in the module: exports disabled, every exported name prefixed (the preprocessor
    renames declarations, definitions and internal uses alike)."""
    stem = iomap_stem(mod)
    return [f"{mod.name}-y := {stem}.o", iomap_cflags(stem, tree)]


def iomap_cflags(stem: str, tree: Path) -> str:
    """The Kbuild line that compiles an object `stem` from lib/iomap.c as the module's private copy."""
    renames = " ".join(f"-D{n}={PREFIX}{n}" for n in iomap_exports((tree / IOMAP_SOURCE).read_text()))
    return f"CFLAGS_{stem}.o += -D__DISABLE_EXPORTS {renames}"


def _driver_stem(mod: Module, variant: str) -> str:
    """The driver's object name: a pvgen module is composite (driver + runtime), so its source is renamed."""
    return mod.name if variant == PLAIN else f"{mod.name}-drv"


def runtime_dir() -> Path:
    import pvgen.runtime

    return Path(pvgen.runtime.__file__).parent


def runtime_stem(mod: Module, part: str) -> str:
    return f"{mod.name}-pvio-{part}"


def pvgen_as_path() -> Path:
    """The pvgen-as console script of this installation."""
    here = Path(sys.executable).parent / "pvgen-as"
    if here.exists():
        return here
    found = shutil.which("pvgen-as")
    if not found:
        raise EnvironmentMissing("pvgen-as", "install pvgen (`make setup` or `pip install -e .`)")
    return Path(found)


def bdir() -> Path:
    """This installation's directory holding `as` (the pvgen-as launcher, see launcher.py), for `gcc -B<dir>`:
    $PVGEN_CACHE/bdir-<key> (created on demand). The key names the launcher's version, pvgen-as and the pvgen
    package, so checkouts sharing the cache neither build with each other's rewriter nor rewrite each other's
    launcher in the middle of a build."""
    from pvgen.toolchain.launcher import installation_bdir

    return installation_bdir(cache_root(), pvgen_as_path())


def kbuild_text(target: Target, variant: str, tree: Path) -> str:
    """The Kbuild file of one build directory."""
    lines = [f"# generated by pvgen ({variant} build of {target.name})"]
    for mod in target.modules:
        lines.append(f"obj-m += {mod.name}.o")
        objs = " ".join(f"{stem}.o" for stem in mod.stems(variant))
        if variant == PLAIN and mod.parts:
            lines.append(f"{mod.name}-y := {objs}")
        if variant == BATCH:
            if target.iomap:
                lines += iomap_kbuild_lines(mod, tree)
            lines.append(f"{mod.name}-y {'+=' if target.iomap else ':='} {objs}")
        if variant == PVGEN:
            th, di = runtime_stem(mod, "thunks"), runtime_stem(mod, "direct")
            if target.iomap:
                lines += iomap_kbuild_lines(mod, tree)
            lines += [
                f"{mod.name}-y {'+=' if target.iomap else ':='} {objs} {th}.o {di}.o",
                # The runtime's back end must not touch SSE/x87 state (no_caller_saved_registers needs this).
                f"CFLAGS_{di}.o += -mgeneral-regs-only",
                # The kernel variant of the thunks: returns through __x86_return_thunk (CONFIG_RETHUNK), no
                # redundant cld; objtool validates them like the rest of the module.
                f"AFLAGS_{th}.o += -DPVIO_KERNEL -DPVIO_RETHUNK",
            ]
    if variant == BATCH:
        lines += pviomod.kbuild_lines()
    if target.license:
        lines += [f"CFLAGS_{stem}.o += -include $(src)/{MODINFO_HEADER}" for m in target.modules
                  for stem in m.stems(variant)]
    incdirs = sorted({str(tree / m.srcdir) for m in target.modules})
    lines.append("ccflags-y += " + " ".join([f"-I{d}" for d in incdirs] + list(target.ccflags)))
    return "\n".join(lines) + "\n"


def _inputs(target: Target, variant: str, tree: Path) -> dict[str, bytes]:
    """Every file of the build directory, by name, with its content."""
    files = {"Kbuild": kbuild_text(target, variant, tree).encode()}
    if target.license:
        files[MODINFO_HEADER] = b'#include <linux/module.h>\nMODULE_LICENSE("GPL");\n'  # same as the kernel's
    for mod in target.modules:
        for stem, src in zip(mod.stems(variant), mod.sources):
            files[f"{stem}.c"] = (tree / src).read_bytes()
        if variant in REWRITTEN and target.iomap:
            files[f"{iomap_stem(mod)}.c"] = (tree / IOMAP_SOURCE).read_bytes()
        if variant == PVGEN:
            rt = runtime_dir()
            for part, src in RUNTIME_SOURCES.items():
                ext = os.path.splitext(src)[1]
                files[runtime_stem(mod, part) + ext] = (rt / src).read_bytes()
    if variant in REWRITTEN:
        for h in sorted(runtime_dir().glob("*.h")):  # pvio_backend.h, ioinsn.h and whatever else the runtime includes
            files[h.name] = h.read_bytes()
    if variant == BATCH:
        files.update(pviomod.files(runtime_dir()))
    return files


def _tool_fingerprint() -> str:
    """What the pvgen variant's output depends on besides its inputs: the rewriter and pvgen-as sources."""
    import pvgen

    root = Path(pvgen.__file__).parent
    h = hashlib.sha256()
    for sub in ("asm", "rewrite", "toolchain/gas.py"):
        p = root / sub
        for f in sorted(p.rglob("*") if p.is_dir() else [p]):
            if f.is_file() and f.suffix in (".py", ".lark"):
                h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _key(target: Target, variant: str, files: dict[str, bytes], headers: Path) -> str:
    h = hashlib.sha256(repr((target, variant, str(headers))).encode())
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    if variant in REWRITTEN:
        h.update(_tool_fingerprint().encode())
    return h.hexdigest()


def build_dir(target: Target, variant: str) -> Path:
    return cache_root() / "kbuild" / target.name / variant


def make_command(headers: Path, moddir: Path, wrapper: bool, *, jobs: int = 2) -> list[str]:
    """The documented recipe: Kbuild's external-module build, with pvgen-as found through `gcc -B<dir>`."""
    cmd = ["make", "-C", str(headers), f"M={moddir}", f"-j{jobs}"]
    if wrapper:
        cmd.append(f"CC=gcc -B{bdir()}")
    return cmd + ["modules"]


def build(target: Target, variant: str, *, force: bool = False, jobs: int = 2) -> BuildResult:
    """Build target in variant (cached: nothing is rebuilt when no input changed)."""
    if variant not in (*VARIANTS, BATCH):
        raise PvgenError(f"unknown variant {variant!r}; use one of {', '.join((*VARIANTS, BATCH))}")
    tree = ensure_extracted(target.sources(), quiet=not sys.stderr.isatty())
    headers = headers_dir()
    files = _inputs(target, variant, tree)
    key = _key(target, variant, files, headers)
    d = build_dir(target, variant)
    stamp = d / ".pvgen-build.json"
    kos = {m.name: d / f"{m.name}.ko" for m in target.modules}
    if variant == BATCH:
        kos[pviomod.MODULE] = d / f"{pviomod.MODULE}.ko"
    # one builder at a time per build directory: a second process (another test run, a sweep, a bench) waits and
    # then finds the build done, instead of seeing its files deleted under it by the first one's clean build
    with locked(d.parent / f".{d.name}.lock"):
        if not force and stamp.exists():
            try:
                meta = json.loads(stamp.read_text())
            except ValueError:
                meta = {}
            if meta.get("key") == key and all(p.exists() for p in kos.values()):
                return BuildResult(target, variant, d, kos, _load_sites(d), meta.get("seconds", 0.0), cached=True)
        return _run_build(target, variant, d, files, headers, key, kos, jobs, wrapper=variant in REWRITTEN)


def _run_build(target: Target, variant: str, d: Path, files: dict[str, bytes], headers: Path, key: str,
               kos: dict[str, Path], jobs: int, *, wrapper: bool) -> BuildResult:
    if d.exists():
        shutil.rmtree(d)  # a clean build: Kbuild does not know that pvgen-as changed
    d.mkdir(parents=True)
    for name, data in files.items():
        (d / name).write_bytes(data)
    env = dict(os.environ)
    env.pop("PVGEN_SITES_DIR", None)
    env.pop(REDIRECT_ENV, None)
    if wrapper:
        env["PVGEN_SITES_DIR"] = str(d / ".pvgen-sites")
        env["PVGEN_AS_EXCLUDE"] = RUNTIME_EXCLUDE
        if target.iomap:
            env[REDIRECT_ENV] = ":".join(redirected_accessors(ensure_extracted([IOMAP_SOURCE], quiet=True)))
    if target.modpost_warn:
        env["KBUILD_MODPOST_WARN"] = "1"
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(make_command(headers, d, wrapper, jobs=jobs), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace")
    seconds = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    (d / "build.log").write_text(proc.stdout)
    if proc.returncode != 0 or not all(p.exists() for p in kos.values()):
        raise PvgenError(f"Kbuild build of {target.name} ({variant}) failed: {_first_error(proc.stdout)} "
                         f"(log: {d / 'build.log'})")
    (d / ".pvgen-build.json").write_text(json.dumps({"key": key, "seconds": seconds}))
    return BuildResult(target, variant, d, kos, _load_sites(d), seconds, cpu_seconds=cpu)


def _first_error(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for ln in lines:
        if "error" in ln.lower() or "undefined!" in ln or "not an x86" in ln:
            return ln
    return lines[-1] if lines else "no output"


def _load_sites(d: Path) -> list[dict]:
    out: list[dict] = []
    sd = d / ".pvgen-sites"
    if sd.is_dir():
        for f in sorted(sd.glob("*.json")):
            out.extend(json.loads(f.read_text()).get("sites", []))
    return out


def build_all(names: list[str] | None = None, variants: tuple[str, ...] = VARIANTS, **kw) -> list[BuildResult]:
    results = []
    for name in names or list(TARGETS):
        if name not in TARGETS:
            raise PvgenError(f"unknown corpus target {name!r}; known: {', '.join(TARGETS)}")
        for v in variants:
            results.append(build(TARGETS[name], v, **kw))
    return results


def clean_build_seconds(target: Target, layout: str, wrapper: bool, jobs: int = 2) -> tuple[float, float]:
    """One clean Kbuild build in a scratch directory (for the benchmark); returns (wall, CPU) seconds.

    layout PVGEN with wrapper False builds the same objects (driver + runtime) with the plain assembler, so the
    difference to wrapper True is the cost of pvgen-as alone."""
    tree = ensure_extracted(target.sources(), quiet=True)
    files = _inputs(target, layout, tree)
    d = cache_root() / "kbuild-bench" / target.name / f"{layout}-{'wrapper' if wrapper else 'as'}"
    kos = {m.name: d / f"{m.name}.ko" for m in target.modules}
    res = _run_build(target, layout, d, files, headers_dir(), "bench", kos, jobs, wrapper=wrapper)
    return res.seconds, res.cpu_seconds
