"""The corpus check: a driver built with pvgen has no port I/O left outside the runtime, and one site per instruction."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pvgen.toolchain.kbuild import PLAIN, PVGEN, TARGETS, BuildResult, Module, build
from pvgen.rewrite.accessors import KIND
from pvgen.toolchain.objscan import IoHit, count_kinds, is_runtime_symbol, scan, symbol_references, undefined_symbols


@dataclass
class ModuleCheck:
    """The verification of one module: unmodified build against the pvgen build."""

    target: str
    module: str
    plain_io: Counter  # I/O instructions by kind in the unmodified .ko
    sites: Counter  # sites pvgen-as rewrote in the driver object, by kind
    not_rewritten: list[dict] = field(default_factory=list)  # I/O sites pvgen-as recorded but left alone
    report_only: int = 0
    leftover: list[IoHit] = field(default_factory=list)  # I/O outside the runtime in the pvgen .ko
    runtime_io: int = 0  # I/O instructions inside the runtime's symbols (expected: the direct back end)
    undefined_pvio: list[str] = field(default_factory=list)  # pvgen symbols modpost could not resolve
    objtool_warnings: list[str] = field(default_factory=list)  # objtool's complaints about the module's objects
    accessor_left: list[str] = field(default_factory=list)  # redirected accessors the pvgen .ko still calls
    ko: Path | None = None

    @property
    def counts_equal(self) -> bool:
        return self.plain_io == self.sites

    @property
    def ok(self) -> bool:
        return (not self.leftover and self.counts_equal and not self.undefined_pvio and not self.not_rewritten
                and not self.objtool_warnings and not self.accessor_left)

    def problems(self) -> list[str]:
        out = []
        if self.leftover:
            out.append(f"{len(self.leftover)} I/O instruction(s) left outside the runtime, first: {self.leftover[0]}")
        if not self.counts_equal:
            out.append(f"sites {dict(self.sites)} != I/O instructions of the unmodified build {dict(self.plain_io)}")
        if self.not_rewritten:
            s = self.not_rewritten[0]
            out.append(f"{len(self.not_rewritten)} site(s) not rewritten, first: {s.get('text')} ({s.get('reason')})")
        if self.undefined_pvio:
            out.append(f"undefined pvgen symbols: {', '.join(self.undefined_pvio)}")
        if self.accessor_left:
            out.append(f"calls to redirected accessors left: {', '.join(self.accessor_left)}")
        if self.objtool_warnings:
            out.append(f"{len(self.objtool_warnings)} objtool warning(s), first: {self.objtool_warnings[0]}")
        return out


def _module_sites(result: BuildResult, mod: Module) -> list[dict]:
    objs = {str(p) for p in result.driver_objects(mod)}
    return [s for s in result.sites if s.get("object") in objs]


def _redirected(target) -> frozenset[str]:
    """The accessors the pvgen build redirects into the module's copy of lib/iomap.c (rewrite/accessors.py)."""
    if not target.iomap:
        return frozenset()
    from pvgen.toolchain.kbuild import redirected_accessors
    from pvgen.toolchain.linuxsrc import linux_source_dir

    return frozenset(redirected_accessors(linux_source_dir()))


def check_module(plain: BuildResult, pv: BuildResult, mod: Module) -> ModuleCheck:
    return compare(plain.target.name, mod.name, plain.modules[mod.name], pv.modules[mod.name], _module_sites(pv, mod),
                   _redirected(plain.target), _modpost_undefined(pv, mod), _objtool_warnings(pv, mod))


def compare(target: str, module: str, plain_ko: Path, pv_ko: Path, recs: list[dict], redirected: frozenset[str],
            modpost_undefined: list[str], objtool_warnings: list[str]) -> ModuleCheck:
    """The check of one module: its unmodified .ko against its pvgen .ko and the site records of its objects
    (`redirected`: the accessors whose references count as sites, rewrite/accessors.py)."""
    plain_io = count_kinds(scan(plain_ko))
    if redirected:   # references to the redirected accessors count as sites of their own kind
        plain_io[KIND] = sum(symbol_references(plain_ko, redirected).values())
        plain_io = +plain_io
    pv_hits = scan(pv_ko)
    io_recs = [s for s in recs if s.get("kind") != "report-only"]
    return ModuleCheck(
        target=target,
        module=module,
        plain_io=plain_io,
        sites=Counter(s["kind"] for s in io_recs if s.get("rewritten")),
        not_rewritten=[s for s in io_recs if not s.get("rewritten")],
        report_only=len(recs) - len(io_recs),
        leftover=[h for h in pv_hits if not is_runtime_symbol(h.symbol)],
        runtime_io=sum(1 for h in pv_hits if is_runtime_symbol(h.symbol)),
        undefined_pvio=sorted(set(n for n in undefined_symbols(pv_ko) if is_runtime_symbol(n))
                              | set(modpost_undefined)),
        accessor_left=sorted(redirected & set(undefined_symbols(pv_ko))),
        objtool_warnings=objtool_warnings,
        ko=pv_ko,
    )


def _modpost_undefined(result: BuildResult, mod: Module) -> list[str]:
    """pvgen symbols modpost reported undefined for this module (`"sym" [path/mod.ko] undefined!`)."""
    out = []
    for line in result.log.read_text(errors="replace").splitlines() if result.log.exists() else []:
        if "undefined!" in line and f"/{mod.name}.ko]" in line:
            name = line.split('"')[1] if line.count('"') >= 2 else ""
            if is_runtime_symbol(name):
                out.append(name)
    return out


def _objtool_warnings(result: BuildResult, mod: Module) -> list[str]:
    """objtool's warnings about this module's objects in the build log."""
    stems = (*(f"/{p.name}:" for p in result.driver_objects(mod)), f"/{mod.name}-pvio-", f"/{mod.name}-pvgen-")
    lines = result.log.read_text(errors="replace").splitlines() if result.log.exists() else []
    return [ln.strip() for ln in lines if "objtool:" in ln and any(s in ln for s in stems)]


def check_target(name: str, *, force: bool = False) -> tuple[list[ModuleCheck], BuildResult, BuildResult]:
    """Build the target twice (cached) and verify every module."""
    target = TARGETS[name]
    plain = build(target, PLAIN, force=force)
    pv = build(target, PVGEN, force=force)
    return [check_module(plain, pv, m) for m in target.modules], plain, pv


def site_table(pv: BuildResult) -> dict[str, Counter]:
    """Rewritten and report-only site counts per driver object (file), per kind."""
    out: dict[str, Counter] = {}
    for mod in pv.target.modules:
        c: Counter = Counter()
        for s in _module_sites(pv, mod):
            c[s["kind"] if s.get("rewritten") or s["kind"] == "report-only" else f"{s['kind']} (kept)"] += 1
        out[Path(mod.source).name] = c
    return out
