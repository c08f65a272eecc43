"""Bank-select writes (Neutral.BANK) in the C runtime (host build, real thunks) and the reference model: random
programs over a small banked device give the same reads and device writes as immediate execution, the same exits
in C and in the model, and selects between published banks cost no exit."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvgen import protocol as P
from pvgen.devices.bus import PortBus
from pvgen.devices.pvbatch import PvBatch
from pvgen.protocol import PortClass
from pvgen.runtime.build import build
from pvgen.runtime.hostlib import HostMemory, HostOp, HostRuntime, Hop, Strict
from pvgen.runtime.refmodel import RefRuntime

LONG = os.environ.get("PVGEN_HYPOTHESIS_PROFILE") == "long"
SETTINGS = settings(max_examples=2000 if LONG else 60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
BASE, RAM, AREA = 0x200, 1 << 20, 0x10000
BUSY, SEL = 0, 1           # BUSY: the rule's condition; SEL: the bank select; 2-4: banked registers
GO = 0x01                  # SEL bit that rings (a doorbell: it also changes banked register 2 and BUSY)


@dataclass
class BankDevice:
    """SEL's bits 7:6 select which of 4 banks offsets 2-4 read and write; bank 3 is never published (its reads
    exit). A SEL write with bits 5:1 set is not neutral (it bumps every bank); GO rings."""

    writes: list = field(default_factory=list)
    sel: int = 0
    rung: int = 0
    regs: list = field(default_factory=lambda: [[b * 16 + o for o in range(5)] for b in range(4)])

    def port_classes(self):
        Sh = PortClass.SHADOW
        return {BUSY: (Sh, PortClass.POSTED), SEL: (Sh, PortClass.DOORBELL_IF), 2: (Sh, PortClass.POSTED),
                3: (Sh, PortClass.POSTED), 4: (Sh, PortClass.POSTED)}

    def doorbell_masks(self):
        return {SEL: GO}

    def write_rules(self):
        return {SEL: P.WriteRule(P.Neutral.BANK, operand=0xC0, cond_offset=BUSY, cond_mask=1, cond_want=0,
                                 value_mask=0x3F, value_want=0, banked=3),
                2: P.WriteRule(P.Neutral.SET_VALUE), 3: P.WriteRule(P.Neutral.SET_VALUE)}   # in the live bank

    def _peek(self, bank: int, off: int) -> int:
        if off == BUSY:
            return self.rung & 1
        return self.sel if off == SEL else self.regs[bank][off]

    def io_read(self, off: int, size: int) -> int:
        return self._peek(self.sel >> 6, off) & ((1 << 8 * size) - 1)

    def shadow_read(self, off: int, size: int = 1):
        return self._peek(self.sel >> 6, off) if size == 1 else None

    def bank_shadow_read(self, bank: int, off: int, size: int = 1):
        return self._peek(bank, off) if size == 1 and bank < 3 and off >= 2 else None

    def read_side_effects(self, off: int) -> bool:
        return False

    def io_write(self, off: int, size: int, value: int) -> None:
        self.writes.append((off, size, value))
        if off == SEL:
            self.sel = value & 0xFE
            if value & 0x3E:
                for bank in self.regs:
                    bank[2:] = [(v + 1) & 0xFF for v in bank[2:]]
            if value & GO:
                self.rung += 1
                self.regs[self.sel >> 6][2] ^= 0x80
        elif off == BUSY:
            self.rung = value
        else:
            self.regs[self.sel >> 6][off] = value & 0xFF


@pytest.fixture(scope="module", params=["asm", "c"])
def host_lib(request, tmp_path_factory) -> str:
    extra = ("-DPVIO_NO_ASM_OUT",) if request.param == "c" else ()
    return str(build("host", "batch", tmp_path_factory.mktemp("rtb") / f"pvio_bank_{request.param}.so",
                     extra_cflags=extra))


def _bus():
    bus, dev = PortBus(), BankDevice()
    bus.register(BASE, 5, dev)
    return bus, dev


def _monitor():
    bus, dev = _bus()
    mem = HostMemory(RAM)
    mon = PvBatch.attach(bus, mem)
    return bus, dev, mem, mon


def _strict(bus):
    return (lambda p, s: bus.read(p, s)), (lambda p, s, v: bus.write(p, s, v))


def immediate(ops):
    bus, dev = _bus()
    return [bus.read(p, 1) if k == "in" else bus.write(p, 1, v) for k, p, v in ops if k != "tick"], dev.writes


def batched_c(lib: str, ops):
    bus, dev, mem, mon = _monitor()
    rd, wr = _strict(bus)
    rt = HostRuntime(lib, mem, lambda port, value: bus.write(port, 4, value), Strict(rd, wr))
    rt.lib.pvio_fini()
    assert rt.init(AREA) == 0
    kinds = {"in": Hop.IN, "out": Hop.OUT, "tick": Hop.TICK}
    res = rt.run([HostOp(kinds[k], p, 1, v, 0) for k, p, v in ops])
    rt.lib.pvio_flush()
    rt.lib.pvio_fini()
    assert mon.stats.rejected == 0, mon.stats.errors
    results = [None if k == "out" else res[i] for i, (k, _, _) in enumerate(ops) if k != "tick"]
    return results, dev.writes, rt.exits


def batched_ref(ops):
    bus, dev, mem, mon = _monitor()
    rd, wr = _strict(bus)
    ref = RefRuntime(mem, AREA, mon, rd, wr)
    assert ref.init() == 0
    results = []
    for k, p, v in ops:
        if k == "tick":
            ref.tick()
        else:
            results.append(ref.inp(p, 1) if k == "in" else ref.out(p, 1, v))
    ref.flush()
    return results, dev.writes, ref.exits


sel_value = st.one_of(st.sampled_from([0x00, 0x40, 0x80, 0xC0]), st.integers(0, 0xFF))
op_st = st.one_of(
    st.tuples(st.just("out"), st.just(BASE + SEL), sel_value),
    st.tuples(st.just("out"), st.sampled_from([BASE + BUSY, BASE + 2, BASE + 3, BASE + 4]), st.integers(0, 0xFF)),
    st.tuples(st.just("in"), st.sampled_from([BASE + o for o in range(5)]), st.just(0)),
    st.tuples(st.just("tick"), st.just(0), st.just(0)),
)


@SETTINGS
@given(st.lists(op_st, max_size=50))
def test_bank_selects_equal_immediate_execution_and_the_model(host_lib, ops):
    want = immediate(ops)
    got_results, got_writes, exits = batched_c(host_lib, ops)
    ref_results, ref_writes, ref_exits = batched_ref(ops)
    assert (got_results, got_writes) == want
    assert (ref_results, ref_writes) == want
    assert exits == ref_exits + 1          # + the registration exit


def test_selects_between_published_banks_cost_no_exit(host_lib):
    ops = [("out", BASE + 4, 0x11), ("in", BASE + 2, 0)]          # exit: the read behind a posted write
    ops += [("out", BASE + 2, 0x22), ("out", BASE + SEL, 0x80), ("out", BASE + 2, 0x33)]   # neutral, per bank
    for sel in (0x40, 0x80, 0x00, 0x80, 0x40):
        ops += [("out", BASE + SEL, sel)] + [("in", BASE + o, 0) for o in range(5)]
    results, writes, exits = batched_c(host_lib, ops)
    assert (results, writes) == immediate(ops)
    assert exits == 1 + 1 + 1              # registration, that read, the final flush of the queued selects
    ops += [("out", BASE + SEL, 0xC0), ("in", BASE + 3, 0)]       # bank 3 is not published: its read exits
    assert batched_c(host_lib, ops)[2] == 1 + 1 + 1
    assert batched_ref(ops)[2] + 1 == batched_c(host_lib, ops)[2]
