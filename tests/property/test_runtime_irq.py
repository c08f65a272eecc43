"""Interrupt safety: an interrupt that arrives inside the runtime (during an exit or a real instruction) runs its
handler's I/O after the interrupted operation, and the devices see exactly that order."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_runtime_batch import AREA, BASE, BUFS, LONG, RAM, UNOWNED, buf_data, complete, immediate, op_st, recorder, split

from pvgen import protocol as P
from pvgen.devices.pvbatch import PvBatch
from pvgen.runtime.build import build
from pvgen.runtime.hostlib import HostMemory, HostOp, HostRuntime, Hop, Strict
from pvgen.runtime.refmodel import Trace, lab_bus, mask

# The handler's accesses: no FIFO (it would interleave with the interrupted code's transfer block) and no strings.
irq_op = st.one_of(
    st.tuples(st.just("out"), st.sampled_from([BASE + 1, BASE + 4, BASE + 10, UNOWNED]), st.sampled_from([1, 2, 4]),
              st.integers(0, 0xFFFFFFFF)),
    st.tuples(st.just("in"), st.sampled_from([BASE + 5, BASE + 6, BASE + 2, UNOWNED]), st.sampled_from([1, 2, 4]),
              st.just(0)),
)
KIND = {"out": Hop.OUT, "in": Hop.IN, "fifo": Hop.IN, "outs": Hop.OUTS, "ins": Hop.INS, "tick": Hop.TICK,
        "hlt": Hop.HLT, "flush": Hop.FLUSH, "threshold": Hop.THRESHOLD}


@pytest.fixture(scope="module")
def sim_lib(tmp_path_factory) -> str:
    return str(build("host", "batch", tmp_path_factory.mktemp("rt") / "pvio_host_irq.so",
                     extra_cflags=("-DPVIO_HOST_IRQ_SIM",)))


def hops(ops, mem: HostMemory, first: int = 0):
    out = []
    for j, (kind, port, size, v) in enumerate(ops):
        i = first + j
        if kind == "outs":
            mem.write(BUFS + i * 4096, buf_data(i, size, v))
        out.append(HostOp(KIND[kind], port, size, mask(size, v) if kind == "out" else v, mem.base + BUFS + i * 4096))
    return out


def n_results(ops) -> int:
    return sum(k in ("in", "fifo", "ins") for k, *_ in ops)


@settings(max_examples=3000 if LONG else 250, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(op_st, max_size=40), st.lists(irq_op, min_size=1, max_size=6), st.integers(1, 6))
def test_runtime_interrupt_inside_the_runtime_runs_after_the_interrupted_access(sim_lib, ops, handler, nth):
    ops = complete(ops)
    trace = Trace()
    bus, _ = lab_bus(trace, BASE)
    mem = HostMemory(RAM)
    mon = PvBatch.attach(bus, mem)
    rd, wr = recorder(bus, trace)
    state = {"calls": 0, "at": None, "results": None}

    def irq() -> None:
        state["results"] = rt.run(hops(handler, mem, first=len(ops)))

    rt = HostRuntime(sim_lib, mem, lambda port, value: bus.write(port, 4, value), Strict(rd, wr), irq=irq)
    rt.lib.pvio_fini()
    assert rt.init(AREA) == 0

    def arrive() -> None:
        state["calls"] += 1
        if state["calls"] == nth and state["at"] is None:
            state["at"] = rt.raise_irq()

    rt.on_masked_call = arrive
    res = rt.run(hops(ops, mem))
    rt.on_masked_call = None
    rt.lib.pvio_flush()
    assert rt.unmasked == 0 and mon.stats.rejected == 0

    k = state["at"]
    event("no interrupt" if k is None else "interrupt delivered")
    if k is None:                                   # fewer masked callbacks than nth: no interrupt happened
        assert state["results"] is None
        combined, ids = ops, None
    else:
        assert state["results"] is not None, "the pending interrupt was never delivered"
        combined = ops[:k + 1] + handler + ops[k + 1:]
        ids = list(range(k + 1)) + [len(ops) + j for j in range(len(handler))] + list(range(k + 1, len(ops)))
    want_trace, want_results = immediate(combined, ids)
    assert split(trace) == split(want_trace)
    got = [res[i] if kind in ("in", "fifo") else mem.read(BUFS + i * 4096, v * size)
           for i, (kind, port, size, v) in enumerate(ops) if kind in ("in", "fifo", "ins")]
    if k is None:
        assert got == want_results
    else:
        r1, r2 = n_results(ops[:k + 1]), n_results(handler)
        assert got == want_results[:r1] + want_results[r1 + r2:]
        irq_got = [state["results"][j] for j, (kind, *_rest) in enumerate(handler) if kind == "in"]
        assert irq_got == want_results[r1:r1 + r2]
