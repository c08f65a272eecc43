"""The C batching runtime (host build, through the real thunks) against immediate execution and the reference model."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvgen import protocol as P
from pvgen.devices.pvbatch import PvBatch
from pvgen.protocol import Op
from pvgen.runtime.build import build
from pvgen.runtime.hostlib import HostMemory, HostOp, HostRuntime, Hop, Strict
from pvgen.runtime.refmodel import BLOCK, RefRuntime, Trace, lab_bus, mask

# Explicit settings (not a global profile, which would change other areas' tests): PVGEN_HYPOTHESIS_PROFILE=long
# is the documented large run.
LONG = os.environ.get("PVGEN_HYPOTHESIS_PROFILE") == "long"
SETTINGS = settings(max_examples=3000 if LONG else 60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

BASE = 0x100
FIFO_PORT, FIFO_SIZE = BASE + 8, 2
UNOWNED = 0x300
RAM = 2 << 20
AREA = 0x10000
BUFS = 0x80000          # string buffers: one 4 KiB slot per op (after the area)
CTRL = range(P.CTRL_BASE, P.CTRL_BASE + P.CTRL_LEN)


@pytest.fixture(scope="module", params=["asm", "c"])
def host_lib(request, tmp_path_factory) -> str:
    """The host build with the hand-scheduled posted OUT, and with the C reference version of it."""
    extra = ("-DPVIO_NO_ASM_OUT",) if request.param == "c" else ()
    return str(build("host", "batch", tmp_path_factory.mktemp("rt") / f"pvio_host_{request.param}.so",
                     extra_cflags=extra))


# --- programs ---------------------------------------------------------------------------------------------------
sizes = st.sampled_from([1, 2, 4])
u32 = st.integers(0, 0xFFFFFFFF)
op_st = st.one_of(
    st.tuples(st.just("out"), st.sampled_from([BASE, BASE + 1, BASE + 2, BASE + 3, BASE + 4, BASE + 10, BASE + 12,
                                               BASE + 11, BASE + 7, UNOWNED]), sizes, u32),
    st.tuples(st.just("in"), st.sampled_from([BASE + 5, BASE + 6, BASE + 9, BASE + 10, BASE + 0, UNOWNED]), sizes,
              st.just(0)),
    st.tuples(st.just("out"), st.sampled_from([BASE + 13, BASE + 14]), st.sampled_from([1, 1, 2]), u32),
    st.tuples(st.just("in"), st.sampled_from([BASE + 13, BASE + 14]), st.sampled_from([1, 2]), st.just(0)),
    st.tuples(st.just("fifo"), st.just(FIFO_PORT), st.just(FIFO_SIZE), st.just(0)),
    st.tuples(st.just("outs"), st.sampled_from([BASE + 12, BASE + 4, UNOWNED]), sizes,
              st.one_of(st.integers(1, 40), st.integers(500, 1000))),    # staged, or too big for the staging buffer
    st.tuples(st.just("ins"), st.sampled_from([FIFO_PORT, BASE + 10, UNOWNED]), st.just(FIFO_SIZE),
              st.integers(1, 20)),
    st.tuples(st.sampled_from(["tick", "hlt", "flush"]), st.just(0), st.just(1), st.just(0)),
    st.tuples(st.just("threshold"), st.just(0), st.just(1), st.integers(0, 300)),
)


def complete(ops: list[tuple]) -> list[tuple]:
    """Append FIFO reads so the guest reads whole transfer blocks (the devices' fifo_read contract)."""
    n = sum(1 if o[0] == "fifo" else o[3] if (o[0] == "ins" and o[1] == FIFO_PORT) else 0 for o in ops)
    return list(ops) + [("fifo", FIFO_PORT, FIFO_SIZE, 0)] * (-n % BLOCK)


def buf_data(i: int, size: int, count: int) -> bytes:
    return bytes((i * 31 + k * 7) & 0xFF for k in range(size * count))


# --- the three executions -----------------------------------------------------------------------------------------
def recorder(bus, trace: Trace):
    """Strict-instruction doubles: to the bus; accesses to unowned ports are recorded (devices record their own)."""
    def read(port: int, size: int) -> int:
        v = bus.read(port, size)
        if bus.find(port) is None and port not in CTRL:     # the runtime's probe of the monitor is not I/O
            trace.events.append(("r", port, size, v))
        return v

    def write(port: int, size: int, value: int) -> None:
        if bus.find(port) is None:
            trace.events.append(("w", port, size, value))
        bus.write(port, size, value)
    return read, write


def immediate(ops, ids: list[int] | None = None):
    """Every access at once on the devices; ids[i] names op i's string buffer (default: i)."""
    trace = Trace()
    bus, _ = lab_bus(trace, BASE)
    rd, wr = recorder(bus, trace)
    mem = HostMemory(RAM)
    results = []
    for n, (kind, port, size, v) in enumerate(ops):
        i = ids[n] if ids is not None else n
        gpa = BUFS + i * 4096
        if kind == "out":
            wr(port, size, mask(size, v))
        elif kind in ("in", "fifo"):
            results.append(rd(port, size))
        elif kind == "outs":
            data = buf_data(i, size, v)
            for k in range(v):
                wr(port, size, int.from_bytes(data[k * size:(k + 1) * size], "little"))
        elif kind == "ins":
            mem.write(gpa, b"".join(rd(port, size).to_bytes(size, "little") for _ in range(v)))
            results.append(mem.read(gpa, v * size))
    return trace, results


def batched_c(lib: str, ops):
    trace = Trace()
    bus, _ = lab_bus(trace, BASE)
    mem = HostMemory(RAM)
    mon = PvBatch.attach(bus, mem)
    rd, wr = recorder(bus, trace)
    rt = HostRuntime(lib, mem, lambda port, value: bus.write(port, 4, value), Strict(rd, wr))
    rt.lib.pvio_fini()
    assert rt.init(AREA) == 0
    hops = []
    for i, (kind, port, size, v) in enumerate(ops):
        gpa = BUFS + i * 4096
        k = {"out": Hop.OUT, "in": Hop.IN, "fifo": Hop.IN, "outs": Hop.OUTS, "ins": Hop.INS, "tick": Hop.TICK,
             "hlt": Hop.HLT, "flush": Hop.FLUSH, "threshold": Hop.THRESHOLD}[kind]
        if kind == "outs":
            mem.write(gpa, buf_data(i, size, v))
        hops.append(HostOp(k, port, size, mask(size, v) if kind == "out" else v, mem.base + gpa))
    res = rt.run(hops)
    rt.lib.pvio_flush()
    results = []
    for i, (kind, port, size, v) in enumerate(ops):
        if kind in ("in", "fifo"):
            results.append(res[i])
        elif kind == "ins":
            results.append(mem.read(BUFS + i * 4096, v * size))
    hdr = rt.header(AREA)
    rt.lib.pvio_fini()
    assert rt.unmasked == 0, "an exit or real instruction ran with interrupts unmasked"
    return trace, results, rt.exits, mon, hdr


def batched_ref(ops):
    trace = Trace()
    bus, _ = lab_bus(trace, BASE)
    mem = HostMemory(RAM)
    mon = PvBatch.attach(bus, mem)
    rd, wr = recorder(bus, trace)
    ref = RefRuntime(mem, AREA, mon, rd, wr)
    assert ref.init() == 0
    for i, (kind, port, size, v) in enumerate(ops):
        gpa = BUFS + i * 4096
        if kind == "out":
            ref.out(port, size, v)
        elif kind in ("in", "fifo"):
            ref.inp(port, size)
        elif kind == "outs":
            mem.write(gpa, buf_data(i, size, v))
            ref.string(Op.OUTS, port, size, gpa, v)
        elif kind == "ins":
            ref.string(Op.INS, port, size, gpa, v)
        elif kind == "tick":
            ref.tick()
        elif kind == "hlt":
            ref.hlt()
        elif kind == "flush":
            ref.flush()
        elif kind == "threshold":
            ref.set_threshold(v)
    ref.flush()
    return trace, ref.exits


def split(trace: Trace):
    """(ordered trace of every access except FIFO data reads, the FIFO data values in order)."""
    fifo = [e[3] for e in trace.events if e[0] == "r" and e[1] == FIFO_PORT]
    rest = [e for e in trace.events if not (e[0] == "r" and e[1] == FIFO_PORT)]
    return rest, fifo


# --- properties -----------------------------------------------------------------------------------------------------
@SETTINGS
@given(st.lists(op_st, max_size=60))
def test_runtime_trace_equals_immediate_execution(host_lib, ops):
    ops = complete(ops)
    want_trace, want_results = immediate(ops)
    got_trace, got_results, exits, mon, hdr = batched_c(host_lib, ops)
    assert mon.stats.rejected == 0, mon.stats.errors
    assert got_results == want_results
    assert split(got_trace) == split(want_trace)


@SETTINGS
@given(st.lists(op_st, max_size=60))
def test_runtime_exits_match_reference_model(host_lib, ops):
    ops = complete(ops)
    _, _, exits, _, _ = batched_c(host_lib, ops)
    ref_trace, ref_exits = batched_ref(ops)
    assert exits == ref_exits + 1          # + the registration exit
    assert split(ref_trace) == split(immediate(ops)[0])


@SETTINGS
@given(st.integers(1, P.ENTRY_CAPACITY), st.integers(1, 700))
def test_runtime_posted_writes_flush_at_threshold(host_lib, threshold, n):
    ops = [("threshold", 0, 1, threshold)] + [("out", BASE, 1, i) for i in range(n)]
    want, _ = immediate(ops)
    got, _, exits, _, hdr = batched_c(host_lib, ops)
    assert split(got) == split(want)
    # registration + one exit per full queue + the final flush of a partial queue
    assert exits == 1 + n // threshold + (1 if n % threshold else 0)
    assert hdr["flushes"] == n // threshold + (1 if n % threshold else 0)


def test_runtime_without_monitor_runs_every_access_directly(host_lib):
    trace = Trace()
    bus, _ = lab_bus(trace, BASE)           # no pvbatch on the bus: the probe reads all ones
    mem = HostMemory(RAM)
    rd, wr = recorder(bus, trace)
    rt = HostRuntime(host_lib, mem, lambda p, v: bus.write(p, 4, v), Strict(rd, wr))
    rt.lib.pvio_fini()
    assert rt.init(AREA) == -2
    ops = [("out", BASE, 1, 5), ("out", BASE + 4, 1, 1), ("in", BASE + 6, 1, 0), ("fifo", FIFO_PORT, 2, 0)]
    res = rt.run([HostOp(Hop.OUT if k == "out" else Hop.IN, p, s, v, 0) for k, p, s, v in ops])
    assert rt.exits == 0                    # the probe failed: no registration, never a flush
    assert [e for e in trace.events if e[1] != FIFO_PORT] == [("w", BASE, 1, 5), ("w", BASE + 4, 1, 1),
                                                              ("r", BASE + 6, 1, 1)]
    assert res[2] == 1


def test_runtime_shadow_and_fifo_are_served_in_the_guest(host_lib):
    ops = [("out", BASE + 4, 1, 1)] + [("in", BASE + 5, 1, 0)] * 10 + [("fifo", FIFO_PORT, 2, 0)] * 8
    got_trace, got_results, exits, _, hdr = batched_c(host_lib, ops)
    want_trace, want_results = immediate(ops)
    assert got_results == want_results and split(got_trace) == split(want_trace)
    assert hdr["shadow_hits"] == 10
    assert hdr["fifo_hits"] == 7            # the first read misses and refills the rest of the block
    assert exits == 1 + 1 + 1               # registration, doorbell, FIFO refill


def test_runtime_serves_shadows_behind_neutral_writes_only(host_lib):
    ops = [("out", BASE + 4, 1, 0xF3),                      # doorbell: sets bits of reg 14, refreshes the shadows
           ("out", BASE + 13, 1, 0x5A), ("in", BASE + 13, 1, 0),        # SET_VALUE: served, 0x5A
           ("out", BASE + 14, 1, 0x03), ("in", BASE + 14, 1, 0),        # CLEAR_BITS: served, 0xF0
           ("out", BASE + 11, 1, 0x01), ("in", BASE + 5, 1, 0),         # KEEP, but its condition fails: exit
           ("out", BASE + 13, 2, 0x1234), ("in", BASE + 13, 1, 0),      # a 2-byte write is never neutral: exit
           ("out", BASE, 1, 7), ("out", BASE + 13, 1, 9), ("in", BASE + 5, 1, 0)]   # behind a posted write: exit
    got_trace, got_results, exits, _, hdr = batched_c(host_lib, ops)
    want_trace, want_results = immediate(ops)
    assert got_results == want_results and split(got_trace) == split(want_trace)
    assert got_results[:2] == [0x5A, 0xF0]
    assert batched_ref(ops)[1] + 1 == exits
    # registration, doorbell, the read behind 11 (its KEEP rule needs no doorbell pending: reg 6 is 1), the read
    # behind the 2-byte write, the read behind the posted write (after which nothing is left to flush)
    assert exits == 1 + 1 + 1 + 1 + 1
    assert hdr["shadow_hits"] == 2


def test_runtime_stages_small_string_writes_and_flushes_big_ones(host_lib):
    small = [("outs", BASE + 12, 2, 100), ("outs", BASE + 12, 4, 100), ("out", BASE, 1, 3)]    # 600 bytes, staged
    big = [("outs", BASE + 12, 4, P.STAGING_SIZE // 4 + 1)]                                     # one flush at once
    # exits: registration + flushes during the program + the final pvio_flush when something stayed queued
    for ops, want in ((small, 1 + 0 + 1), (big, 1 + 1 + 0), (small + big, 1 + 1 + 0),
                      (small * 3, 1 + 1 + 1)):     # the third 400-byte string no longer fits: it flushes
        got_trace, _, exits, mon, hdr = batched_c(host_lib, ops)
        assert split(got_trace) == split(immediate(ops)[0]) and mon.stats.rejected == 0
        assert exits == want == batched_ref(ops)[1] + 1
