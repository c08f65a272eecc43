"""pvbatch's per-flush shortcuts change nothing: a monitor whose memoized (op, port, size) checks are warm accepts,
rejects (same status, same message), replays and writes back exactly what a monitor re-checking from scratch does,
batch after batch; a bus (un)registration drops the memo."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvgen import protocol as P
from pvgen.protocol import Op, Status
from tests.property.test_pvbatch_fuzz import AREA, BASE, RAM, machine, put

LONG = os.environ.get("PVGEN_HYPOTHESIS_PROFILE") == "long"
SETTINGS = settings(max_examples=2000 if LONG else 80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# mostly well-formed entries on a few ports of the lab device (so (op, port, size) repeat and the memo is used),
# with the malformed cases each check guards against: wide values, bad sizes and ops, unowned ports, bad strings
entry = st.builds(
    lambda port, size, op, value, gpa: P.ENTRY.pack(port=port, size=size, op=op, value=value, gpa=gpa),
    st.sampled_from([BASE, BASE + 1, BASE + 8, BASE + 12, BASE + 12, BASE + 15, 0x300]),
    st.sampled_from([1, 1, 1, 2, 4, 3]),
    st.sampled_from([Op.OUT, Op.OUT, Op.OUT, Op.IN, Op.IN_DISCARD, Op.OUTS, Op.INS, 6]),
    st.one_of(st.integers(0, 0xFF), st.integers(0, 0x1FF), st.sampled_from([0, 1, 8, 0x10000, (1 << 20) + 1])),
    st.one_of(st.integers(0x20000, 0x20100), st.integers(RAM - 64, RAM + 64)),
)
batches = st.lists(st.lists(entry, max_size=6), min_size=1, max_size=24)


def outcome(mem, mon, trace):
    h = P.decode_header(mem.read(AREA, P.HEADER.size))
    return (h["status"], h["count"], h["rejected"], mon.stats.rejected, mon.stats.errors[-1:], list(trace.events),
            mem.read(AREA + P.OFF_ENTRIES, P.ENTRY_CAPACITY * P.ENTRY.size), mem.read(0x20000, 0x200))


@SETTINGS
@given(batches)
def test_memoized_checks_accept_and_reject_what_fresh_checks_do(batches):
    warm, cold = machine(), machine()
    for entries in (b for b in batches for _ in range(2)):     # each batch twice: the second meets its own memo
        for mem, mon, bus, _ in (warm, cold):
            put(mem, entries)
            if mon is cold[1]:
                mon._routes_sig = None               # forget every memoized route and check
            bus.write(P.CTRL_FLUSH, 4, 0)
        assert outcome(warm[0], warm[1], warm[3]) == outcome(cold[0], cold[1], cold[3])


def test_a_registration_drops_the_memoized_checks():
    mem, mon, bus, trace = machine()
    ok = [P.Entry(Op.OUT, BASE, 1, 7).encode(), P.Entry(Op.OUT, BASE, 1, 8).encode()]
    put(mem, ok)
    bus.write(P.CTRL_FLUSH, 4, 0)
    assert P.decode_header(mem.read(AREA, P.HEADER.size))["status"] == Status.OK
    dev = bus.find(BASE)[0]
    bus.unregister(BASE, dev)                        # the port is no longer owned: the same batch is rejected
    put(mem, ok)
    bus.write(P.CTRL_FLUSH, 4, 0)
    assert P.decode_header(mem.read(AREA, P.HEADER.size))["status"] == Status.BAD_ENTRY
    assert "not owned" in mon.stats.errors[-1]
    bus.register(BASE, 16, dev)
    put(mem, ok)
    bus.write(P.CTRL_FLUSH, 4, 0)
    assert P.decode_header(mem.read(AREA, P.HEADER.size))["status"] == Status.OK
    assert [e[3] for e in trace.events] == [7, 8, 7, 8]


def E(op: Op, port: int, size: int, value: int, gpa: int = 0) -> bytes:
    return P.Entry(op, port, size, value, gpa).encode()


BIG_RAM = 4 << 20
# (an entry that passes, then the same op, port and size failing one check): the memo must not let it through;
# string buffers lie past the area (AREA..+AREA_SIZE)
MEMO_CASES = [
    (E(Op.OUT, BASE, 1, 0xFF), E(Op.OUT, BASE, 1, 0x100)),                          # wider than its size
    (E(Op.OUT, BASE, 2, 0xFFFF), E(Op.OUT, BASE, 2, 0x10000)),
    (E(Op.OUTS, BASE + 12, 1, 4, 0x70000), E(Op.OUTS, BASE + 12, 1, 0, 0x70000)),   # empty string
    (E(Op.OUTS, BASE + 12, 2, 4, 0x70000), E(Op.OUTS, BASE + 12, 2, 4, BIG_RAM - 4)),   # past the end of RAM
    (E(Op.INS, BASE + 8, 4, 4, 0x70000), E(Op.INS, BASE + 8, 4, (1 << 18) + 1, 0)),  # over MAX_STRING_BYTES
    (E(Op.OUTS, BASE + 12, 2, 4, 0x70000), E(Op.OUTS, BASE + 12, 2, (1 << 19) + 1, 0)),
    (E(Op.INS, BASE + 8, 1, 1, 0x70000), E(Op.INS, BASE + 8, 1, 1, (1 << 64) - 1)),
    (E(Op.INS, BASE + 8, 1, 1, 0x70000), E(Op.INS, BASE + 8, 1, 1, AREA + 0x100)),    # into the batch area
]


def test_memoized_checks_still_reject_each_bad_field():
    for good, bad in MEMO_CASES:
        warm, cold = machine(BIG_RAM), machine(BIG_RAM)     # RAM is not what limits a string's length here
        for mem, mon, bus, _ in (warm, cold):
            put(mem, [good])
            bus.write(P.CTRL_FLUSH, 4, 0)
            assert P.decode_header(mem.read(AREA, P.HEADER.size))["status"] == Status.OK
        for mem, mon, bus, _ in (warm, cold):
            put(mem, [good, bad])
            if mon is cold[1]:
                mon._routes_sig = None
            bus.write(P.CTRL_FLUSH, 4, 0)
        assert outcome(*warm[:2], warm[3]) == outcome(*cold[:2], cold[3])
        assert outcome(*warm[:2], warm[3])[0] != Status.OK, bad


def test_guest_memory_bounds_checks_inline_are_the_same_checks():
    import pytest

    from pvgen.errors import ProtocolError
    from pvgen.vmm.memory import GuestMemory

    m = GuestMemory(2 << 20)
    try:
        for gpa, n in [(-1, 1), (0, -1), (m.size - 1, 2), (m.size, 1), (1 << 64, 0)]:
            with pytest.raises(ProtocolError):
                m.read(gpa, n)
        for gpa, data in [(-1, b"x"), (m.size - 1, b"xy"), (m.size, b"x"), (1 << 64, b"")]:
            with pytest.raises(ProtocolError):
                m.write(gpa, data)
        assert m.read(m.size - 2, 2) == b"\0\0" and m.read(0, 1) == b"\0"       # nothing was written
        m.write(m.size - 2, b"ab")
        assert m.read(m.size - 2, 2) == b"ab" and m.read(m.size, 0) == b""
    finally:
        m.close()
