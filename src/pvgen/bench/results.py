"""Benchmark results as plain data: one measured phase, one variant's outcome, and the ratios between variants."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["ok", "failed", "unavailable"]
REFERENCES = ("original", "coalesced", "pv-ideal")


@dataclass
class Phase:
    """One measured phase between two hx_mark snapshots: KVM statistics deltas and host wall time."""

    name: str                       # "tx", "rx", "disk"
    ops: int
    exits: int
    io_exits: int
    wall_s: float
    stats: dict[str, int] = field(default_factory=dict)      # every KVM statistic's delta over the phase
    breakdown: dict[str, int] = field(default_factory=dict)  # exits by reason/port, when the monitor gives them
    in_total: bool = True           # summed into the variant's "total" (not a one-time step such as the probe)
    guest_delay_ns: int = 0         # the guest's busy-wait in hx_udelay over the phase (measured in the guest)
    monitor_ns: int = 0             # host time the monitor spent handling exits in Python (outside KVM_RUN)

    @property
    def io_returns(self) -> int | None:
        """KVM_RUN returns with exit reason IO counted by the monitor (what reached user space as a port access)."""
        return self.breakdown.get("IO", 0) if self.breakdown or self.exits == 0 else None

    @property
    def exits_per_op(self) -> float:
        return self.exits / self.ops if self.ops else float("nan")

    @property
    def io_exits_per_op(self) -> float:
        return self.io_exits / self.ops if self.ops else float("nan")

    @property
    def guest_delay_us_per_op(self) -> float:
        return self.guest_delay_ns / 1e3 / self.ops if self.ops else float("nan")

    @property
    def monitor_us_per_op(self) -> float:
        return self.monitor_ns / 1e3 / self.ops if self.ops else float("nan")

    @property
    def wall_us_per_op(self) -> float:
        return self.wall_s * 1e6 / self.ops if self.ops else float("nan")

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.wall_s if self.wall_s > 0 else float("nan")

    @classmethod
    def summed(cls, name: str, ops: int, parts: list[Phase], *, with_stats: bool = True) -> Phase:
        """One phase made of `parts` (a total, or the disk's reads and writes): exits, wall time, the breakdown and
        the driver's and the monitor's time summed, and every KVM statistic when `with_stats`."""
        stats: dict[str, int] = {}
        brk: dict[str, int] = {}
        for p in parts:
            if with_stats:
                for k, v in p.stats.items():
                    stats[k] = stats.get(k, 0) + v
            for k, v in p.breakdown.items():
                brk[k] = brk.get(k, 0) + v
        return cls(name, ops, sum(p.exits for p in parts), sum(p.io_exits for p in parts),
                   sum(p.wall_s for p in parts), stats, brk, guest_delay_ns=sum(p.guest_delay_ns for p in parts),
                   monitor_ns=sum(p.monitor_ns for p in parts))


@dataclass
class VariantResult:
    """The outcome of one variant: measured phases and the verdict of the data verification."""

    variant: str
    status: Status
    reason: str = ""                     # why it failed or is unavailable
    phases: list[Phase] = field(default_factory=list)
    verified: bool = False
    checks: list[str] = field(default_factory=list)   # one line per verification check, "ok: ..." or "FAIL: ..."
    info: dict = field(default_factory=dict)          # build/run details (batch size, guest exit code, ...)

    @staticmethod
    def unavailable(variant: str, reason: str) -> "VariantResult":
        return VariantResult(variant, "unavailable", reason)

    @property
    def measured(self) -> bool:
        return bool(self.phases)

    def total(self) -> Phase:
        """The phases counted in the total (not a one-time step such as the probe): ops, exits and wall time
        summed (the disk's "disk" phase is its total already: the other disk phases are parts of it)."""
        whole = next((p for p in self.phases if p.name == "disk"), None)
        if whole is not None:
            return Phase("total", whole.ops, whole.exits, whole.io_exits, whole.wall_s, dict(whole.stats),
                         dict(whole.breakdown), guest_delay_ns=whole.guest_delay_ns, monitor_ns=whole.monitor_ns)
        parts = [p for p in self.phases if p.in_total]
        return Phase.summed("total", sum(p.ops for p in parts), parts, with_stats=False)

    def phase(self, name: str) -> Phase | None:
        if name == "total":
            return self.total() if self.phases else None
        return next((p for p in self.phases if p.name == name), None)


def ratio(num: float, den: float) -> float | None:
    """num / den, or None when either side is missing or the division is meaningless."""
    if num is None or den is None or den != den or num != num or den <= 0:
        return None
    return num / den


def ratios(results: dict[str, VariantResult], variant: str, phase: str) -> dict[str, dict[str, float | None]]:
    """For `variant`'s `phase`, against each reference that was measured: throughput ratio (ops/s of the variant
    over the reference's: > 1 is faster) and exit reduction (exits/op of the reference over the variant's: > 1 is
    fewer exits). A reference that failed verification still has real counts, so its ratios are given too."""
    out: dict[str, dict[str, float | None]] = {}
    me = results[variant].phase(phase) if variant in results else None
    for ref in REFERENCES:
        r = results.get(ref)
        other = r.phase(phase) if r else None
        if me is None or other is None:
            out[ref] = {"throughput": None, "exit_reduction": None}
            continue
        out[ref] = {"throughput": ratio(me.ops_per_s, other.ops_per_s),
                    "exit_reduction": ratio(other.exits_per_op, me.exits_per_op)}
    return out


def merge_rounds(rounds: list[VariantResult]) -> VariantResult:
    """One variant measured in several rounds (the bench interleaves the variants, round after round, so a slow
    moment of a shared machine falls on all of them): a round that did not verify decides (the first such is
    returned); else each phase is the round whose wall time for it is the median (its own KVM statistics with
    it: one real run's figures, not a mix), and info["rounds"] keeps every round's ops/s by phase."""
    bad = next((r for r in rounds if r.status != "ok"), None)
    if bad is not None or len(rounds) == 1:
        return bad if bad is not None else rounds[0]
    first = rounds[0]
    phases = []
    for i, ph in enumerate(first.phases):
        runs = sorted((r.phases[i] for r in rounds), key=lambda p: p.wall_s)
        phases.append(runs[(len(runs) - 1) // 2])      # the lower median: an actual round's phase
    per_round = [{p.name: round(p.ops_per_s, 1) for p in r.phases} for r in rounds]
    checks = [c for r in rounds for c in r.checks if not c.startswith("ok")] or first.checks
    return VariantResult(first.variant, "ok", "", phases, all(r.verified for r in rounds), checks,
                         {**first.info, "rounds": per_round})
