"""Builds the Linux driver environment: Kbuild-compiled driver objects + environment + generated stubs, linked -r."""

from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pvgen.errors import EnvironmentMissing, PvgenError
from pvgen.guest.linux import objects as elfobj
from pvgen.guest.linux.stubs import write_stubs

HERE = Path(__file__).resolve().parent
ENV_DIR = HERE / "env"
GUEST_INCLUDE = HERE.parent / "include"          # harness.h
WORKLOAD_INCLUDE = HERE.parent / "pvideal"       # workload.h: the shared workload contract

ENV_CORE = ("lx_core.c", "lx_printf.c", "lx_string.c", "lx_irq.c")
ENV_HEADERS = ["lx_env.h"]


@dataclass(frozen=True)
class DriverSet:
    """Linux files built together by Kbuild, and the objects (with their module-entry prefixes) they yield."""

    name: str
    sources: tuple[str, ...]                      # paths in the Linux tree, copied flat into the build dir
    objects: tuple[tuple[str, str], ...]          # (object, prefix for init_module/cleanup_module)
    env: tuple[str, ...]                          # environment sources this image needs, the workload last
    # Environment sources whose port I/O stands for code the kernel builds into vmlinux (lx_pciconf.c: the role of
    # arch/x86/pci/direct.c): Kbuild compiles them next to the drivers with the drivers' compiler, so in a
    # rewritten variant their port I/O goes through the pvgen runtime as the drivers' does.
    port_io_env: tuple[str, ...] = ()


NET = DriverSet(
    "net",
    ("drivers/net/ethernet/8390/ne2k-pci.c", "drivers/net/ethernet/8390/8390.c",
     "drivers/net/ethernet/8390/lib8390.c", "drivers/net/ethernet/8390/8390.h"),
    (("ne2k-pci.o", "lx_ne2k_pci"), ("8390.o", "lx_8390")),
    ENV_CORE + ("lx_net.c", "lx_pci.c", "wl_net.c"),
    ("lx_pciconf.c",),
)
DISK = DriverSet(
    "disk",
    ("drivers/ata/libata-sff.c", "drivers/ata/libata.h", "lib/iomap.c"),
    (("libata-sff.o", "lx_libata_sff"), ("iomap.o", "lx_iomap")),
    ENV_CORE + ("lx_percpu.c", "lx_ata.c", "wl_disk.c"),
)
# No driver objects: the environment's PCI enumeration on its own, for tests (tests/kvm/test_linuxenv_pci.py).
PCI = DriverSet("pci", (), (), ENV_CORE + ("lx_pci.c", "wl_pci.c"), ("lx_pciconf.c",))
SETS = {s.name: s for s in (NET, DISK, PCI)}


@dataclass
class LinuxBuild:
    """The result: one relocatable object to hand to the harness's link_image, and how it was made."""

    relocatable: Path
    drivers: list[Path]                 # post-processed driver objects
    env: list[Path]                     # environment + workload objects (port_io_env ones first)
    stubs: list[str]                    # symbols that got a stopping stub
    stub_object: Path | None
    driver_undefined: list[str] = field(default_factory=list)   # nm -u of the driver objects


def cache_root() -> Path:
    from pvgen.toolchain.linuxsrc import cache_root as root

    return root() / "linux-env"


def headers_dir() -> Path:
    from pvgen.toolchain.linuxsrc import headers_dir as hd

    return hd()


def linux_tree() -> Path:
    """The extracted Linux sources (toolchain/linuxsrc.py owns the cache, the tarball and the list of paths, which
    covers every file a driver set here needs; asking for a file inside an extracted directory would make tar
    complain, so nothing more is requested)."""
    from pvgen.toolchain.linuxsrc import ensure_extracted

    return ensure_extracted((), quiet=True)


def _sync(src: Path, dst: Path) -> None:
    """Copy only when the content changed, so Kbuild's timestamps keep the build incremental."""
    data = src.read_bytes()
    if not dst.exists() or dst.read_bytes() != data:
        dst.write_bytes(data)


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _inputs_key(directory: Path, targets: list[str], cc: str | None) -> str:
    """Everything a Kbuild run here depends on that can change between runs: the files in the directory, the
    targets, the compiler command (for pvgen-as, the rewriter's own code) and the kernel headers."""
    h = hashlib.sha256()
    for f in sorted(directory.iterdir()):
        if f.suffix in (".c", ".h", ".S") or f.name == "Kbuild":
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    for d in (GUEST_INCLUDE, WORKLOAD_INCLUDE):   # headers the environment includes from outside the directory
        for f in sorted(d.glob("*.h")):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    hd = headers_dir()
    h.update(f"{targets}|{cc}|{hd}|{(hd / 'Makefile').stat().st_mtime_ns}".encode())
    if cc and "-B" in cc:
        h.update(_pvgen_fingerprint().encode())
    return h.hexdigest()


def _pvgen_fingerprint() -> str:
    """The rewriting assembler's inputs (the parser, rewriter, toolchain and protocol sources of pvgen): a rewritten
    build is redone when one of them changes."""
    import pvgen

    root = Path(pvgen.__file__).resolve().parent
    h = hashlib.sha256()
    files = [root / "protocol.py", *(f for d in ("asm", "rewrite", "toolchain") for f in (root / d).rglob("*.py"))]
    for f in sorted(p for p in files if p.exists()):
        st = f.stat()
        h.update(f"{f.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


def kbuild(directory: Path, targets: list[str], cc: str | None = None) -> None:
    """make -C <headers> M=<dir> <targets>: single-object targets, so modpost (and its symbol checks) never runs.
    Skipped when nothing it depends on changed since the last successful run (a no-op Kbuild costs seconds)."""
    stamp = directory / f".pvgen-{_key(*targets)}.stamp"
    key = _inputs_key(directory, targets, cc)
    if stamp.exists() and stamp.read_text() == key and all((directory / t).exists() for t in targets):
        return
    _make(directory, targets, cc)
    stamp.write_text(key)


def _make(directory: Path, targets: list[str], cc: str | None) -> None:
    if shutil.which("make") is None:
        raise EnvironmentMissing("make", "install build-essential (apt-get install build-essential)")
    cmd = ["make", "-C", str(headers_dir()), f"M={directory}", "-j2", *targets]
    if cc:
        cmd.insert(1, f"CC={cc}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if "error" in ln.lower()] or \
            (proc.stderr or proc.stdout).splitlines()[-6:]
        raise PvgenError(f"Kbuild failed in {directory}: " + " | ".join(lines[:6]))


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def build_drivers(dset: DriverSet, cc: str | None = None) -> tuple[list[Path], list[Path]]:
    """Kbuild the driver set and its port_io_env sources (optionally with CC, e.g. "gcc -B<dir>" for pvgen-as),
    then give each driver object's module entry points its own names and keep only the sections a static guest
    image needs.  Returns (driver objects, port_io_env objects)."""
    tree = linux_tree()
    bdir = cache_root() / f"{dset.name}-{_key(cc or 'gcc')}"
    src_dir, out_dir = bdir / "kbuild", bdir / "out"
    src_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    for rel in dset.sources:
        path = tree / rel
        if not path.exists():
            raise PvgenError(f"{rel} is missing from the extracted Linux sources in {tree}")
        _sync(path, src_dir / path.name)
    for name in (*dset.port_io_env, *ENV_HEADERS):
        _sync(ENV_DIR / name, src_dir / name)
    objs = [o for o, _ in dset.objects]
    pio = [Path(s).with_suffix(".o").name for s in dset.port_io_env]
    if not objs + pio:
        return [], []
    _write_if_changed(src_dir / "Kbuild", drivers_kbuild_text(objs, pio))
    kbuild(src_dir, objs + pio, cc)
    out = []
    for obj, prefix in dset.objects:
        dst = out_dir / obj
        elfobj.prepare_driver_object(src_dir / obj, dst, prefix)
        out.append(dst)
    return out, [elfobj.prepare_object(src_dir / o, out_dir / o) for o in pio]


def drivers_kbuild_text(objs: list[str], port_io_env: list[str]) -> str:
    """The driver set's Kbuild: the Linux objects as they are, the port_io_env objects with the environment's
    include paths (theirs only, so the drivers' command lines stay Kbuild's own)."""
    lines = ["# generated by pvgen.guest.linux.build", f"obj-m += {' '.join(objs + port_io_env)}"]
    for o in port_io_env:
        lines.append(f"CFLAGS_{o} := -I{GUEST_INCLUDE} -I{WORKLOAD_INCLUDE} -I$(src) "
                     "-fno-tree-loop-distribute-patterns")
    return "\n".join(lines) + "\n"


def env_kbuild_text(sources: list[str]) -> str:
    objs = " ".join(Path(s).with_suffix(".o").name for s in sources)
    return (
        "# generated by pvgen.guest.linux.build: the driver environment, compiled against the same headers\n"
        f"obj-m += {objs}\n"
        f"ccflags-y += -I{GUEST_INCLUDE} -I{WORKLOAD_INCLUDE} -I$(src) -fno-tree-loop-distribute-patterns\n"
        "# hand-written thunks and a freestanding environment: objtool has nothing to check here\n"
        "OBJECT_FILES_NON_STANDARD := y\n"
    )


def build_env(dset: DriverSet) -> list[Path]:
    """Kbuild the environment and the workload, always with the plain compiler: what is rewritten is the drivers and
    the environment's stand-ins for port I/O built into vmlinux (port_io_env, built by build_drivers)."""
    linux_tree()   # fails early with a clear message when headers or sources are missing
    sources = list(dset.env)
    # One directory per content of the environment's sources: processes running different versions of pvgen
    # (another checkout, an older benchmark) never build into each other's directory.
    digest = _key(*(f"{n}\0{(ENV_DIR / n).read_text()}" for n in sorted(sources + ENV_HEADERS)))
    bdir = cache_root() / f"env-{digest}"
    bdir.mkdir(parents=True, exist_ok=True)
    for name in sources + ENV_HEADERS:
        _sync(ENV_DIR / name, bdir / name)
    _write_if_changed(bdir / "Kbuild", env_kbuild_text(sources))
    objs = [Path(s).with_suffix(".o").name for s in sources]
    kbuild(bdir, objs)
    return [elfobj.prepare_object(bdir / o, bdir / "out" / o) for o in objs]


def harness_symbols() -> set[str]:
    """Symbols the harness defines (the final link provides them)."""
    from pvgen.guest.build import harness_objects

    return elfobj.defined_symbols(harness_objects())


def locked():
    """One build at a time across processes (a test run and a benchmark share the cache's Kbuild directories)."""
    from pvgen.toolchain.linuxsrc import locked as lock

    return lock(cache_root() / ".lock")


def build(name: str = "net", cc: str | None = None, provided: set[str] | None = None) -> LinuxBuild:
    """Build the driver set `name` for one variant (serialised across processes by a lock in the cache)."""
    with locked():
        return build_unlocked(name, cc, provided)


def build_unlocked(name: str, cc: str | None, provided: set[str] | None) -> LinuxBuild:
    """Build the driver set `name` for one variant and return the relocatable to link with the harness (the
    caller holds locked() until it has used the relocatable).

    `provided` are symbols something else linked into the image defines (default: the harness's); the pvgen
    runtime's entry points (__pvio_*, pvio_*) are always treated as provided."""
    if name not in SETS:
        raise PvgenError(f"unknown driver set {name!r}; choose from {', '.join(SETS)}")
    dset = SETS[name]
    drivers, port_io_env = build_drivers(dset, cc)
    env = port_io_env + build_env(dset)
    if provided is None:
        provided = harness_symbols()
    missing = elfobj.unresolved(drivers + env, provided)
    bdir = cache_root() / f"{dset.name}-{_key(cc or 'gcc')}"
    stub_obj = write_stubs(missing, bdir / "out" / "lx_stubs.c") if missing else None
    out = bdir / "out" / f"linux-{dset.name}.o"
    elfobj.link_relocatable(drivers + env + ([stub_obj] if stub_obj else []), out,
                            renames={"jiffies": "hx_jiffies"})
    return LinuxBuild(out, drivers, env, missing, stub_obj, sorted(elfobj.undefined_symbols(drivers)))


def link(name: str, image: Path, cc: str | None = None, extra_objects: list[Path] = ()) -> LinuxBuild:
    """Build the driver set and link it with the harness (and e.g. a runtime) into a guest image."""
    from pvgen.guest.build import harness_objects, link_image

    provided = elfobj.defined_symbols(harness_objects() + list(extra_objects))
    with locked():   # the relocatable stays as built until the image is linked
        lb = build_unlocked(name, cc, provided)
        link_image([lb.relocatable, *extra_objects], image)
    return lb


def main() -> None:
    import sys

    args = sys.argv[1:]
    name = args[0] if args else "net"
    cc = None
    if "--cc" in args:
        cc = args[args.index("--cc") + 1]
    try:
        lb = build(name, cc)
    except PvgenError as exc:
        print(f"pvgen: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"{lb.relocatable}")
    print(f"driver objects: {' '.join(map(str, lb.drivers))}")
    print(f"driver undefined symbols: {len(lb.driver_undefined)}; stubbed: {len(lb.stubs)} {shlex.join(lb.stubs)}")


if __name__ == "__main__":
    main()
