"""Rewrite time is linear in the input: the inputs that were once quadratic, timed at n and 4n bytes."""

from __future__ import annotations

import signal
import time

import pytest

from pvgen.rewrite import rewrite_text
from pvgen.rewrite.bench import PATHOLOGICAL


LIMIT = 30  # seconds for one input at both sizes: a quadratic rewrite fails here instead of running for hours


class TooSlow(Exception):
    pass


def _seconds(text: str) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        rewrite_text(text, "p.s")
        best = min(best, time.process_time() - t0)
    return best


def _on_alarm(signum, frame):
    raise TooSlow


# Sizes so that the small input takes some milliseconds (a ratio of two tiny times is noise).
SIZES = {"one-line-of-sites": 60_000, "compiler-shaped": 400_000}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_four_times_the_input_takes_about_four_times_as_long(name: str) -> None:
    """Linear gives a ratio near 4, quadratic near 16: 10 is generous to a loaded machine and still catches it
    (10 000 bare `rep` lines took 110 s, one line of 400 000 `nop;` 126 s, before)."""
    n = SIZES.get(name, 1_000_000)
    small, large = PATHOLOGICAL[name](n), PATHOLOGICAL[name](4 * n)
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(LIMIT)
    try:
        t1, t4 = _seconds(small), _seconds(large)
    except TooSlow:
        pytest.fail(f"{name}: {len(small)} and {len(large)} bytes took more than {LIMIT} s: not linear")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    t1 = max(t1, 0.002)  # below the clock's useful resolution the ratio says nothing
    assert t4 / t1 < 10, f"{name}: {len(small)} bytes in {t1:.4f} s, {len(large)} bytes in {t4:.4f} s"


def test_a_bare_prefix_run_prefixes_the_next_instruction() -> None:
    text = "\trep\n" * 5000 + "# note\n\tinsb\n\tnop\n"
    r = rewrite_text(text, "p.s")
    (site,) = r.sites
    assert site.kind == "rep-ins" and site.line == 5002 and r.text.count("\n") == text.count("\n")
    assert "\trep" not in r.text and r.text.endswith("\tnop\n")
    one = rewrite_text("rep; " * 3000 + "outsw\n", "p.s")
    assert [s.thunk for s in one.sites] == ["__pvio_rep_outsw"]
    assert rewrite_text("\trep\n" * 100, "p.s").sites == []
