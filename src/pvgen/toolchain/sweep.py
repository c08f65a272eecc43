"""pvgen sweep: every module of Debian's 6.1 build whose object holds port I/O, rebuilt with pvgen-as and checked."""

# Which modules have port I/O is read from the objects, not guessed from the sources: Debian's linux-image package
# of the headers' version holds every module of its configuration (modules.order: one .ko per module its
# CONFIG_*=m options build), compiled by the same gcc from the same tree. Each one is disassembled (objscan: capstone
# over every executable section) for in/out/ins/outs/hlt, and its relocations are read for references to lib/iomap.c's
# port accessors (rewrite/accessors.py). That is complete for Debian's configuration: no source pre-filter to miss a
# macro, a header or an `.S` file. Each selected module is then built twice through Kbuild from the tree's own
# Makefile (sweepbuild.py) and checked as `pvgen kbuild` checks its corpus (corpus.compare).

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from pathlib import Path

from pvgen.errors import PvgenError
from pvgen.toolchain.kbuild import PLAIN, PVGEN, _tool_fingerprint
from pvgen.toolchain.linuxsrc import TARBALL, cache_root, ensure_extracted, headers_dir, locked
from pvgen.toolchain.sweepbuild import (TREE_DIRS, GroupBuild, SweepModule, build_group, iomap_stem, kbuild_file,
                                        module_error, tool_warnings, work_dir)

# The brief's order: these directories first, then the rest, smallest modules first.
PRIORITY = ("drivers/ata", "drivers/net", "drivers/char", "drivers/tty/serial", "drivers/scsi", "drivers/input",
            "sound/isa", "sound/pci", "drivers/watchdog", "drivers/hwmon")
RESULT_VERSION = 1   # bumped when check() or the record's fields change (cached results are then redone)
Progress = Callable[[str, int], None]   # (what is happening, modules finished since the last call)


def sweep_root() -> Path:
    return cache_root() / "sweep"


# ---- discovery: Debian's objects ----

def _scan_one(args: tuple[str, str, list[str]]) -> tuple[str, dict, dict]:
    from pvgen.toolchain.objscan import count_kinds, scan, symbol_references

    rel, path, accessors = args
    return rel, dict(count_kinds(scan(path))), dict(symbol_references(Path(path), frozenset(accessors)))


def _id_of(rel: str) -> str:
    """`kernel/drivers/ata/pata_legacy.ko` -> `drivers/ata/pata_legacy` (the module's Kbuild path)."""
    return rel.removeprefix("kernel/").removesuffix(".ko")


def selected(rel: str, only: list[str]) -> bool:
    mid = _id_of(rel)
    return not only or any(fnmatch.fnmatch(mid, g) or fnmatch.fnmatch(mid, g.rstrip("/") + "/*") for g in only)


def scan_debian(only: list[str], jobs: int, progress: Progress | None = None) -> tuple[dict[str, dict], int]:
    """{Debian .ko: {"io", "accessors", "size"}} of the selected modules (cached per .ko size and mtime), and the
    number of modules in Debian's build."""
    from pvgen.qemu.kernel import ensure_kernel
    from pvgen.toolchain.kbuild import redirected_accessors

    kernel = ensure_kernel()
    order = kernel.modules_dir / "modules.order"
    if not order.exists():
        raise PvgenError(f"{order} is missing: the linux-image package is incomplete")
    rels = [ln.strip() for ln in order.read_text().splitlines() if ln.strip()]
    accessors = redirected_accessors(ensure_extracted([], quiet=True))
    cache_file = sweep_root() / "debian-scan.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if cache.get("accessors") != accessors:
        cache = {"accessors": accessors, "modules": {}}
    out, todo = {}, []
    for rel in rels:
        if not selected(rel, only):
            continue
        st = (kernel.modules_dir / rel).stat()
        stamp = [st.st_size, int(st.st_mtime)]
        have = cache["modules"].get(rel)
        if have and have.get("stamp") == stamp:
            out[rel] = have
        else:
            todo.append((rel, stamp))
    if todo:
        if progress:
            progress(f"disassembling {len(todo)} modules of Debian's build", 0)
        with ProcessPoolExecutor(max_workers=max(jobs, 1)) as pool:
            futs = {pool.submit(_scan_one, (rel, str(kernel.modules_dir / rel), accessors)): stamp
                    for rel, stamp in todo}
            for n, fut in enumerate(as_completed(futs), 1):
                rel, io, acc = fut.result()
                out[rel] = cache["modules"][rel] = {"stamp": futs[fut], "io": io, "accessors": acc}
                if progress and n % 50 == 0:
                    progress(f"disassembled {n}/{len(todo)} modules of Debian's build", 0)
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, cache_file)
    return out, len(rels)


def locate(tree: Path, rel: str) -> tuple[str, str]:
    """(Kbuild directory, module name relative to it) of a Debian .ko: the nearest directory whose Makefile names
    the module's object (a Makefile may build `sub/foo.o`, installed as sub/foo.ko)."""
    path = _id_of(rel)
    d, name = os.path.dirname(path), os.path.basename(path)
    while d:
        try:
            text = kbuild_file(tree, d).read_text(errors="replace")
        except PvgenError:
            text = ""
        if f"{name}.o" in text:
            return d, name
        d, name = os.path.dirname(d), f"{os.path.basename(d)}/{name}"
    raise PvgenError(f"{rel}: no Makefile of the tree names {os.path.basename(path)}.o")


def with_port_io(scanned: dict[str, dict], tree: Path) -> list[SweepModule]:
    """The modules whose Debian object holds port I/O (instructions or accessor references), in sweep order."""
    mods = []
    for rel, s in scanned.items():
        if s["io"] or s["accessors"]:
            d, name = locate(tree, rel)
            mods.append(SweepModule(name, d, rel, s["io"], s["accessors"]))

    def order(m: SweepModule):
        prio = next((i for i, p in enumerate(PRIORITY) if m.dir == p or m.dir.startswith(p + "/")), len(PRIORITY))
        return prio, m.dir, m.name

    return sorted(mods, key=order)


# ---- per-module results, cached ----

def fingerprint() -> str:
    """What a module's result depends on besides its sources: the rewriter, pvgen-as, the launcher, the runtime and
    these checks."""
    import pvgen

    root = Path(pvgen.__file__).parent
    h = hashlib.sha256(f"{_tool_fingerprint()} {RESULT_VERSION}".encode())
    files = sorted((root / "runtime").glob("*.[chS]")) + [root / "toolchain" / f for f in (
        "launcher.py", "objcheck.py", "objscan.py", "corpus.py", "sweepbuild.py", "kbuild.py")]
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def module_key(tree: Path, headers: Path, m: SweepModule, tools: str) -> str:
    """The sources of the module's directory (its files; the tree is one fixed tarball), the configuration, the
    tools."""
    st = TARBALL.stat()
    h = hashlib.sha256(repr((m, st.st_size, int(st.st_mtime), str(headers), tools)).encode())
    h.update((headers / ".config").read_bytes())
    for f in sorted((tree / m.dir).iterdir()):
        if f.is_file():
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _result_path(m: SweepModule) -> Path:
    return sweep_root() / "results" / (m.id.replace("/", "__") + ".json")


def cached_result(m: SweepModule, key: str) -> dict | None:
    try:
        rec = json.loads(_result_path(m).read_text())
    except (OSError, ValueError):
        return None
    return rec if rec.get("key") == key else None


def _store(m: SweepModule, rec: dict) -> None:
    p = _result_path(m)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(rec, indent=1))


# ---- building and checking one directory ----

def check(m: SweepModule, plain: GroupBuild, pv: GroupBuild, tree: Path) -> dict:
    """One module's record: pvgen build against unmodified build, as `pvgen kbuild` checks its corpus."""
    from pvgen.toolchain.corpus import compare
    from pvgen.toolchain.kbuild import redirected_accessors

    objs = pv.objects(m.name)
    own = {o for o in objs if not o.endswith(f"/{iomap_stem(os.path.basename(m.name))}.o")}  # not iomap's copy
    recs = [s for s in _sites(pv) if s.get("object") in own]
    pv_tools = tool_warnings(pv, m.name, objs)
    plain_tools = set(tool_warnings(plain, m.name, plain.objects(m.name)))
    new = [ln for ln in pv_tools if ln not in plain_tools]
    redirected = frozenset(redirected_accessors(tree)) if m.accessors else frozenset()
    undefined = [ln.split('"')[1] for ln in new if "undefined!" in ln and ln.count('"') >= 2]
    c = compare(m.dir, m.name, plain.kos[m.name], pv.kos[m.name], recs, redirected,
                [n for n in undefined if n.startswith(("__pvio", "pvio_"))], [ln for ln in new if "objtool:" in ln])
    kept = [{"where": f"{s.get('file')}:{s.get('line')}", "text": s.get("text"), "reason": s.get("reason")}
            for s in c.not_rewritten]
    plain_io = {k: v for k, v in c.plain_io.items() if k != "accessor"}
    modpost_new = [ln for ln in new if "modpost:" in ln]
    problems = c.problems() + [f"modpost: {ln}" for ln in modpost_new]
    return {
        "sites": dict(c.sites), "plain_io": dict(c.plain_io), "kept": kept, "leftover": len(c.leftover),
        "leftover_first": str(c.leftover[0]) if c.leftover else None,
        "silent_leftovers": max(len(c.leftover) - len(c.not_rewritten), 0),
        "accessor_left": c.accessor_left, "objtool_new": c.objtool_warnings, "modpost_new": modpost_new,
        "plain_matches_debian": plain_io == m.io, "problems": problems, "ok": not problems,
    }


def _sites(build: GroupBuild) -> list[dict]:
    out: list[dict] = []
    for f in sorted((build.work / "sites").glob("*.json")) if (build.work / "sites").is_dir() else []:
        out.extend(json.loads(f.read_text()).get("sites", []))
    return out


def _failed(m: SweepModule, b: GroupBuild) -> dict:
    return {"ok": False, "failure": {"variant": b.variant, "error": module_error(b, m.name)},
            "problems": [f"{b.variant} build failed: {module_error(b, m.name)}"]}


def sweep_dir(tree: Path, headers: Path, d: str, mods: list[SweepModule], tag: str = "") -> list[dict]:
    """Build the modules of directory d unmodified and with pvgen (one make each) and check each one; a module
    missing after a shared build is retried alone, so one broken module does not sink its neighbours."""
    base = sweep_root()
    with locked(work_dir(base, d, PLAIN, tag).parent / ".lock"):   # two sweeps at once share the work directory
        plain = build_group(tree, headers, d, mods, PLAIN, work_dir(base, d, PLAIN, tag))
        pv = build_group(tree, headers, d, mods, PVGEN, work_dir(base, d, PVGEN, tag))
        return _finish(tree, headers, d, mods, plain, pv)


def _finish(tree: Path, headers: Path, d: str, mods: list[SweepModule], plain: GroupBuild,
            pv: GroupBuild) -> list[dict]:
    missing = [m for m in mods if m.name not in plain.kos or m.name not in pv.kos]
    if missing and len(mods) > 1:
        done = [m for m in mods if m not in missing]
        recs = _records(tree, done, plain, pv) if done else []
        for m in missing:
            recs += sweep_dir(tree, headers, d, [m], tag=m.name.replace("/", "__"))
        return recs
    return _records(tree, mods, plain, pv)


def _records(tree: Path, mods: list[SweepModule], plain: GroupBuild, pv: GroupBuild) -> list[dict]:
    share = (plain.seconds + pv.seconds) / len(mods)
    out = []
    for m in mods:
        if m.name not in plain.kos:
            rec = _failed(m, plain)
        elif m.name not in pv.kos:
            rec = _failed(m, pv)
        else:
            rec = check(m, plain, pv, tree)
        out.append({"module": m.id, "debian_ko": m.debian, "debian_io": m.io, "debian_accessors": m.accessors,
                    "failure": None, **rec, "seconds": round(share, 2)})
    if all(r["ok"] for r in out):   # keep failed builds for a look; drop good ones (disk)
        for b in (plain, pv):
            shutil.rmtree(b.root, ignore_errors=True)
    return out


# ---- the sweep ----

def run_sweep(only: list[str], limit: int | None, jobs: int, progress: Progress | None = None, *,
              cached_only: bool = False) -> dict:
    """Discover, build and check; returns the JSON document (per-module results cached across runs).
    cached_only: report the modules with a current cached result, build nothing."""
    t0 = time.perf_counter()
    headers = headers_dir()
    tree = ensure_extracted(list(TREE_DIRS), quiet=True)
    scanned, debian_total = scan_debian(only, jobs, progress)
    mods = with_port_io(scanned, tree)
    found = len(mods)
    if limit is not None:
        mods = mods[:limit]
    tools = fingerprint()
    records: dict[str, dict] = {}
    todo: dict[str, list[tuple[SweepModule, str]]] = {}
    for m in mods:
        key = module_key(tree, headers, m, tools)
        rec = cached_result(m, key)
        if rec is not None:
            records[m.id] = {**rec, "cached": True}
        else:
            todo.setdefault(m.dir, []).append((m, key))
    not_built = sum(map(len, todo.values())) if cached_only else 0
    if cached_only:
        mods, todo = [m for m in mods if m.id in records], {}
    if progress:
        progress(f"{len(records)} cached, building {sum(map(len, todo.values()))} modules", len(records))
    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        futs = {pool.submit(sweep_dir, tree, headers, d, [m for m, _ in group]): group for d, group in todo.items()}
        for fut in as_completed(futs):
            keys = {m.id: k for m, k in futs[fut]}
            for rec in fut.result():
                rec["key"] = keys[rec["module"]]
                _store(next(m for m, _ in futs[fut] if m.id == rec["module"]), rec)
                records[rec["module"]] = {**rec, "cached": False}
            if progress:
                progress(f"built {futs[fut][0][0].dir}", len(futs[fut]))
    doc = document([records[m.id] for m in mods], debian_total, found, time.perf_counter() - t0, only, limit)
    return {**doc, "modules_not_built": not_built} if cached_only else doc


def document(recs: list[dict], debian_total: int, found: int, seconds: float, only: list[str],
             limit: int | None) -> dict:
    kinds: Counter = Counter()
    for r in recs:
        kinds.update(r.get("sites", {}))
    return {
        "debian_modules": debian_total,
        "modules_with_port_io": found,
        "only": only, "limit": limit,
        "modules_total": len(recs),
        "modules_ok": sum(1 for r in recs if r["ok"]),
        "modules_failed_build": sum(1 for r in recs if r.get("failure")),
        "silent_leftovers": sum(r.get("silent_leftovers", 0) for r in recs),
        "kept_sites": sum(len(r.get("kept", [])) for r in recs),
        "sites_by_kind": dict(sorted(kinds.items())),
        "plain_differs_from_debian": sum(1 for r in recs if r.get("plain_matches_debian") is False),
        "seconds": round(seconds, 1),
        "build_seconds": round(sum(r.get("seconds", 0.0) for r in recs), 1),
        "modules": recs,
    }
