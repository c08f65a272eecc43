"""The monitor's doorbell masks and its partial shadow refresh (docs/protocol.md, "The flush", step 5)."""

from __future__ import annotations

import os
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from pvgen import protocol as P
from pvgen.devices.pvbatch import PvBatch
from pvgen.protocol import Op, PortClass
from pvgen.runtime.refmodel import LabDevice, Trace, lab_bus

LONG = os.environ.get("PVGEN_HYPOTHESIS_PROFILE") == "long"
RAM, AREA = 0x80000, 0x10000
A, B = 0x100, 0x200      # two lab devices


class StrictMemory:
    def __init__(self, size: int):
        self.size, self.buf = size, bytearray(size)

    def read(self, gpa: int, n: int) -> bytes:
        assert 0 <= gpa and n >= 0 and gpa + n <= self.size
        return bytes(self.buf[gpa:gpa + n])

    def write(self, gpa: int, data: bytes) -> None:
        assert 0 <= gpa and gpa + len(data) <= self.size
        self.buf[gpa:gpa + len(data)] = data


def machine(sync_a: bool, sync_b: bool, masks: bool = True):
    trace = Trace()
    bus, dev_a = lab_bus(trace, A)
    dev_b = LabDevice(B, trace)
    bus.register(B, 16, dev_b)
    dev_a.synchronous_shadows, dev_b.synchronous_shadows = sync_a, sync_b
    if not masks:   # B declares DOORBELL_IF on 11, 13, 14 but no mask, and no rule on 11
        dev_b.doorbell_masks = dict   # type: ignore[method-assign]
        dev_b.write_rules = lambda: {k: v for k, v in LabDevice.write_rules(dev_b).items() if k != 11}
    mem = StrictMemory(RAM)
    mon = PvBatch.attach(bus, mem)
    mem.write(AREA, P.HEADER.pack(magic=P.MAGIC, version=P.VERSION, area_size=P.AREA_SIZE,
                                  capacity=P.ENTRY_CAPACITY, threshold=P.DEFAULT_THRESHOLD))
    bus.write(P.CTRL_REGISTER, 4, AREA >> 12)
    assert mon.stats.rejected == 0
    return mem, mon, bus, dev_a, dev_b


def word(mem, port: int) -> int:
    return struct.unpack_from("<H", mem.read(AREA + P.OFF_CLASSES + 2 * port, 2))[0]


def shadow(mem, port: int) -> int:
    """The published byte value of port's shadow."""
    slot = P.split_class_word(word(mem, port))[4]
    return P.SHADOW.unpack(mem.read(AREA + P.OFF_SHADOWS + slot * P.SHADOW.size, P.SHADOW.size))["val"][0]


def flush(mem, bus, entries: list[P.Entry]) -> None:
    for i, e in enumerate(entries):
        mem.write(AREA + P.OFF_ENTRIES + i * P.ENTRY.size, e.encode())
    mem.write(AREA + 20, struct.pack("<I", len(entries)))
    bus.write(P.CTRL_FLUSH, 4, 0)
    assert P.decode_header(mem.read(AREA, P.HEADER.size))["status"] == P.Status.OK


def test_pvbatch_publishes_doorbell_masks_by_slot():
    mem, *_ = machine(False, False)
    masks = mem.read(AREA + P.OFF_DOORBELL_MASKS, P.SHADOW_SLOTS)
    for base in (A, B):
        w = word(mem, base + 11)
        assert P.split_class_word(w)[1] == PortClass.DOORBELL_IF and masks[w >> P.CLS_SLOT_SHIFT] == 0x80
        assert P.is_doorbell(w, 0x81, masks) and not P.is_doorbell(w, 0x7F, masks)
        assert not P.is_doorbell(word(mem, base), 0xFF, masks)            # POSTED never rings
    slots = [P.split_class_word(word(mem, p))[4] for p in (A + 5, A + 6, A + 11, B + 5, B + 6, B + 11)]
    assert len(set(slots)) == 6                                           # a slot per shadow and per mask


def test_pvbatch_doorbell_if_without_a_mask_or_rule_is_a_doorbell():
    mem, *_ = machine(False, False, masks=False)
    assert P.split_class_word(word(mem, A + 11))[1] == PortClass.DOORBELL_IF
    assert P.split_class_word(word(mem, B + 11))[1] == PortClass.DOORBELL
    masks = mem.read(AREA + P.OFF_DOORBELL_MASKS, P.SHADOW_SLOTS)
    w = word(mem, B + 13)                                    # a rule, no mask: DOORBELL_IF that never rings
    assert P.split_class_word(w)[1] == PortClass.DOORBELL_IF and masks[w >> P.CLS_SLOT_SHIFT] == 0


def test_pvbatch_publishes_write_rules_by_slot():
    mem, *_ = machine(False, False)
    slot = lambda port: P.split_class_word(word(mem, port))[4]  # noqa: E731
    rule = lambda port: P.WRITE_RULE.unpack(mem.read(AREA + P.OFF_WRITE_RULES + slot(port) * P.WRITE_RULE.size,  # noqa: E731
                                                     P.WRITE_RULE.size))
    assert rule(A + 11) == dict(op=P.Neutral.KEEP, operand=0, cond_slot=slot(A + 6), cond_mask=1, cond_want=0,
                                value_mask=0x40, value_want=0, banked=0)
    assert rule(B + 14)["op"] == P.Neutral.CLEAR_BITS and rule(B + 14)["operand"] == 0x0F
    assert rule(A + 5)["op"] == P.Neutral.NONE                # no rule declared


@settings(max_examples=400 if LONG else 40, deadline=None)
@given(st.booleans(), st.booleans(), st.integers(1, 0xFF), st.integers(1, 0xFF))
def test_pvbatch_refresh_skips_only_untouched_synchronous_devices(sync_a, sync_b, va, vb):
    mem, mon, bus, dev_a, dev_b = machine(sync_a, sync_b)
    before_b = shadow(mem, B + 5)
    dev_b.regs[0] = (dev_b.regs[0] + vb) & 0xFF    # a change behind the monitor's back (a broken promise)
    flush(mem, bus, [P.Entry(Op.OUT, A, 1, va)])   # touches A only
    assert shadow(mem, A + 5) == dev_a.shadow_read(5, 1)
    assert shadow(mem, B + 5) == (before_b if sync_b else dev_b.shadow_read(5, 1) & 0xFF)
    flush(mem, bus, [])                            # an empty flush (tick, hlt) refreshes everything
    assert shadow(mem, B + 5) == dev_b.shadow_read(5, 1) & 0xFF
    dev_b.regs[1] = (dev_b.regs[1] + 1) & 0xFF
    mon.refresh()                                  # so does the asynchronous-event refresh
    assert shadow(mem, B + 5) == dev_b.shadow_read(5, 1) & 0xFF
    flush(mem, bus, [P.Entry(Op.OUT, B + 1, 1, va)])
    assert shadow(mem, B + 5) == dev_b.shadow_read(5, 1) & 0xFF


class _Bulk:
    """A data port that counts how it is read: read_many (one call per INS) or io_read."""

    name = "bulk"

    def __init__(self) -> None:
        self.n, self.calls = 0, []

    def io_read(self, off: int, size: int) -> int:
        self.calls.append("io_read")
        self.n += 1
        return self.n & ((1 << (8 * size)) - 1)

    def io_write(self, off: int, size: int, value: int) -> None:
        pass

    def read_many(self, off: int, size: int, count: int) -> bytes:
        self.calls.append("read_many")
        out = b""
        for _ in range(count):
            self.n += 1
            out += (self.n & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        return out

    def port_classes(self):
        return {}


def test_pvbatch_ins_uses_read_many_when_the_device_has_it():
    mem, mon, bus, *_ = machine(False, False)
    dev = _Bulk()
    bus.register(0x300, 2, dev)
    bus.write(P.CTRL_REGISTER, 4, AREA >> 12)       # re-register: the class table now covers the new device
    flush(mem, bus, [P.Entry(Op.INS, 0x300, 2, 5, 0x70000), P.Entry(Op.IN, 0x300, 2)])
    assert dev.calls == ["read_many", "io_read"]
    assert struct.unpack("<5H", mem.read(0x70000, 10)) == (1, 2, 3, 4, 5)


def test_pvbatch_a_doorbell_mask_needs_a_declared_doorbell_if():
    trace = Trace()
    bus, dev = lab_bus(trace, A)
    classes = LabDevice.port_classes(dev)
    classes[13] = (PortClass.SHADOW, PortClass.POSTED)                 # posted, with a rule: upgraded, mask 0
    dev.port_classes = lambda: classes                                  # type: ignore[method-assign]
    dev.doorbell_masks = lambda: {11: 0x80, 13: 0x01, 0: 0x01}          # type: ignore[method-assign]
    mem = StrictMemory(RAM)
    mon = PvBatch.attach(bus, mem)
    mem.write(AREA, P.HEADER.pack(magic=P.MAGIC, version=P.VERSION, area_size=P.AREA_SIZE,
                                  capacity=P.ENTRY_CAPACITY, threshold=P.DEFAULT_THRESHOLD))
    bus.write(P.CTRL_REGISTER, 4, AREA >> 12)
    masks = mem.read(AREA + P.OFF_DOORBELL_MASKS, P.SHADOW_SLOTS)
    w13, w0 = word(mem, A + 13), word(mem, A)
    assert P.split_class_word(w13)[1] == PortClass.DOORBELL_IF and masks[w13 >> P.CLS_SLOT_SHIFT] == 0
    # posted on a device with a FIFO port: DOORBELL_IF with mask 0 (slow path, FIFO.kill), never a doorbell
    assert P.split_class_word(w0)[1] == PortClass.DOORBELL_IF and not P.is_doorbell(w0, 0xFF, masks)
