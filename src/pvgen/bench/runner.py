"""The variant runner: one small interface (a Kit builds a guest and names its devices) and the measure-verify loop."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from pvgen.bench import workload as wl
from pvgen.bench.results import Phase, VariantResult
from pvgen.bench.variants import Variant
from pvgen.errors import PvgenError


class Unavailable(PvgenError):
    """A variant whose pieces (monitor, harness, driver objects, runtime...) are not there: reported, not raised."""


@dataclass
class DeviceSpec:
    """A device the machine creates once guest RAM exists: factory(memory, irq) where irq(level) drives `irq_line`."""

    base: int
    length: int
    factory: Callable[[object, Callable[[bool], None]], object]
    irq_line: int | None = None


@dataclass
class GuestSpec:
    """Everything the monitor needs to run one variant's guest."""

    image: Path
    cmdline: str
    devices: list[DeviceSpec] = field(default_factory=list)
    coalesced_posted: bool = False
    pvbatch_classes: frozenset | None = None
    irq_notify: bool = False
    models: bool = False                            # publish the devices' in-guest models (protocol v5)
    ram: int = 256 << 20
    timeout_s: float = 600.0
    extra: dict = field(default_factory=dict)       # kit-specific options for the machine adapter


@dataclass
class Mark:
    """The monitor's record of one hx_mark: id, host monotonic time, a KVM statistics snapshot, and the guest's
    cumulative busy-wait in hx_udelay (the driver's own delays: udelay, ndelay), as the guest stored it."""

    id: int
    t_ns: int
    stats: dict[str, int]
    breakdown: dict[str, int] = field(default_factory=dict)   # cumulative exits by reason/port, if known
    guest_delay_ns: int = 0
    monitor_ns: int = 0     # the monitor's cumulative exit handling in Python (outside KVM_RUN)


@dataclass
class GuestRun:
    exit_code: int | None
    console: str
    marks: list[Mark]
    info: dict = field(default_factory=dict)


class Kit(Protocol):
    """How one kind of guest (the Linux driver environment, or pv-ideal) is built and attached."""

    def spec(self, variant: Variant, params: wl.Params, host: "Host") -> GuestSpec:
        """Build (or reuse) the guest image and name its devices; raise Unavailable when a piece is missing."""
        ...


class Host(Protocol):
    """The host side of a workload: peer frames or disk image, and the check of what the guest did."""

    workload: str

    def verify(self, run: GuestRun) -> list[str]:
        """One line per check, each starting with "ok:" or "FAIL:"."""
        ...


Machine = Callable[[GuestSpec], GuestRun]


def phases(marks: list[Mark], names: list[str], ops: int | dict[str, int]) -> list[Phase]:
    """The phases bracketed by their mark ids (bench/workload.py PHASE_MARKS), or the sum of other phases
    (PHASE_SUMS); `ops`: one count for every phase, or a count by phase name.  A missing mark is an error, except
    for a SETUP_PHASES phase whose marks are both absent (a guest without that step: pv-ideal has no probe); such
    a phase is kept out of the variant's total."""
    out: list[Phase] = []
    for name in names:
        n_ops = ops[name] if isinstance(ops, dict) else ops
        if name in wl.PHASE_SUMS:
            out.append(Phase.summed(name, n_ops, [p for p in out if p.name in wl.PHASE_SUMS[name]]))
            continue
        start_id, end_id = wl.PHASE_MARKS[name]
        if name in wl.SETUP_PHASES and not any(m.id in (start_id, end_id) for m in marks):
            continue
        start = next((i for i, m in enumerate(marks) if m.id == start_id), None)
        end = next((i for i, m in enumerate(marks) if m.id == end_id and start is not None and i > start), None)
        if start is None or end is None:
            seen = ", ".join(str(m.id) for m in marks) or "none"
            raise PvgenError(f"phase {name}: marks {start_id}..{end_id} not both recorded (marks seen: {seen})")
        a, b = marks[start], marks[end]
        delta = {k: b.stats.get(k, 0) - a.stats.get(k, 0) for k in b.stats}
        brk = {k: b.breakdown.get(k, 0) - a.breakdown.get(k, 0) for k in b.breakdown}
        out.append(Phase(name, n_ops, delta.get("exits", 0), delta.get("io_exits", 0), (b.t_ns - a.t_ns) / 1e9,
                         delta, {k: v for k, v in brk.items() if v}, in_total=name not in wl.SETUP_PHASES,
                         guest_delay_ns=b.guest_delay_ns - a.guest_delay_ns, monitor_ns=b.monitor_ns - a.monitor_ns))
    return out


PHASES = {"net": ["probe", "tx", "rx"],
          "disk": ["disk", "seq-write", "seq-read", "rand-write", "rand-read", "write", "read"]}


def phase_ops(workload: str, ops: int) -> dict[str, int]:
    """How many operations each phase of `workload` measures (the disk's quarters: disk_quarter_start)."""
    if workload != "disk":
        return {name: 1 if name in wl.SETUP_PHASES else ops for name in PHASES[workload]}
    q = [wl.disk_quarter_start(k, ops) for k in range(5)]
    out = {"disk": ops, "seq-write": q[1] - q[0], "seq-read": q[2] - q[1], "rand-write": q[3] - q[2],
           "rand-read": q[4] - q[3]}
    out["write"], out["read"] = out["seq-write"] + out["rand-write"], out["seq-read"] + out["rand-read"]
    return out


def protocol_checks(info: dict) -> list[str]:
    """What the monitor found wrong with what the guest served without an exit: every claim the in-guest models
    made that the devices contradict, and (audit builds) every served value the device would not have returned.
    A rejected batch fails too: a correct runtime never sends one."""
    out = []
    pv = info.get("pvbatch")
    if pv is not None:
        out.append("ok: no batch rejected" if not pv["rejected"] else
                   f"FAIL: {pv['rejected']} batches rejected: {'; '.join(pv['errors'])}")
    m = info.get("models")
    if m is not None:
        out.append(f"ok: in-guest models: {m['served_in']} reads and {m['served_out']} writes replayed as served"
                   if not m["mismatches"] else
                   f"FAIL: in-guest models: {m['mismatches']} claims the device contradicts: {'; '.join(m['errors'])}")
    a = info.get("audit")
    if a is not None:
        out.append(f"ok: audit: {a['served']} values served without an exit, all as the device returns them"
                   if not a["mismatches"] else
                   f"FAIL: audit: {a['mismatches']} of {a['served']} served values differ from the device's: "
                   f"{'; '.join(a['errors'])}")
    return out


def run_variant(variant: Variant, kit: Kit, machine: Machine, params: wl.Params, host: Host,
                count_ports: bool = False) -> VariantResult:
    """Build, run, measure and verify one variant. Missing pieces give "unavailable"; anything that goes wrong
    after the guest started, or any failed check, gives "failed"."""
    try:
        spec = kit.spec(variant, params, host)
    except Unavailable as exc:
        return VariantResult.unavailable(variant.name, str(exc))
    except PvgenError as exc:
        return VariantResult.unavailable(variant.name, f"build: {exc}")
    except Exception as exc:  # noqa: BLE001 - a crashing build step (e.g. a truncated object) only loses this variant
        return VariantResult.unavailable(variant.name, f"build: {type(exc).__name__}: {exc}")
    spec.extra["count_ports"] = count_ports
    info = {"cmdline": spec.cmdline, "monitor": variant.monitor_options(), "image": str(spec.image)}
    t0 = time.monotonic()
    try:
        run = machine(spec)
    except Unavailable as exc:
        return VariantResult.unavailable(variant.name, str(exc))
    except PvgenError as exc:
        return VariantResult(variant.name, "failed", f"run: {exc}", info=info)
    except Exception as exc:  # noqa: BLE001 - a crash in a monitor piece fails this variant, not the whole bench
        return VariantResult(variant.name, "failed", f"monitor error: {type(exc).__name__}: {exc}", info=info)
    info.update(run.info, exit_code=run.exit_code, run_s=round(time.monotonic() - t0, 3))
    try:
        measured = phases(run.marks, PHASES[params.workload], phase_ops(params.workload, params.ops))
    except PvgenError as exc:
        tail = run.console.strip().splitlines()[-3:]
        return VariantResult(variant.name, "failed", f"{exc}; console: {' | '.join(tail)}", info=info)
    checks = host.verify(run)
    if run.exit_code != 0:
        checks.append(f"FAIL: guest exit code {run.exit_code}")
    checks += protocol_checks(run.info)
    ok = bool(checks) and all(c.startswith("ok") for c in checks)
    first_fail = next((c for c in checks if not c.startswith("ok")), "")
    return VariantResult(variant.name, "ok" if ok else "failed", "" if ok else first_fail[6:] or first_fail,
                         measured, ok, checks, info)
