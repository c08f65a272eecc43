"""The NE2000's neutral-write rules are true of the model: a write the rule calls neutral (judged from the shadows,
as the runtime judges it) changes no other register's readback, and its own exactly as the rule says."""

from __future__ import annotations

import copy
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from pvgen import protocol as P
from pvgen.devices import ne2000 as N

PROFILE = os.environ.get("PVGEN_HYPOTHESIS_PROFILE", "default")
EXAMPLES = {"long": 3000}.get(PROFILE, 150)
MAC = bytes.fromhex("525400abcdef")

write = st.tuples(st.integers(0, 0x10), st.integers(0, 0xFF))
# CR values the drivers write (page 0/1, abort/read/write DMA, start/stop, transmit) and anything else
cr_value = st.one_of(st.sampled_from([0x20, 0x21, 0x22, 0x26, 0x0A, 0x12, 0x60, 0x62, 0x61, 0x02]),
                     st.integers(0, 0xFF))


def nic_after(setup: list[tuple[int, int]], frames: int) -> N.Ne2000:
    nic = N.Ne2000(mac=MAC)
    for off, v in [(N.CR, 0x21), (N.DCR, 0x49), (N.PSTART, 0x4C), (N.PSTOP, 0x80), (N.BNRY, 0x7F),
                   (N.TPSR, 0x40), (N.RCR, 0x1C), (N.IMR, 0x3F), (N.CR, 0x61), (N.CURR, 0x4C), (N.CR, 0x22)]:
        nic.io_write(off, 1, v)
    for i in range(frames):
        nic.receive(MAC + bytes([i]) * 80)
    for off, v in setup:
        nic.io_write(off, 1, v)
    return nic


def readback(nic: N.Ne2000) -> list[int | None]:
    return [nic.shadow_read(off) for off in range(0x10)]


@settings(max_examples=EXAMPLES, deadline=None)
@given(setup=st.lists(write, max_size=12), frames=st.integers(0, 3), off=st.integers(0, 0x0F),
       value=st.integers(0, 0xFF), cr=cr_value)
def test_a_neutral_write_changes_only_its_own_readback_as_declared(setup, frames, off, value, cr):
    nic = nic_after(setup, frames)
    rules = nic.write_rules()
    value = cr if off == N.CR else value
    rule = rules.get(off)
    before = readback(nic)
    if rule is None or (value & rule.value_mask) != rule.value_want:
        return
    if rule.cond_mask and (before[rule.cond_offset] & rule.cond_mask) != rule.cond_want:
        return
    if value & nic.doorbell_masks().get(off, 0):
        return                                          # a doorbell: the runtime flushes
    after_nic = copy.deepcopy(nic)
    after_nic.io_write(off, 1, value)
    after = readback(after_nic)
    want = list(before)
    want[off] = P.neutral_shadow(rule.op, rule.operand, before[off], value, rule.value_mask)
    if rule.op == P.Neutral.BANK:
        # the banked offsets then read as the selected bank, as published before the write
        bank = P.bank_of(rule.operand, value)
        for i in range(1, 1 + rule.banked):
            want[off + i] = nic.bank_shadow_read(bank, off + i)
            if want[off + i] is None:     # an unpublished bank: the runtime exits for it
                want[off + i] = after[off + i]
    assert after == want


@settings(max_examples=EXAMPLES, deadline=None)
@given(setup=st.lists(write, max_size=12), frames=st.integers(0, 3), cr=cr_value)
def test_the_published_banks_are_the_pages_registers(setup, frames, cr):
    """Each bank the CR BANK rule publishes is what a page select would read: the current page's bank equals the
    live shadows, and every published bank is side-effect free (reading it changes no register)."""
    nic = nic_after(setup + [(N.CR, cr)], frames)
    rule = nic.write_rules()[N.CR]
    assert rule.op == P.Neutral.BANK and P.bank_of(rule.operand, nic.shadow_read(N.CR)) == nic.page
    before = copy.deepcopy(nic)
    banks = [[nic.bank_shadow_read(b, o) for o in range(1, 1 + rule.banked)]
             for b in range(P.bank_count(rule.operand))]
    # page 2 leaves out what neutral page-0 writes change (and CRDA's next page): those reads exit
    unbanked = {2: {N.PSTART, N.PSTOP, 3, N.TPSR, N.RCR, N.TCR, N.DCR, N.IMR}}
    for b, values in enumerate(banks):
        assert [o for o, v in zip(range(1, 1 + rule.banked), values) if v is None] == \
            sorted(unbanked.get(b, set()) if b <= 2 else range(1, 1 + rule.banked))
    if nic.page <= 2:
        assert [v for v, r in zip(banks[nic.page], readback(nic)[1:1 + rule.banked]) if v is not None and v != r] == []
    for b, values in enumerate(banks):
        if all(v is None for v in values):
            continue
        probe = copy.deepcopy(before)
        probe.page = b
        assert all(v is None or v == probe.shadow_read(o) for o, v in zip(range(1, 1 + rule.banked), values))
    assert nic.page == before.page and readback(nic) == readback(before) and nic.cntr == before.cntr


def test_the_rules_cover_the_transmit_and_interrupt_paths():
    nic = nic_after([], 0)
    rules = nic.write_rules()
    assert set(rules) == set(range(0x10))
    assert rules[N.ISR].op == P.Neutral.CLEAR_BITS and rules[N.CR].op == P.Neutral.BANK
    # lib8390's receive path: page 1 to read CURR, page 0 back, both bank selects
    for v in (0x60, 0x20, 0x62, 0x22):
        assert (v & rules[N.CR].value_mask) == rules[N.CR].value_want
    # page 1 selected: only the bank select is neutral (the others' cond on CR's page bits fails)
    nic.io_write(N.CR, 1, 0x62)
    cr = nic.shadow_read(N.CR)
    assert [off for off, r in rules.items() if r.cond_mask == 0 or (cr & r.cond_mask) == r.cond_want] == [N.CR]
