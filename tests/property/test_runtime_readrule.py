"""Neutral read effects (protocol v4, the read_neutral bitmap) in the C runtime (host build, real thunks) and the
reference model: a shadow hit on a read whose side effect changes no shadowed value queues an IN_DISCARD that counts
as neutral, so later shadow reads stay in the guest; the device still sees every read, in order, at the next flush."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pvgen import protocol as P
from pvgen.devices.bus import PortBus
from pvgen.devices.pvbatch import PvBatch
from pvgen.protocol import PortClass
from pvgen.runtime.hostlib import HostMemory
from pvgen.runtime.refmodel import LabDevice, RefRuntime, Trace
from tests.property.test_runtime_batch import host_lib  # noqa: F401 - the host build fixture
from tests.property.test_runtime_batch import AREA, BASE, RAM, SETTINGS, batched_c, batched_ref, immediate, split

ACK = BASE + 9        # shadow, read effect neutral (acknowledges: only strict reg 10 shows it)
CLEAR = BASE + 6      # shadow, read effect not neutral (clears its own value)
sizes = st.sampled_from([1, 2, 4])
u8 = st.integers(0, 0xFF)
op_st = st.one_of(
    st.tuples(st.just("in"), st.just(ACK), sizes, st.just(0)),
    st.tuples(st.just("in"), st.sampled_from([CLEAR, BASE + 5, BASE + 10]), sizes, st.just(0)),
    st.tuples(st.just("in"), st.sampled_from([BASE + 13, BASE + 14]), st.sampled_from([1, 2]), st.just(0)),
    st.tuples(st.just("out"), st.sampled_from([BASE + 11, BASE + 13, BASE + 14]), st.just(1), u8),   # neutral writes
    st.tuples(st.just("out"), st.sampled_from([BASE, BASE + 1, BASE + 4]), st.just(1), u8),   # posted, doorbell
    st.tuples(st.sampled_from(["tick", "flush"]), st.just(0), st.just(1), st.just(0)),
    st.tuples(st.just("threshold"), st.just(0), st.just(1), st.integers(1, 12)),
)


@SETTINGS
@given(st.lists(op_st, max_size=60))
def test_neutral_read_effects_keep_the_trace_and_the_model(host_lib, ops):
    want_trace, want_results = immediate(ops)
    got_trace, got_results, exits, mon, _ = batched_c(host_lib, ops)
    ref_trace, ref_exits = batched_ref(ops)
    assert mon.stats.rejected == 0, mon.stats.errors
    assert got_results == want_results
    assert got_trace.events == want_trace.events         # every read of ACK, in order (no FIFO here)
    assert split(ref_trace) == split(want_trace)
    assert exits == ref_exits + 1                          # + the registration exit


def test_reads_behind_a_neutral_read_effect_are_served(host_lib):
    polls = [("in", ACK, 1, 0)] * 5 + [("in", BASE + 5, 1, 0), ("out", BASE + 13, 1, 0x5A), ("in", BASE + 13, 1, 0),
                                       ("in", ACK, 2, 0)]
    ops = [("out", BASE + 4, 1, 1)] + polls + [("in", BASE + 10, 1, 0)]   # the strict read shows the 6 acks
    got_trace, got_results, exits, _, hdr = batched_c(host_lib, ops)
    want_trace, want_results = immediate(ops)
    assert got_results == want_results and got_trace.events == want_trace.events
    assert [e[1] for e in got_trace.events if e[0] == "r"] == [ACK] * 6 + [BASE + 10]
    assert hdr["shadow_hits"] == 8
    assert exits == 1 + 1 + 1 == batched_ref(ops)[1] + 1   # registration, doorbell, the strict read
    # The same polls on a register whose read effect is not neutral: a read behind its IN_DISCARD exits (the 2nd
    # and 4th poll and the read of reg 5; the neutral write then finds the queue empty again).
    clear = [(k, CLEAR if p == ACK else p, s, v) for k, p, s, v in ops]
    assert batched_c(host_lib, clear)[2] == exits + 3 == batched_ref(clear)[1] + 1


@SETTINGS
@given(st.integers(1, 12), st.integers(1, 40))
def test_neutral_discards_still_flush_at_the_threshold(host_lib, threshold, n):
    ops = [("threshold", 0, 1, threshold)] + [("in", ACK, 1, 0)] * n
    got_trace, _, exits, _, hdr = batched_c(host_lib, ops)
    assert got_trace.events == immediate(ops)[0].events
    assert hdr["shadow_hits"] == n
    assert exits == 1 + n // threshold + (1 if n % threshold else 0)


class _Declares:
    """A device that declares neutral read effects on every kind of port (only an effectful SHADOW read counts)."""

    def port_classes(self):
        S, Sh = PortClass.STRICT, PortClass.SHADOW
        return {0: (Sh, S), 1: (Sh, S), 2: (S, S), 3: (Sh, S), 4: (PortClass.FIFO, S)}

    def shadow_read(self, off, size=1):
        return off

    def read_side_effects(self, off):
        return off != 1            # 1 is a pure shadow: no IN_DISCARD at all

    def neutral_read_effects(self):
        return frozenset({0, 1, 2, 4, 7, -1})   # 3 not declared; 7 and -1 outside the range

    def fifo_read(self, off, size, n):
        return []

    def io_read(self, off, size):
        return off

    def io_write(self, off, size, value):
        pass


def test_monitor_publishes_the_bit_only_for_declared_effectful_shadows():
    bus = PortBus()
    bus.register(0x40, 5, _Declares())
    trace = Trace()
    bus.register(BASE, 16, LabDevice(BASE, trace))
    mem = HostMemory(RAM)
    mon = PvBatch.attach(bus, mem)
    ref = RefRuntime(mem, AREA, mon, lambda p, s: bus.read(p, s), lambda p, s, v: bus.write(p, s, v))
    assert ref.init() == 0
    bitmap = mem.read(AREA + P.OFF_READ_NEUTRAL, P.READ_NEUTRAL_SIZE)
    words = mon.class_words()
    marked = {port for port, w in words.items() if P.split_class_word(w)[0] == PortClass.SHADOW
              and P.is_read_neutral(bitmap, P.split_class_word(w)[4])}
    assert marked == {0x40, ACK}
    assert P.split_class_word(words[0x40])[3] and not P.split_class_word(words[0x41])[3]
    assert sum(bin(b).count("1") for b in bitmap) == 2


def test_bitmap_encoding():
    bitmap = P.read_neutral_bitmap([0, 9, 255])
    assert len(bitmap) == P.READ_NEUTRAL_SIZE and bitmap[0] == 1 and bitmap[1] == 2 and bitmap[31] == 0x80
    assert [s for s in range(P.SHADOW_SLOTS) if P.is_read_neutral(bitmap, s)] == [0, 9, 255]
