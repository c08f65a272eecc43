"""ATA neutral task-file writes (AtaDisk.write_rules, protocol v2): whenever the runtime's rule check lets a byte
write through as neutral, the device after that write reads back exactly the shadows the runtime then serves."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from pvgen import protocol as P
from pvgen.devices import ata as A
from pvgen.devices.diskimage import MemoryDisk
from tests.property.test_ata_fuzz import Line, access, apply

PROFILE = os.environ.get("PVGEN_HYPOTHESIS_PROFILE", "default")
EXAMPLES = {"long": 3000}.get(PROFILE, 150)


def shadows(dev: A.AtaDisk) -> dict[tuple[str, int], int | None]:
    out = {("cmd", off): dev.shadow_read(off) for off in range(1, 8)}
    out[("ctl", 0)] = dev.control.shadow_read(0)
    return out


def runtime_neutral(rule: P.WriteRule, sh: dict, off: int, value: int) -> bool:
    """The check runtime/batch.c (pvio_neutral) makes on the published shadows before a byte write."""
    if rule.op == P.Neutral.NONE or value & rule.value_mask != rule.value_want:
        return False
    if rule.cond_mask:
        cond = sh[("cmd", rule.cond_offset)]
        if cond is None or cond & rule.cond_mask != rule.cond_want:
            return False
    return rule.op == P.Neutral.KEEP or sh[("cmd", off)] is not None


def check_writes(dev: A.AtaDisk, line: Line, writes) -> None:
    """Byte writes while each is neutral by its rule: every shadow the runtime serves then is the device's readback."""
    rules = dev.write_rules()
    assert set(rules) == {1, 2, 3, 4, 5, 6}
    guest = shadows(dev)                 # what the runtime serves: published, then updated by neutral writes
    for off, value in writes:
        if not runtime_neutral(rules[off], guest, off, value):
            return                       # a non-neutral write: the runtime serves no shadow until the next flush
        level, intrq = line.level, dev.intrq
        dev.io_write(off, 1, value)
        if rules[off].op != P.Neutral.KEEP:
            guest[("cmd", off)] = P.neutral_shadow(rules[off].op, rules[off].operand, guest[("cmd", off)], value)
        device = shadows(dev)
        for key, served in guest.items():
            if served is not None:
                assert device[key] == served, (key, off, value)
        assert (line.level, dev.intrq) == (level, intrq)


@settings(max_examples=EXAMPLES, deadline=None)
@given(ops=st.lists(access, max_size=60), writes=st.lists(st.tuples(st.integers(1, 6), st.integers(0, 0xFF)),
                                                          min_size=1, max_size=8))
def test_neutral_writes_change_only_what_their_rule_says(ops, writes):
    line = Line()
    dev = A.AtaDisk(MemoryDisk(64), irq=line)
    for op in ops:
        apply(dev, op)
    check_writes(dev, line, writes)


STATES = {   # (target, offset, value) writes that lead to the state
    "fresh": [],
    "device 1 selected": [(0, 6, A.ATA_DEV1)],
    "HOB": [(1, 0, A.ATA_HOB)],
    "SRST": [(1, 0, A.ATA_SRST)],
    "read DRQ, interrupts on": [(1, 0, 0), (0, 2, 2), (0, 6, A.ATA_LBA), (0, 7, A.ATA_CMD_PIO_READ)],
    "write DRQ, device 1 after": [(0, 2, 1), (0, 7, A.ATA_CMD_PIO_WRITE), (0, 6, A.ATA_DEV1 | A.ATA_LBA)],
    "error": [(0, 7, 0xFF)],
}


def test_neutral_writes_from_each_state_for_every_register_and_edge_value():
    for name, prefix in STATES.items():
        for off in range(1, 7):
            for value in (0x00, 0x01, 0x10, 0x40, 0x50, 0x80, 0xE0, 0xFF):
                for second in ((6, 0x00), (6, 0x10), (2, 0x33), (1, 0x04)):
                    line = Line()
                    dev = A.AtaDisk(MemoryDisk(64), irq=line)
                    for target, o, v in prefix:
                        (dev.control if target else dev).io_write(o, 1, v)
                    check_writes(dev, line, [(off, value), second])


def test_rules_are_neutral_only_where_the_readback_is_predictable():
    dev = A.AtaDisk(MemoryDisk(64))
    rules = dev.write_rules()
    assert rules[A.ATA_REG_FEATURE].op == P.Neutral.KEEP
    assert all(rules[o].op == P.Neutral.SET_VALUE for o in (2, 3, 4, 5))
    dev_rule = rules[A.ATA_REG_DEVICE]
    sh = shadows(dev)
    assert runtime_neutral(dev_rule, sh, 6, A.ATA_LBA)               # device 0 stays selected
    assert not runtime_neutral(dev_rule, sh, 6, A.ATA_LBA | A.ATA_DEV1)  # selecting device 1 changes Status
    dev.write_devctl(A.ATA_HOB)
    assert shadows(dev)[("cmd", 2)] is None and not runtime_neutral(rules[2], shadows(dev), 2, 0x12)
    dev.write_devctl(A.ATA_SRST)
    assert all(shadows(dev)[("cmd", o)] is None for o in range(1, 7))
    assert A.ATA_REG_CMD not in rules and not hasattr(dev.control, "write_rules")   # commands, Device Control
