"""Cost of pvgen-as in a real build: Kbuild clean builds with and without it, and its start-up on site-free input."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from pvgen.cache import workdir
from pvgen.toolchain import kbuild as kb

SITE_FREE = "\t.text\n\t.globl f\nf:\n\tmovl %edi, %eax\n\taddl $1, %eax\n\tret\n"


def bench_kbuild(names: list[str], runs: int, status: Callable[[str], object] | None = None) -> dict:
    """Clean builds of the targets' pvgen layout (driver + runtime objects) with the plain `as` and with pvgen-as.

    Both configurations compile the same files, so the difference is the wrapper alone (start-up, rewriting).
    Runs alternate the order of the two configurations; the figures are medians."""
    wall: dict[str, list[float]] = {"as": [], "pvgen-as": []}
    cpu: dict[str, list[float]] = {"as": [], "pvgen-as": []}
    for i in range(runs):
        for wrapper in ((False, True) if i % 2 == 0 else (True, False)):
            key = "pvgen-as" if wrapper else "as"
            if status:
                status(f"run {i + 1}/{runs}: clean Kbuild builds with {key}")
            w = c = 0.0
            for n in names:
                dw, dc = kb.clean_build_seconds(kb.TARGETS[n], kb.PVGEN, wrapper)
                w, c = w + dw, c + dc
            wall[key].append(w)
            cpu[key].append(c)
    mw = {k: statistics.median(v) for k, v in wall.items()}
    mc = {k: statistics.median(v) for k, v in cpu.items()}
    return {
        "targets": names,
        "runs": runs,
        "jobs": 2,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "median_wall_seconds": mw,
        "median_cpu_seconds": mc,
        "wall_ratio": mw["pvgen-as"] / mw["as"],
        "cpu_ratio": mc["pvgen-as"] / mc["as"],
        "wall_overhead_percent": (mw["pvgen-as"] / mw["as"] - 1) * 100,
        "cpu_overhead_percent": (mc["pvgen-as"] / mc["as"] - 1) * 100,
        "goal_percent": 5.0,
    }


def bench_startup(runs: int = 20) -> dict:
    """Median wall time of `as`, the gcc -B launcher and pvgen-as assembling one small site-free file."""
    with workdir("bench-") as tmp:
        src = Path(tmp) / "f.s"
        src.write_text(SITE_FREE)
        cmds = {"as": ["/usr/bin/as"], "launcher": [str(kb.bdir() / "as")], "pvgen-as": [str(kb.pvgen_as_path())]}
        out: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(runs):
            for name, cmd in cmds.items():
                t0 = time.perf_counter()
                subprocess.run([*cmd, "-o", str(Path(tmp) / f"{name}.o"), str(src)], check=True)
                out[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in out.items()}
    return {"runs": runs, "median_seconds": med,
            "overhead_ms": {k: (med[k] - med["as"]) * 1000 for k in ("launcher", "pvgen-as")}}
