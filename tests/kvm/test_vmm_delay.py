"""hx_udelay's busy-wait accounting in a live VM: the guest's total as the monitor reads it at each mark (boot info
delay_ns) follows the delays actually made between two marks, not a constant; a version mismatch stops the guest."""

from __future__ import annotations

import pytest

# Marks 1..2: CALLS_A x hx_udelay(USEC_A); 3..4: no delay at all; 5..6: CALLS_B x hx_udelay(USEC_B).
CALLS_A, USEC_A = 200, 50
CALLS_B, USEC_B = 40, 500
DELAYS = rf"""
#include "harness.h"
int hx_main(void)
{{
	hx_mark(1);
	for (int i = 0; i < {CALLS_A}; i++)
		hx_udelay({USEC_A});
	hx_mark(2);
	hx_mark(3);
	for (volatile int i = 0; i < 100000; i++)
		;
	hx_mark(4);
	hx_mark(5);
	for (int i = 0; i < {CALLS_B}; i++)
		hx_udelay({USEC_B});
	hx_mark(6);
	return 0;
}}
"""


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    from pvgen.guest.build import build_guest

    work = tmp_path_factory.mktemp("delay")
    src = work / "delays.c"
    src.write_text(DELAYS)
    return build_guest([src], work / "delays.elf")


def _check(delay_ns: int, wall_s: float, calls: int, usec: int) -> None:
    need = calls * usec * 1000
    assert delay_ns >= need, (delay_ns, need)            # a delay never ends early
    assert delay_ns <= wall_s * 1e9 * 1.01, (delay_ns, wall_s)   # and it happened between the two mark exits
    assert delay_ns < need + calls * 5_000_000, delay_ns  # a generous bound on overshoot (preemption, interrupts)


def test_delay_between_marks_is_measured(kvm, image):
    from pvgen.vmm.machine import Machine

    with Machine() as m:
        m.boot(image)
        res = m.run(timeout=60)
    assert (res.stop, res.code) == ("exit", 0), (res.stop, res.message, res.console)
    a, idle, b = res.phase(1, 2), res.phase(3, 4), res.phase(5, 6)
    _check(a.extra["guest_delay_ns"], a.wall_s, CALLS_A, USEC_A)
    _check(b.extra["guest_delay_ns"], b.wall_s, CALLS_B, USEC_B)
    assert idle.extra["guest_delay_ns"] == 0          # exact: nothing was delayed between marks 3 and 4
    totals = [s["guest_delay_ns"] for _, s in res.marks]
    assert totals == sorted(totals) and totals[0] == 0


def test_bench_adapter_carries_the_delay_into_phases(kvm, image):
    from pvgen.bench.machine import run_guest
    from pvgen.bench.runner import GuestSpec

    run = run_guest(GuestSpec(image, "", timeout_s=60))
    assert run.exit_code == 0, run.console
    by_id = {mk.id: mk for mk in run.marks}
    a = by_id[2].guest_delay_ns - by_id[1].guest_delay_ns
    b = by_id[6].guest_delay_ns - by_id[5].guest_delay_ns
    _check(a, (by_id[2].t_ns - by_id[1].t_ns) / 1e9, CALLS_A, USEC_A)
    _check(b, (by_id[6].t_ns - by_id[5].t_ns) / 1e9, CALLS_B, USEC_B)
    assert by_id[4].guest_delay_ns == by_id[3].guest_delay_ns


def test_boot_info_version_mismatch_stops_the_guest(kvm, image, monkeypatch):
    from pvgen.vmm import layout
    from pvgen.vmm.machine import Machine

    monkeypatch.setattr(layout, "BOOTINFO_VERSION", layout.BOOTINFO_VERSION - 1)
    with Machine() as m:
        m.boot(image)
        res = m.run(timeout=30)
    assert res.stop == "panic" and b"boot info version" in res.console, (res.stop, res.console)
