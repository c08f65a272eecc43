"""A Python reference model of the batching runtime (what batch.c does, op by op) and a small device set to test it.

`RefRuntime` implements the guest side of docs/protocol.md on a GuestMemory, against the same monitor handler
(PvBatch), so the C runtime can be compared with it exit for exit.  `immediate()` is the oracle: every access
executed at once on the devices.  `LabDevice` exercises every port class with an observable trace.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from pvgen import protocol as P
from pvgen.devices.bus import PortBus
from pvgen.devices.pvbatch import PvBatch
from pvgen.protocol import Op, PortClass

_FIFO = struct.Struct("<HBBIII")


def mask(size: int, v: int) -> int:
    return v & ((1 << (8 * size)) - 1)


# --- a device with one register of each class, recording what it sees -------------------------------------------

BLOCK = 8   # FIFO transfer block: fifo_read never hands values past its end
_PURE = (5, 13, 14)   # lab registers whose reads have no side effect (not traced)


@dataclass
class Trace:
    events: list[tuple[str, int, int, int]] = field(default_factory=list)   # (r|w, port, size, value)


@dataclass
class LabDevice:
    """offset 0-3 posted regs; 4 doorbell (also sets bits of reg 14); 5 shadow (pure: regs 0-10 and the doorbell
    count); 6 shadow (read clears); 8 FIFO; 9 shadow (regs 0-3 and the doorbell count; a read acknowledges: counts
    in `acks`, which only the strict reg 10 shows, so its effect is neutral for the shadows); 10 strict (reads reg
    10 plus acks); 12 posted data port (for outs); 11 doorbell when bit 7 is
    set (DOORBELL_IF), else posted, neutral while bit 6 is clear and no doorbell is pending; 13 shadow (pure), a
    write sets it (neutral: SET_VALUE); 14 shadow (pure), a write clears the written low 4 bits (neutral:
    CLEAR_BITS); others strict.  Every write and every effectful read lands in the trace."""

    base: int
    trace: Trace
    name: str = "lab"
    regs: list[int] = field(default_factory=lambda: [0] * 16)
    rung: int = 0
    pending: int = 0
    stream: int = 0
    acks: int = 0

    def port_classes(self) -> dict[int, tuple[PortClass, PortClass]]:
        S, Po, D, Sh, F = PortClass.STRICT, PortClass.POSTED, PortClass.DOORBELL, PortClass.SHADOW, PortClass.FIFO
        return {0: (S, Po), 1: (S, Po), 2: (S, Po), 3: (S, Po), 4: (S, D), 5: (Sh, S), 6: (Sh, S), 8: (F, S),
                9: (Sh, S), 12: (S, Po), 11: (S, PortClass.DOORBELL_IF), 13: (Sh, PortClass.DOORBELL_IF),
                14: (Sh, PortClass.DOORBELL_IF)}

    def doorbell_masks(self) -> dict[int, int]:
        return {11: 0x80}

    def write_rules(self) -> dict[int, P.WriteRule]:
        N = P.Neutral
        return {11: P.WriteRule(N.KEEP, cond_offset=6, cond_mask=1, cond_want=0, value_mask=0x40, value_want=0),
                13: P.WriteRule(N.SET_VALUE), 14: P.WriteRule(N.CLEAR_BITS, operand=0x0F)}

    def _status(self, off: int) -> int:
        if off == 5:
            return (sum(self.regs[:11]) * 7 + self.rung) & 0xFFFFFFFF
        if off == 6:
            return self.pending
        if off == 9:
            return (self.regs[0] ^ self.regs[1] << 3 ^ self.regs[2] << 7 ^ self.regs[3] << 11) + self.rung
        if off == 10:
            return self.regs[10] + self.acks
        return self.regs[off]

    def _next(self) -> int:
        v = (self.stream * 2654435761 + 12345) & 0xFFFFFFFF
        self.stream += 1
        return v

    def io_read(self, off: int, size: int) -> int:
        if off == 8:
            v = mask(size, self._next())
        else:
            v = mask(size, self._status(off))
            if off == 6:
                self.pending = 0
            elif off == 9:
                self.acks += 1
        if off not in _PURE:
            self.trace.events.append(("r", self.base + off, size, v))
        return v

    def io_write(self, off: int, size: int, value: int) -> None:
        self.trace.events.append(("w", self.base + off, size, value))
        if off == 14:
            self.regs[14] &= ~(value & 0x0F)
        else:
            self.regs[off] = value
        if off == 4:
            self.regs[14] |= value & 0xFF
        if off == 4 or off == 11 and value & 0x80:
            self.rung += 1
            self.pending += 1

    def shadow_read(self, off: int, size: int) -> int:
        return mask(size, self._status(off))

    def read_side_effects(self, off: int) -> bool:
        return off not in _PURE

    def neutral_read_effects(self) -> frozenset[int]:
        """Reads whose side effect changes no shadowed register: reg 9's acknowledge shows only in strict reg 10."""
        return frozenset({9})

    def fifo_read(self, off: int, size: int, max_count: int) -> list[int]:
        """The rest of the current block; at a block boundary no block is in progress (a plain read starts one)."""
        n = min(max_count, -self.stream % BLOCK)
        return [self.io_read(off, size) for _ in range(n)]


def lab_bus(trace: Trace, base: int = 0x100) -> tuple[PortBus, LabDevice]:
    bus = PortBus()
    dev = LabDevice(base, trace)
    bus.register(base, 16, dev)
    return bus, dev


# --- the reference runtime ----------------------------------------------------------------------------------------

class RefRuntime:
    """The guest side of the protocol in Python, mirroring batch.c; `exits` counts flush exits."""

    def __init__(self, mem, gpa: int, monitor: PvBatch, strict_read, strict_write):
        self.mem, self.gpa, self.mon = mem, gpa, monitor
        self.sread, self.swrite = strict_read, strict_write
        self.active, self.exits = False, 0

    def _h(self, name: str) -> int:
        off, size = P.HEADER.field(name)
        return int.from_bytes(self.mem.read(self.gpa + off, size), "little")

    def _hset(self, name: str, v: int) -> None:
        off, size = P.HEADER.field(name)
        self.mem.write(self.gpa + off, mask(size, v).to_bytes(size, "little"))

    def init(self) -> int:
        if self.sread(P.CTRL_REGISTER, 4) != P.MAGIC:
            return -2
        self.mem.write(self.gpa, P.HEADER.pack(magic=P.MAGIC, version=P.VERSION, area_size=P.AREA_SIZE,
                                               capacity=P.ENTRY_CAPACITY, threshold=P.DEFAULT_THRESHOLD))
        self.mem.write(self.gpa + P.OFF_FIFO, bytes(P.FIFO.size))
        self.mon.io_write(P.CTRL_REGISTER - P.CTRL_BASE, 4, self.gpa >> 12)
        self.active = self._h("state") == P.State.ACTIVE
        return 0 if self.active else -3

    def _word(self, port: int) -> int:
        return int.from_bytes(self.mem.read(self.gpa + P.OFF_CLASSES + 2 * port, 2), "little")

    def _flush(self) -> None:
        self.exits += 1
        self._hset("flushes", (self._h("flushes") + 1) & 0xFFFFFFFF)
        self.mon.io_write(P.CTRL_FLUSH - P.CTRL_BASE, 4, self._h("slot"))
        self._hset("count", 0)
        self._hset("neutral", 0)
        self._hset("staged", 0)
        self._hset("shadow_since_tick", 0)

    def _push(self, port: int, size: int, op: Op, value: int = 0, gpa: int = 0) -> int:
        n = self._h("count")
        self.mem.write(self.gpa + P.OFF_ENTRIES + n * P.ENTRY.size,
                       P.Entry(op, port, size, value, gpa).encode())
        self._hset("count", n + 1)
        return n

    def _push_done(self) -> None:
        if self._h("count") >= self._h("threshold"):
            self._flush()

    def _in_exit(self, port: int, size: int) -> int:
        n = self._push(port, size, Op.IN)
        self._flush()
        off = self.gpa + P.OFF_ENTRIES + n * P.ENTRY.size + 4
        return mask(size, int.from_bytes(self.mem.read(off, 4), "little"))

    def _flush_pending(self) -> None:
        if self._h("count"):
            self._flush()

    def inp(self, port: int, size: int) -> int:
        if not self.active:
            return self.sread(port, size)
        rc, _, owned, effect, slot = P.split_class_word(self._word(port))
        if rc == PortClass.FIFO:
            fport, fsize, _, count, head, _ = _FIFO.unpack(self.mem.read(self.gpa + P.OFF_FIFO, P.FIFO.size))
            if fport == port and fsize == size and head < count:
                v = int.from_bytes(self.mem.read(self.gpa + P.OFF_FIFO_VALUES + 4 * head, 4), "little")
                self.mem.write(self.gpa + P.OFF_FIFO + 8, (head + 1).to_bytes(4, "little"))
                return mask(size, v)
            return self._in_exit(port, size)
        if rc == PortClass.SHADOW:
            raw = self.mem.read(self.gpa + P.OFF_SHADOWS + slot * P.SHADOW.size, P.SHADOW.size)
            s = P.SHADOW.unpack(raw)
            i = size >> 1
            if self._h("count") == self._h("neutral") and not self._h("stale") and s["valid"] & (1 << i):
                self._hset("shadow_since_tick", self._h("shadow_since_tick") + 1)
                if effect:
                    self._push(port, size, Op.IN_DISCARD)
                    bitmap = self.mem.read(self.gpa + P.OFF_READ_NEUTRAL, P.READ_NEUTRAL_SIZE)
                    if P.is_read_neutral(bitmap, slot):     # its effect changes no shadowed value
                        self._hset("neutral", self._h("neutral") + 1)
                    self._push_done()
                return mask(size, s["val"][i])  # type: ignore[index]
            return self._in_exit(port, size)
        if owned:
            return self._in_exit(port, size)
        self._flush_pending()
        return self.sread(port, size)

    def out(self, port: int, size: int, value: int) -> None:
        value = mask(size, value)
        if not self.active:
            return self.swrite(port, size, value)
        word = self._word(port)
        _, wc, owned, _, slot = P.split_class_word(word)
        masks = self.mem.read(self.gpa + P.OFF_DOORBELL_MASKS, P.SHADOW_SLOTS)
        if owned and self._fifo_owed(port):      # batch.c pvio_fifo_owed: the monitor decides about the values
            self._push(port, size, Op.OUT, value)
            self._flush()
        elif wc == PortClass.POSTED:
            self._push(port, size, Op.OUT, value)
            self._push_done()
        elif wc == PortClass.DOORBELL_IF and not P.is_doorbell(word, value, masks):
            n = self._neutral(slot, size, value)
            self._push(port, size, Op.OUT, value)
            self._hset("neutral", self._h("neutral") + n)
            self._push_done()
        elif wc in (PortClass.DOORBELL, PortClass.DOORBELL_IF) or owned:
            self._push(port, size, Op.OUT, value)
            self._flush()
        else:
            self._flush_pending()
            self.swrite(port, size, value)

    def _fifo_owed(self, port: int) -> bool:
        fport, _, _, count, head, kill = _FIFO.unpack(self.mem.read(self.gpa + P.OFF_FIFO, P.FIFO.size))
        return head < count and port != fport and (port - (kill & 0xFFFF)) & 0xFFFF < kill >> 16

    def _shadow(self, slot: int) -> tuple[int, int]:
        """(valid, byte value) of a shadow slot."""
        valid, _, val0 = struct.unpack_from("<BBI", self.mem.read(self.gpa + P.OFF_SHADOWS + slot * P.SHADOW.size + 2,
                                                                  6))
        return valid, val0

    def _bank_switch(self, slot: int, r: dict, cur: int, value: int) -> bool:
        """batch.c pvio_bank_switch: save the live banked slots into the current bank, load the selected one."""
        n, bm = r["banked"], r["operand"]
        if not bm or not n or P.bank_slot(slot, n, P.bank_count(bm), 0) > P.SHADOW_SLOTS:
            return False
        frm, to = P.bank_of(bm, cur), P.bank_of(bm, value)
        if frm == to:
            return True
        rec = P.SHADOW.size
        base = self.gpa + P.OFF_SHADOWS
        for i in range(n):
            live = base + (slot + 1 + i) * rec
            self.mem.write(base + P.bank_slot(slot, n, frm, i) * rec, self.mem.read(live, rec))
            self.mem.write(live, self.mem.read(base + P.bank_slot(slot, n, to, i) * rec, rec))
        return True

    def _neutral(self, slot: int, size: int, value: int) -> int:
        """batch.c pvio_neutral: 1 and the own shadow updated when the write is neutral."""
        r = P.WRITE_RULE.unpack(self.mem.read(self.gpa + P.OFF_WRITE_RULES + slot * P.WRITE_RULE.size,
                                              P.WRITE_RULE.size))
        if (r["op"] == P.Neutral.NONE or size != 1 or self._h("count") != self._h("neutral") or self._h("stale")
                or (value & r["value_mask"]) != r["value_want"]):
            return 0
        if r["cond_mask"]:
            valid, c = self._shadow(r["cond_slot"])
            if not valid & 1 or (c & r["cond_mask"]) != r["cond_want"]:
                return 0
        if r["op"] == P.Neutral.KEEP:
            return 1
        valid, v = self._shadow(slot)
        if not valid & 1 or r["op"] not in (P.Neutral.SET, P.Neutral.SET_VALUE, P.Neutral.CLEAR_BITS,
                                             P.Neutral.BANK):
            return 0
        if r["op"] == P.Neutral.BANK and not self._bank_switch(slot, r, v & 0xFF, value):
            return 0
        v = P.neutral_shadow(r["op"], r["operand"], v & 0xFF, value, r["value_mask"])
        self.mem.write(self.gpa + P.OFF_SHADOWS + slot * P.SHADOW.size + 2, bytes([1]))
        self.mem.write(self.gpa + P.OFF_SHADOWS + slot * P.SHADOW.size + 4, v.to_bytes(4, "little"))
        return 1

    def string(self, op: Op, port: int, size: int, gpa: int, count: int) -> None:
        """OUTS/INS of count elements at gpa (guest RAM is contiguous here)."""
        if count == 0:
            return
        if not self.active:
            return self._strict_string(op, port, size, gpa, count)
        rc, _, owned, _, _ = P.split_class_word(self._word(port))
        if op == Op.INS and rc == PortClass.FIFO:
            while count and self.inp_fifo_hit(port, size):
                v = self.inp(port, size)
                self.mem.write(gpa, v.to_bytes(size, "little"))
                gpa, count = gpa + size, count - 1
        if count == 0:
            return
        if not owned:
            self._flush_pending()
            return self._strict_string(op, port, size, gpa, count)
        staged, n = self._h("staged"), count * size
        if op == Op.OUTS and n <= P.STAGING_SIZE - staged:     # batch.c pvio_stage
            self.mem.write(self.gpa + P.OFF_STAGING + staged, self.mem.read(gpa, n))
            self._push(port, size, op, count, self.gpa + P.OFF_STAGING + staged)
            self._hset("staged", min(staged + ((n + 7) & ~7), P.STAGING_SIZE))
            self._push_done()
            if self._fifo_owed(port):
                self._flush()
            return
        while count:
            n = min(count, P.MAX_STRING_BYTES // size)
            self._push(port, size, op, n, gpa)
            self._push_done()
            gpa, count = gpa + n * size, count - n
        self._flush_pending()

    def inp_fifo_hit(self, port: int, size: int) -> bool:
        fport, fsize, _, count, head, _ = _FIFO.unpack(self.mem.read(self.gpa + P.OFF_FIFO, P.FIFO.size))
        return fport == port and fsize == size and head < count

    def _strict_string(self, op: Op, port: int, size: int, gpa: int, count: int) -> None:
        for k in range(count):
            if op == Op.OUTS:
                self.swrite(port, size, int.from_bytes(self.mem.read(gpa + k * size, size), "little"))
            else:
                self.mem.write(gpa + k * size, self.sread(port, size).to_bytes(size, "little"))

    def tick(self) -> None:
        """batch.c pvio_tick: flush only what waited a whole tick period (no flush since the previous tick)."""
        if not self.active:
            return
        if self._h("flushes") == self._h("tick_flushes") and (self._h("count") or self._h("shadow_since_tick")):
            self._flush()
        self._hset("tick_flushes", self._h("flushes"))

    def hlt(self) -> None:
        if self.active:
            self._flush_pending()

    def flush(self) -> None:
        if self.active:
            self._flush_pending()

    def set_threshold(self, n: int) -> int:
        n = max(1, min(P.ENTRY_CAPACITY, n))
        if self.active:
            self._hset("threshold", n)
            if self._h("count") >= n:
                self._flush()
        return n
