"""The benchmark plot: exits per operation (log scale) and throughput per variant, side by side, as a PNG."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from pvgen.bench.report import phase_names  # noqa: E402
from pvgen.bench.results import VariantResult  # noqa: E402


def plot(results: dict[str, VariantResult], workload: str, path: str | Path) -> Path:
    """Grouped bars, one group per variant and one bar per phase; failed variants hatched, unavailable ones absent."""
    measured = {n: r for n, r in results.items() if r.measured}
    phases = [p for p in phase_names(measured) if p != "total"] or ["total"]
    fig, (ax_e, ax_t) = plt.subplots(1, 2, figsize=(12, 4.8))
    names = list(measured)
    width = 0.8 / max(1, len(phases))
    for j, ph in enumerate(phases):
        xs, exits, tput, hatch = [], [], [], []
        for i, n in enumerate(names):
            p = measured[n].phase(ph)
            if p is None or not p.ops:
                continue
            xs.append(i + (j - (len(phases) - 1) / 2) * width)
            exits.append(max(p.exits_per_op, 1e-3))       # log scale: a zero is drawn at the floor
            tput.append(p.ops_per_s if p.wall_s > 0 else 1e-3)
            hatch.append("//" if measured[n].status == "failed" else "")
        bars_e = ax_e.bar(xs, exits, width, label=ph)
        bars_t = ax_t.bar(xs, tput, width, label=ph)
        for b1, b2, h in zip(bars_e, bars_t, hatch):
            b1.set_hatch(h)
            b2.set_hatch(h)
    for ax, title in ((ax_e, "KVM exits per operation (log)"), (ax_t, "operations per second (log)")):
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        if len(phases) > 1:
            ax.legend()
    ax_e.set_yscale("log")
    ax_t.set_yscale("log")      # the variants span several orders of magnitude
    missing = [n for n in results if n not in measured]
    note = f"  (not measured: {', '.join(missing)})" if missing else ""
    fig.suptitle(f"pvgen bench {workload}{note}; hatched = data verification failed")
    fig.tight_layout()
    out = Path(path)
    with warnings.catch_warnings():    # pyparsing deprecation noise from matplotlib's mathtext tick labels
        warnings.simplefilter("ignore", DeprecationWarning)
        fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
