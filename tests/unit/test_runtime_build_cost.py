"""The cost of one posted OUT, counted by callgrind on the host build (issue 3 goal: at most 40 instructions)."""

from __future__ import annotations

from pvgen import protocol as P
from pvgen.runtime.build import posted_out_cost

GOAL = 40   # instructions per rewritten `outb` to a posted port, thunk save/restore and lea/call/lea included


def test_runtime_posted_out_costs_at_most_the_goal(tmp_path):
    c = posted_out_cost(20_000, P.DEFAULT_THRESHOLD, workdir=tmp_path)
    assert c.calls == 20_000 and c.per_site == c.thunk_inclusive + 3
    assert c.per_site <= GOAL, f"{c.per_site:.2f} instructions per posted OUT"
