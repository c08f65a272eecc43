"""The pvgen batch protocol: the single source of truth shared by the guest runtime and the monitor.

Everything the guest runtime (C) and the monitor (Python) agree on is declared here once: the port classes, the
control ports, the layout of the per-vCPU batch area (header, FIFO, entries, shadows, class table), the entry
opcodes and the error codes.  `c_header()` generates src/pvgen/runtime/pvio_protocol.h from these declarations;
`encode_*`/`decode_*` are the monitor's view.  docs/protocol.md explains the protocol with a diagram.
"""

from __future__ import annotations

import enum
import functools
import struct
from dataclasses import dataclass
from typing import NamedTuple

from pvgen.errors import ProtocolError


class PortClass(enum.IntEnum):
    """How the guest runtime may treat one direction (read or write) of one port (DESIGN.md, batch protocol)."""

    STRICT = 0    # flush the queue, then execute the real instruction (every unknown port)
    POSTED = 1    # write: may wait in the queue
    DOORBELL = 2  # write: queued, then the whole queue is flushed in one exit
    SHADOW = 3    # read: served from the shadow area that the monitor keeps current
    FIFO = 4      # read: served from the input queue; an empty queue is refilled in one exit
    ENGINE = 5    # read: served by the transfer engine active on this data port (protocol v5), else as FIFO
    DOORBELL_IF = 6  # write: DOORBELL when the value has a bit of doorbell_masks[slot] set, else POSTED (and
    #                  neutral when write_rules[slot] says so); always the runtime's C slow path


MAGIC = 0x4F495650          # "PVIO" little-endian: in the area header, and what a monitor returns on the probe port
VERSION = 5                 # 2: DOORBELL_IF (doorbell masks, neutral-write rules); 3: bank-select rules (BANK);
#                             4: interrupt notification in the area (irq_lines, irq_notify) and neutral read
#                                effects (the read_neutral bitmap); 5: in-guest device models (latches, command
#                                rules, transfer engines, interrupt rules, index/data files) and the audit log

# Control ports (owned by the monitor's pvbatch device, 0x0F00..+0x8; unassigned on the PC/AT map).
CTRL_BASE = 0x0F00
CTRL_LEN = 8
CTRL_REGISTER = CTRL_BASE + 0   # inl: MAGIC when a monitor is present; outl: page frame number (GPA >> 12) of the area
CTRL_FLUSH = CTRL_BASE + 4      # outl: the area's slot number (header.slot): process the batch (one exit)

PAGE_SIZE = 4096


class Op(enum.IntEnum):
    """Entry opcodes (entry.op)."""

    OUT = 1         # write entry.value to port
    IN = 2          # read port; the monitor writes the value back into entry.value (always the last entry of a batch)
    IN_DISCARD = 3  # read port and discard the value: replays the side effect of a read served from a shadow
    OUTS = 4        # write entry.value elements from guest memory at entry.gpa (ascending)
    INS = 5         # read entry.value elements into guest memory at entry.gpa (ascending)
    SERVED_IN = 6   # replay of entry.value reads that a transfer engine served in the guest (gpa: served_gpa()); the
    #                 monitor checks that the device's transfer is where the guest says, reads, and compares
    SERVED_OUT = 7  # replay of entry.value writes that a transfer engine took in the guest; the data is in the area
    #                 at the offset in gpa (served_gpa())
    IRQ_MARK = 8    # the guest raised interrupt line entry.value itself (an interrupt rule): the device's rising
    #                 edge of that line in this batch was already delivered (no device access)


class Neutral(enum.IntEnum):
    """write_rules[slot].op: how a neutral write changes its own port's byte shadow (every other shadow stays)."""

    NONE = 0        # never neutral
    KEEP = 1        # unchanged
    SET = 2         # becomes `operand`
    SET_VALUE = 3   # becomes the written value
    CLEAR_BITS = 4  # loses the written bits that are in `operand` (write 1 to clear)
    BANK = 5        # bank select: takes the value's bits under value_mask | operand (the others stay); the value's
    #                 `operand` bits select which bank of the `banked` slots after this one is live (bank_slot)


class Status(enum.IntEnum):
    """header.status after a flush, written by the monitor (0: the batch was replayed)."""

    OK = 0
    BAD_HEADER = 1    # magic, version, slot, sizes or state wrong
    BAD_COUNT = 2     # count above capacity
    BAD_ENTRY = 3     # unknown op, bad size, port not owned by a device
    BAD_ADDRESS = 4   # a string entry outside guest RAM or too long


class State(enum.IntEnum):
    """header.state: written by the guest as INACTIVE, set ACTIVE by the monitor after validating registration."""

    INACTIVE = 0
    ACTIVE = 1


# Class-table word (u16 per port): bits 0-2 read class, 3-5 write class, flags, bits 8-15 the port's slot: the index
# of its shadow (a SHADOW read) and of its doorbell mask (a DOORBELL_IF write).
CLS_READ_SHIFT = 0
CLS_WRITE_SHIFT = 3
CLS_CLASS_MASK = 7
CLS_READ_EFFECT = 1 << 6   # the read has side effects: a shadow hit also queues an IN_DISCARD entry (neutral when
#                            the slot's read_neutral bit is set)
CLS_OWNED = 1 << 7         # a device owns the port: a strict access may travel as a batch entry (one exit)
CLS_SLOT_SHIFT = 8

ENTRY_CAPACITY = 240        # entries in the queue (the header, FIFO control and entries fill the first page)
DEFAULT_THRESHOLD = 240     # flush when this many entries are queued (guest-settable, 1..capacity); v5: the whole
#                             queue (v4: 64): a modelled receive burst queues ~20 neutral entries per frame
FIFO_CAPACITY = 1024        # u32 values in the FIFO area
SHADOW_SLOTS = 256          # shadow registers and doorbell masks (slot index is 8 bits in the class word)
MAX_STRING_BYTES = 1 << 20  # one OUTS/INS entry moves at most this many bytes
SIZES = (1, 2, 4)


@dataclass(frozen=True)
class Field:
    name: str
    ctype: str          # u8 u16 u32 u64
    count: int = 1
    doc: str = ""


_CODES = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q"}
_SIZES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8}


@dataclass(frozen=True)
class Layout:
    """A C struct declared once: a packed little-endian struct.Struct and generated C with offset asserts."""

    cname: str
    doc: str
    fields: tuple[Field, ...]

    @functools.cached_property
    def fmt(self) -> struct.Struct:
        return struct.Struct("<" + "".join(f"{f.count}{_CODES[f.ctype]}" for f in self.fields))

    @functools.cached_property
    def size(self) -> int:
        return self.fmt.size

    def offsets(self) -> dict[str, int]:
        return dict(self._offsets)

    @functools.cached_property
    def _offsets(self) -> dict[str, int]:
        out, off = {}, 0
        for f in self.fields:
            if off % _SIZES[f.ctype]:
                raise ValueError(f"{self.cname}.{f.name} at {off} is not naturally aligned")
            out[f.name] = off
            off += _SIZES[f.ctype] * f.count
        return out

    def field(self, name: str) -> tuple[int, int]:
        """(offset, size in bytes) of one field."""
        f = next((f for f in self.fields if f.name == name), None)
        if f is None:
            raise KeyError(f"{self.cname} has no field {name}")
        return self._offsets[name], _SIZES[f.ctype] * f.count

    def unpack(self, data: bytes, offset: int = 0) -> dict[str, int | tuple[int, ...]]:
        vals = list(self.fmt.unpack_from(data, offset))
        out: dict[str, int | tuple[int, ...]] = {}
        for f in self.fields:
            if f.count == 1:
                out[f.name] = vals.pop(0)
            else:
                out[f.name], vals = tuple(vals[: f.count]), vals[f.count:]
        return out

    def pack(self, **values: int | tuple[int, ...]) -> bytes:
        flat: list[int] = []
        for f in self.fields:
            v = values.get(f.name, 0 if f.count == 1 else (0,) * f.count)
            flat.extend(v if f.count > 1 else [v])  # type: ignore[arg-type]
        return self.fmt.pack(*flat)


HEADER = Layout("pvio_header", "Area header: identification, queue state, statistics.", (
    Field("magic", "u32", doc="MAGIC, written by the guest"),
    Field("version", "u16", doc="VERSION, written by the guest"),
    Field("slot", "u16", doc="area number assigned by the monitor; the value the guest writes to CTRL_FLUSH"),
    Field("state", "u32", doc="State: the monitor sets ACTIVE after validating the registration"),
    Field("area_size", "u32", doc="AREA_SIZE, written by the guest"),
    Field("capacity", "u32", doc="ENTRY_CAPACITY, written by the guest"),
    Field("count", "u32", doc="entries queued; the monitor sets it to 0 after each flush"),
    Field("threshold", "u32", doc="flush when count reaches it (1..capacity)"),
    Field("status", "u32", doc="Status of the last flush, written by the monitor"),
    Field("flushes", "u32", doc="guest statistics: flush exits"),
    Field("shadow_hits", "u32", doc="guest statistics: reads served from the shadow area"),
    Field("fifo_hits", "u32", doc="guest statistics: values served from the FIFO area"),
    Field("strict", "u32", doc="guest statistics: real instructions executed"),
    Field("rejected", "u32", doc="monitor statistics: batches rejected for this area"),
    Field("shadow_since_tick", "u32", doc="shadow reads since the last refresh; a tick with a non-zero value flushes"),
    Field("neutral", "u32", doc="queued entries that are neutral writes; shadows are served while count == neutral"),
    Field("staged", "u32", doc="bytes of the staging buffer used by queued OUTS entries"),
    Field("irq_lines", "u32", doc="written by the guest: interrupt lines (bit n = ISA IRQ n) its environment can take "
          "as notifications in irq_notify; 0: none"),
    Field("irq_notify", "u32", doc="written by the monitor at the end of a flush: lines of irq_lines raised (or still "
          "high) during it, not asserted on the interrupt controller; the guest takes and clears them"),
    Field("audit", "u32", doc="written by the guest: 1 when it logs every value it serves in the audit region"),
    Field("served", "u32", doc="guest statistics: accesses served by in-guest models (engines, index files)"),
    Field("models", "u32", doc="written by the monitor: bit 0 latches/rules/engines/interrupt rules published, "
          "bit 1 an index file published"),
    Field("irq_raised", "u32", doc="guest statistics: interrupts raised in the guest by an interrupt rule"),
    Field("xstaged", "u32", doc="bytes of the xstaging buffer used by queued SERVED_OUT entries"),
    Field("stale", "u32", doc="written by the monitor: a device changed while entries were queued, so the shadows "
          "and models are not the device's state after the queue; nothing is served until the next flush"),
    Field("tick_flushes", "u32", doc="guest: header.flushes at the last timer tick; a tick flushes only work that "
          "waited a whole tick period (no flush since the previous tick)"),
))

FIFO = Layout("pvio_fifo", "Input FIFO control: values[head..count) are the next reads of `port` with `size`.", (
    Field("port", "u16"),
    Field("size", "u8"),
    Field("reserved0", "u8"),
    Field("count", "u32", doc="values present (written by the monitor)"),
    Field("head", "u32", doc="values consumed (advanced by the guest, reset to 0 by a refill)"),
    Field("kill", "u32", doc="ports first | count << 16 (the FIFO's device): while values are owed, a write to one "
          "of them (but port) flushes at once, so the monitor can drop values of a transfer it abandoned (v5)"),
))

ENTRY = Layout("pvio_entry", "One queued access.", (
    Field("port", "u16"),
    Field("size", "u8", doc="1, 2 or 4"),
    Field("op", "u8", doc="Op"),
    Field("value", "u32", doc="OUT: value; IN: result (written back); OUTS/INS: element count"),
    Field("gpa", "u64", doc="OUTS/INS: guest-physical address of the first element"),
))

SHADOW = Layout("pvio_shadow", "One shadow register: its value for each access size.", (
    Field("port", "u16"),
    Field("valid", "u8", doc="bit i set: val[i] holds the value of a read of size 1 << i"),
    Field("reserved", "u8"),
    Field("val", "u32", 3),
))

WRITE_RULE = Layout("pvio_wrule", "A neutral-write rule, by slot (docs/protocol.md, neutral writes).", (
    Field("op", "u8", doc="Neutral"),
    Field("operand", "u8"),
    Field("cond_slot", "u8", doc="the shadow the condition reads (byte value)"),
    Field("cond_mask", "u8", doc="0: no condition"),
    Field("cond_want", "u8"),
    Field("value_mask", "u8", doc="the written value must match value_want under value_mask"),
    Field("value_want", "u8"),
    Field("banked", "u8", doc="BANK: the slots after this one whose values depend on the bank"),
))

# --- in-guest device models (protocol v5, docs/protocol.md "In-guest device models") -----------------------------
# A condition (COND_*) is evaluated by the runtime on its shadows and latches: kind, a, b, x, y.
COND_NONE = 0         # always true
COND_SHADOW = 1       # byte shadow of slot a valid and (value & x) == y
COND_LATCH = 2        # latch a valid and (value & x) == y
COND_RANGE = 3        # latches a (low byte) and b (high byte, 0xFF: none) valid and x <= value <= y
NO_REF = 0xFF         # "none" for a slot or latch reference

LATCH_COUNT = 16
COND_COUNT = 4        # conditions of a command rule
EFFECT_COUNT = 4      # shadow effects of a command rule or an engine completion
ENGINE_COUNT = 4
CMD_RULE_COUNT = 16
IRQ_RULE_COUNT = 4
IX_ENTRY_COUNT = 256


class EngineKind(enum.IntEnum):
    NONE = 0
    WINDOW = 1      # armed by the monitor at a flush over data it placed in the engine memory (a DRQ block)
    DMA = 2         # armed by the guest (a command rule) over a mirror of device memory the monitor keeps current


class EngineState(enum.IntEnum):
    IDLE = 0        # not serving: data-port accesses take the queue (and exit)
    READ = 1
    WRITE = 2


LATCH = Layout("pvio_latch", "A write-only register whose last written byte the guest tracks (protocol v5).", (
    Field("port", "u16"),
    Field("valid", "u8", doc="0: unknown until the next flush (a write the runtime could not judge)"),
    Field("value", "u8"),
))

CMD_RULE = Layout("pvio_cmdrule", "A command write the guest models (protocol v5, docs/protocol.md).", (
    Field("port", "u16", doc="0: unused rule"),
    Field("value_mask", "u8"),
    Field("value_want", "u8", doc="the rule applies to a byte write with (value & value_mask) == value_want"),
    Field("own_mask", "u8", doc="the port's own shadow takes the value's bits under own_mask ..."),
    Field("own_and", "u8", doc="... and is then ANDed with own_and"),
    Field("engine", "u8", doc="arm this engine (NO_REF: none) ..."),
    Field("engine_state", "u8", doc="... for EngineState READ or WRITE"),
    Field("cond_kind", "u8", COND_COUNT),
    Field("cond_a", "u8", COND_COUNT),
    Field("cond_b", "u8", COND_COUNT),
    Field("cond_x", "u16", COND_COUNT),
    Field("cond_y", "u16", COND_COUNT),
    Field("eff_slot", "u8", EFFECT_COUNT, doc="shadows[eff_slot].val[0] = (val & eff_and) | eff_or"),
    Field("eff_and", "u8", EFFECT_COUNT),
    Field("eff_or", "u8", EFFECT_COUNT),
    Field("xslot", "u8", 4, doc="a wide condition: the byte shadows xslot[0..3] (NO_REF: 0) as a little-endian "
          "value, ANDed with xmask, within [xmin, xmax]; xmask 0: none"),
    Field("xmask", "u32"),
    Field("xmin", "u32"),
    Field("xmax", "u32"),
    Field("win_count", "u32", doc="arming a WINDOW engine: bytes (times the byte shadow count_slot unless NO_REF)"),
    Field("win_mem", "u32", doc="arming a WINDOW engine: area offset of its memory (0: keep)"),
    Field("count_slot", "u8"),
    Field("latch_set", "u8", doc="a latch this write sets (NO_REF: none) ..."),
    Field("latch_value", "u8", doc="... to this value"),
    Field("flags", "u8", doc="bit 0: the armed engine stages what it takes in xstaging (its memory may be reused)"),
    Field("reserved", "u8", 4),
))

ENGINE = Layout("pvio_engine", "A transfer engine on a data port (protocol v5, docs/protocol.md).", (
    Field("port", "u16", doc="the data port"),
    Field("kind", "u8", doc="EngineKind"),
    Field("state", "u8", doc="EngineState: the monitor publishes it at every flush, the guest changes it"),
    Field("unit", "u8", 4, doc="bytes one access of size 1, 2, 4 moves (index size >> 1); 0: not served"),
    Field("mem_off", "u32", doc="area offset of the engine memory, which holds device address mem_base"),
    Field("mem_base", "u32"),
    Field("mem_len", "u32"),
    Field("addr", "u32", doc="device address of the next byte"),
    Field("count", "u32", doc="bytes left in the transfer"),
    Field("addr_mask", "u32", doc="width of the device's address counter"),
    Field("wrap_at", "u32", doc="an address reaching wrap_at becomes wrap_to (when wrap_to < wrap_at)"),
    Field("wrap_to", "u32"),
    Field("dep_latches", "u32", doc="bit i: a write to latch i while the engine serves stops it"),
    Field("addr_latch", "u8", 2, doc="DMA: latches (low, high) the start address comes from"),
    Field("count_latch", "u8", 2, doc="DMA: latches (low, high) of the byte count; updated as it counts down"),
    Field("wrap_latch", "u8", 2, doc="DMA: latches (to, at) of the wrap bounds, shifted left by wrap_shift"),
    Field("wrap_shift", "u8"),
    Field("flags", "u8", doc="bit 0: count saturates at zero (an access moving more than is left ends it); bit 1: "
          "writes are staged in xstaging (a window a command rule armed: its memory is reused by the next one)"),
    Field("addr_slot", "u8", 2, doc="shadows showing the current address (low, high byte); NO_REF: none"),
    Field("done_slot", "u8", EFFECT_COUNT, doc="completion (count reaches 0): shadows[done_slot].val[0] = "
          "(val & done_and) | done_or"),
    Field("done_and", "u8", EFFECT_COUNT),
    Field("done_or", "u8", EFFECT_COUNT),
    Field("cond_kind", "u8", 2, doc="[0]: must hold for every served access; [1]: for the completing one"),
    Field("cond_a", "u8", 2),
    Field("cond_b", "u8", 2),
    Field("cond_x", "u16", 2),
    Field("cond_y", "u16", 2),
    Field("seq", "u32", doc="WINDOW: the monitor's arm number"),
    Field("cmd_port", "u16", doc="DMA: any write to this port but the command rule arming the engine stops it"),
    Field("reserved", "u8", 42),
))

IRQ_RULE = Layout("pvio_irqrule", "An interrupt line the guest computes (protocol v5, docs/protocol.md).", (
    Field("line", "u8", doc="the line (bit of header.irq_lines)"),
    Field("valid", "u8", doc="0: unused, or not computable until the next flush"),
    Field("level", "u8", doc="the line's level: published by the monitor, updated by the guest"),
    Field("status_slot", "u8", doc="line = (shadow & latch & mask) != 0 ..."),
    Field("mask_latch", "u8"),
    Field("mask", "u8"),
    Field("cond_slot", "u8", doc="... evaluated only while shadow cond_slot matches (else the rule is dropped)"),
    Field("cond_mask", "u8"),
    Field("cond_want", "u8"),
    Field("reserved", "u8", 7),
))

IX_FILE = Layout("pvio_ixfile", "An index/data register file (protocol v5): index port latch, data reads served "
                 "from the entries.", (
    Field("index_port", "u16", doc="0: no index file"),
    Field("data_port", "u16", doc="first data port; reads of data_port + k (k < data_len) serve byte lane k"),
    Field("data_len", "u8"),
    Field("index_size", "u8", doc="the index write's size (a write of another size invalidates the latch)"),
    Field("valid", "u8", doc="the latch holds the index the device has (after the queue)"),
    Field("reserved0", "u8"),
    Field("latch", "u32"),
    Field("key_mask", "u32", doc="an entry's key is latch & key_mask"),
    Field("entries", "u32", doc="entries in use, sorted by key"),
    Field("reserved", "u32", 3),
))

IX_ENTRY = Layout("pvio_ixentry", "One side-effect-free data value of an index file.", (
    Field("key", "u32"),
    Field("value", "u32"),
))

AUDIT = Layout("pvio_audit", "Audit log control (protocol v5): every value served without an exit, when the guest "
               "runs an audit build.", (
    Field("count", "u32", doc="records in use"),
    Field("capacity", "u32"),
    Field("data_used", "u32", doc="bytes of audit data in use"),
    Field("data_cap", "u32"),
    Field("reserved", "u32", 12),
))


class AuditKind(enum.IntEnum):
    SHADOW = 1      # a shadow read with no queued replay: the monitor reads the device at `pos`
    REPLAYED = 2    # a shadow read replayed by the IN_DISCARD entry `pos`: compared with what that read returns
    FIFO = 3        # a FIFO value: `data` is its index in the refill the monitor made
    ENGINE = 4      # engine-served reads: the SERVED_IN entry `pos`; `value` bytes at audit data offset `data`
    INDEX = 5       # an index-file read: the monitor reads the device at `pos`


AUDIT_REC = Layout("pvio_auditrec", "One served value (or run of engine-served bytes).", (
    Field("port", "u16"),
    Field("size", "u8"),
    Field("kind", "u8", doc="AuditKind"),
    Field("value", "u32", doc="the value served (ENGINE: bytes)"),
    Field("pos", "u32", doc="the queue position: entries queued before the read (REPLAYED/ENGINE: its entry)"),
    Field("data", "u32"),
))

# Area layout: offsets from the area's base (page aligned, physically contiguous).
OFF_HEADER = 0x0000
OFF_FIFO = 0x0080
OFF_READ_NEUTRAL = 0x00E0     # bitmap by slot: bit (slot & 7) of byte slot >> 3 (read_neutral_bitmap)
READ_NEUTRAL_SIZE = SHADOW_SLOTS // 8
OFF_ENTRIES = 0x0100
OFF_FIFO_VALUES = 0x1000
OFF_SHADOWS = 0x2000
OFF_DOORBELL_MASKS = 0x3000   # u8 per slot: a DOORBELL_IF write whose value has a bit of the mask set flushes
OFF_WRITE_RULES = 0x3100      # struct pvio_wrule per slot
OFF_STAGING = 0x3900          # OUTS data copied by the guest, so a string write need not flush at once
STAGING_SIZE = 0x700
OFF_CLASSES = 0x4000
OFF_LATCHES = 0x24000
OFF_IRQ_RULES = 0x24040
OFF_IX_FILE = 0x24080
OFF_ENGINES = 0x24100
OFF_CMD_RULES = 0x24300
OFF_IX_ENTRIES = 0x24800        # after the command rules (16 x 80 bytes)
OFF_AUDIT = 0x25000
OFF_AUDIT_RECS = 0x25040
AUDIT_CAPACITY = (0x8000 - 0x40) // 16
OFF_AUDIT_DATA = 0x2D000
AUDIT_DATA_SIZE = 0x10000
OFF_XSTAGING = 0x3D000          # copies of engine-taken writes to mirrored memory (the mirror may change again)
XSTAGING_SIZE = 0x8000
OFF_ENGINE_MEM = 0x45000        # mirrors of device memory and transfer windows, placed by the monitor
ENGINE_MEM_SIZE = 0x10000
AREA_SIZE = OFF_ENGINE_MEM + ENGINE_MEM_SIZE

MODEL_LAYOUTS = (LATCH, CMD_RULE, ENGINE, IRQ_RULE, IX_FILE, IX_ENTRY, AUDIT, AUDIT_REC)

AREA_REGIONS = (  # (name, offset, size) in address order, used by the generator and the docs
    ("header", OFF_HEADER, HEADER.size),
    ("fifo", OFF_FIFO, FIFO.size),
    ("read_neutral", OFF_READ_NEUTRAL, READ_NEUTRAL_SIZE),
    ("entries", OFF_ENTRIES, ENTRY.size * ENTRY_CAPACITY),
    ("fifo_values", OFF_FIFO_VALUES, 4 * FIFO_CAPACITY),
    ("shadows", OFF_SHADOWS, SHADOW.size * SHADOW_SLOTS),
    ("doorbell_masks", OFF_DOORBELL_MASKS, SHADOW_SLOTS),
    ("write_rules", OFF_WRITE_RULES, WRITE_RULE.size * SHADOW_SLOTS),
    ("staging", OFF_STAGING, STAGING_SIZE),
    ("classes", OFF_CLASSES, 2 * 0x10000),
    ("latches", OFF_LATCHES, LATCH.size * LATCH_COUNT),
    ("irq_rules", OFF_IRQ_RULES, IRQ_RULE.size * IRQ_RULE_COUNT),
    ("ix_file", OFF_IX_FILE, IX_FILE.size),
    ("engines", OFF_ENGINES, ENGINE.size * ENGINE_COUNT),
    ("cmd_rules", OFF_CMD_RULES, CMD_RULE.size * CMD_RULE_COUNT),
    ("ix_entries", OFF_IX_ENTRIES, IX_ENTRY.size * IX_ENTRY_COUNT),
    ("audit", OFF_AUDIT, AUDIT.size),
    ("audit_recs", OFF_AUDIT_RECS, AUDIT_REC.size * AUDIT_CAPACITY),
    ("audit_data", OFF_AUDIT_DATA, AUDIT_DATA_SIZE),
    ("xstaging", OFF_XSTAGING, XSTAGING_SIZE),
    ("engine_mem", OFF_ENGINE_MEM, ENGINE_MEM_SIZE),
)


def _check_layout() -> None:
    end = 0
    for name, off, size in AREA_REGIONS:
        if off < end:
            raise ValueError(f"area region {name} at {off:#x} overlaps the previous one ending at {end:#x}")
        end = off + size
    if end != AREA_SIZE or AREA_SIZE % PAGE_SIZE:
        raise ValueError("area size mismatch")
    for lay in (HEADER, FIFO, ENTRY, SHADOW, WRITE_RULE, *MODEL_LAYOUTS):
        lay.offsets()
    if HEADER.size > OFF_FIFO or ENGINE.size != 128 or CMD_RULE.size != 80 or IRQ_RULE.size != 16:
        raise ValueError("model record sizes changed: update the area layout")


_check_layout()


# --- class words -------------------------------------------------------------------------------------------------

def class_word(read: PortClass, write: PortClass, *, owned: bool = False, read_effect: bool = False,
               slot: int = 0) -> int:
    if not 0 <= slot < SHADOW_SLOTS:
        raise ProtocolError(f"shadow slot {slot} out of range 0..{SHADOW_SLOTS - 1}")
    w = (int(read) << CLS_READ_SHIFT) | (int(write) << CLS_WRITE_SHIFT) | (slot << CLS_SLOT_SHIFT)
    return w | (CLS_OWNED if owned else 0) | (CLS_READ_EFFECT if read_effect else 0)


def split_class_word(w: int) -> tuple[PortClass, PortClass, bool, bool, int]:
    """(read class, write class, owned, read has side effects, shadow slot)."""
    return (PortClass((w >> CLS_READ_SHIFT) & CLS_CLASS_MASK), PortClass((w >> CLS_WRITE_SHIFT) & CLS_CLASS_MASK),
            bool(w & CLS_OWNED), bool(w & CLS_READ_EFFECT), w >> CLS_SLOT_SHIFT)


def is_doorbell(word: int, value: int, masks: bytes | bytearray) -> bool:
    """Whether a queued write of value to a port with class word `word` flushes the queue (masks: the
    doorbell_masks region): DOORBELL always, DOORBELL_IF when the value has a bit of the port's mask set."""
    wc = (word >> CLS_WRITE_SHIFT) & CLS_CLASS_MASK
    if wc == PortClass.DOORBELL:
        return True
    return wc == PortClass.DOORBELL_IF and bool(value & masks[word >> CLS_SLOT_SHIFT])


@dataclass(frozen=True)
class WriteRule:
    """A device's declaration that a byte write to one of its ports is neutral: it changes no other shadowed
    register, and its own as `op` says, when the value matches value_want under value_mask and (if cond_mask) the
    byte shadow of the port at cond_offset (same device) matches cond_want under cond_mask.  BANK (a bank select)
    also needs `banked` and the device's bank_shadow_read (docs/protocol.md, bank selects)."""

    op: Neutral
    operand: int = 0
    cond_offset: int = 0
    cond_mask: int = 0
    cond_want: int = 0
    value_mask: int = 0
    value_want: int = 0
    banked: int = 0      # BANK: the ports at own offset + 1 .. + banked are banked (bank_slot)


def bank_of(operand: int, value: int) -> int:
    """BANK: the bank a byte value selects (its bits under `operand`, shifted down)."""
    operand &= 0xFF
    if not operand:
        return 0
    shift = (operand & -operand).bit_length() - 1
    return (value & operand) >> shift


def bank_count(operand: int) -> int:
    """BANK: how many banks the `operand` bits can select."""
    return bank_of(operand, 0xFF) + 1


def bank_slot(own: int, banked: int, bank: int, i: int) -> int:
    """BANK: the slot holding bank `bank`'s value of live slot own + 1 + i (0 <= i < banked): the banks follow
    the live slots, bank after bank."""
    return own + 1 + banked + bank * banked + i


def neutral_shadow(op: int, operand: int, shadow: int, value: int, value_mask: int = 0) -> int:
    """The new byte shadow of the written port after a neutral write (op: Neutral)."""
    if op == Neutral.BANK:
        keep = ~(value_mask | operand) & 0xFF
        return (value & ~keep | shadow & keep) & 0xFF
    if op == Neutral.SET:
        return operand & 0xFF
    if op == Neutral.SET_VALUE:
        return value & 0xFF
    if op == Neutral.CLEAR_BITS:
        return shadow & ~(value & operand) & 0xFF
    return shadow


SERVED_OFF_BITS = 24         # a SERVED_* entry's gpa: area offset of its data (SERVED_OUT) in bits 0-23,
SERVED_ADDR_SHIFT = 24       # the device address of its first byte in bits 24-55,
SERVED_ENGINE_SHIFT = 56     # and the engine's index in bits 56-63


def served_gpa(engine: int, addr: int, offset: int = 0) -> int:
    """The gpa field of a SERVED_IN/SERVED_OUT entry."""
    return (engine & 0xFF) << SERVED_ENGINE_SHIFT | (addr & 0xFFFFFFFF) << SERVED_ADDR_SHIFT | (
        offset & ((1 << SERVED_OFF_BITS) - 1))


def split_served_gpa(gpa: int) -> tuple[int, int, int]:
    """(engine index, device address, area offset) of a SERVED_* entry's gpa."""
    return (gpa >> SERVED_ENGINE_SHIFT & 0xFF, gpa >> SERVED_ADDR_SHIFT & 0xFFFFFFFF,
            gpa & ((1 << SERVED_OFF_BITS) - 1))


def read_neutral_bitmap(slots) -> bytes:
    """The read_neutral region: the slots of SHADOW reads whose side effect is neutral for the shadows (it changes
    no shadowed register's readback), so the runtime counts their IN_DISCARD entries in header.neutral."""
    out = bytearray(READ_NEUTRAL_SIZE)
    for slot in slots:
        if not 0 <= slot < SHADOW_SLOTS:
            raise ProtocolError(f"shadow slot {slot} out of range 0..{SHADOW_SLOTS - 1}")
        out[slot >> 3] |= 1 << (slot & 7)
    return bytes(out)


def is_read_neutral(bitmap: bytes | bytearray, slot: int) -> bool:
    """Whether the read_neutral bitmap marks `slot` (batch.c pvio_in does the same test)."""
    return bool(bitmap[slot >> 3] >> (slot & 7) & 1)


def encode_class_table(words: dict[int, int]) -> bytes:
    """The 64 Ki-entry class table (u16 per port); ports not listed are 0 (STRICT both ways, not owned)."""
    table = [0] * 0x10000
    for port, w in words.items():
        table[port] = w
    return struct.pack("<65536H", *table)


# --- entries -----------------------------------------------------------------------------------------------------

class Entry(NamedTuple):
    """A decoded, validated batch entry (a NamedTuple: the monitor builds one per queued access)."""

    op: Op
    port: int
    size: int
    value: int = 0     # OUT: value; OUTS/INS: count
    gpa: int = 0

    def encode(self) -> bytes:
        return ENTRY.fmt.pack(self.port, self.size, int(self.op), self.value, self.gpa)


class BatchRejected(ProtocolError):
    """A batch or registration the monitor refuses; `status` is what it writes to header.status."""

    def __init__(self, status: Status, message: str):
        self.status = status
        super().__init__(message)


_STRING_OPS = (Op.OUTS, Op.INS)
_OPS = {int(o): o for o in Op}


def check_entry(index: int, port: int, size: int, op: int, value: int, gpa: int, ram_size: int) -> Entry:
    """Validate one entry's fields (in ENTRY order: port, size, op, value, gpa), everything but port ownership."""
    where = f"entry {index}"
    o = _OPS.get(op)
    if o is None:
        raise BatchRejected(Status.BAD_ENTRY, f"{where}: unknown op {op}")
    if size != 1 and size != 2 and size != 4:
        raise BatchRejected(Status.BAD_ENTRY, f"{where}: size {size}, expected 1, 2 or 4")
    if port + size > 0x10000:
        raise BatchRejected(Status.BAD_ENTRY, f"{where}: port {port:#x} of size {size} runs past 0xffff")
    if o is Op.OUT:
        if value >> (8 * size):
            raise BatchRejected(Status.BAD_ENTRY, f"{where}: value {value:#x} wider than {size} bytes")
        return Entry(o, port, size, value)
    if o in _STRING_OPS:
        nbytes = value * size
        if value == 0 or nbytes > MAX_STRING_BYTES:
            raise BatchRejected(Status.BAD_ADDRESS,
                                f"{where}: string of {value} elements of {size} bytes (1..{MAX_STRING_BYTES} bytes)")
        if gpa + nbytes > ram_size:
            raise BatchRejected(Status.BAD_ADDRESS,
                                f"{where}: string at GPA {gpa:#x}+{nbytes:#x} outside guest RAM ({ram_size:#x})")
        return Entry(o, port, size, value, gpa)
    return Entry(o, port, size, value)


def decode_entry(raw: bytes, index: int, ram_size: int) -> Entry:
    """Decode and validate one entry (everything but port ownership, which needs the bus)."""
    return check_entry(index, *ENTRY.fmt.unpack(raw), ram_size)


def decode_entries(raw: bytes, ram_size: int) -> list[Entry]:
    """Decode and validate len(raw) // ENTRY.size entries."""
    return [check_entry(i, *f, ram_size) for i, f in enumerate(ENTRY.fmt.iter_unpack(raw))]


def decode_header(raw: bytes) -> dict[str, int]:
    if len(raw) < HEADER.size:
        raise BatchRejected(Status.BAD_HEADER, f"area header is {len(raw)} bytes, expected {HEADER.size}")
    return HEADER.unpack(raw)  # type: ignore[return-value]


def check_header(h: dict[str, int], *, slot: int | None = None, active: bool = True) -> None:
    """Validate an area header; raises ProtocolError naming the first bad field."""
    if h["magic"] != MAGIC:
        raise BatchRejected(Status.BAD_HEADER, f"area magic {h['magic']:#x}, expected {MAGIC:#x}")
    if h["version"] != VERSION:
        raise BatchRejected(Status.BAD_HEADER, f"area version {h['version']}, expected {VERSION}")
    if h["area_size"] != AREA_SIZE:
        raise BatchRejected(Status.BAD_HEADER, f"area size {h['area_size']:#x}, expected {AREA_SIZE:#x}")
    if h["capacity"] != ENTRY_CAPACITY:
        raise BatchRejected(Status.BAD_HEADER, f"area capacity {h['capacity']}, expected {ENTRY_CAPACITY}")
    if slot is not None and h["slot"] != slot:
        raise BatchRejected(Status.BAD_HEADER, f"area slot {h['slot']}, expected {slot}")
    if active and h["state"] != State.ACTIVE:
        raise BatchRejected(Status.BAD_HEADER, f"area state {h['state']}, expected ACTIVE")
    if h["count"] > h["capacity"]:
        raise BatchRejected(Status.BAD_COUNT, f"entry count {h['count']} above capacity {h['capacity']}")


# --- C header generation -----------------------------------------------------------------------------------------

_CTYPES = {"u8": "pvio_u8", "u16": "pvio_u16", "u32": "pvio_u32", "u64": "pvio_u64"}


def _c_struct(lay: Layout) -> list[str]:
    out = [f"/* {lay.doc} */", f"struct {lay.cname} {{"]
    for f in lay.fields:
        arr = f"[{f.count}]" if f.count > 1 else ""
        doc = f" /* {f.doc} */" if f.doc else ""
        out.append(f"\t{_CTYPES[f.ctype]} {f.name}{arr};{doc}")
    out.append("};")
    offs = lay.offsets()
    out.append(f"_Static_assert(sizeof(struct {lay.cname}) == {lay.size}, \"{lay.cname} size\");")
    for f in lay.fields:
        out.append(f"_Static_assert(__builtin_offsetof(struct {lay.cname}, {f.name}) == {offs[f.name]}, "
                   f"\"{lay.cname}.{f.name}\");")
    return out + [""]


def c_header() -> str:
    """The text of src/pvgen/runtime/pvio_protocol.h (checked in; tests compare it with this)."""
    L = ["/* pvio_protocol.h - the pvgen batch protocol for the guest runtime. GENERATED from src/pvgen/protocol.py",
         " * by `pvgen runtime header`: do not edit. See docs/protocol.md. */",
         "#ifndef PVGEN_PVIO_PROTOCOL_H", "#define PVGEN_PVIO_PROTOCOL_H", "",
         "typedef unsigned char pvio_u8;", "typedef unsigned short pvio_u16;", "typedef unsigned int pvio_u32;",
         "typedef unsigned long long pvio_u64;", ""]

    def d(name: str, value: int, doc: str = "") -> None:
        L.append(f"#define {name} {value:#x}u" + (f"  /* {doc} */" if doc else ""))

    d("PVIO_MAGIC", MAGIC, "\"PVIO\"")
    d("PVIO_VERSION", VERSION)
    d("PVIO_CTRL_REGISTER", CTRL_REGISTER, "inl: PVIO_MAGIC if a monitor is present; outl: GPA >> 12 of the area")
    d("PVIO_CTRL_FLUSH", CTRL_FLUSH, "outl: header.slot; replays the batch (one exit)")
    d("PVIO_PAGE_SIZE", PAGE_SIZE)
    L.append("")
    for enum_cls, prefix in ((PortClass, "PVIO_CLASS_"), (Op, "PVIO_OP_"), (Neutral, "PVIO_NEUTRAL_"), (Status, "PVIO_STATUS_"),
                             (State, "PVIO_STATE_"), (EngineKind, "PVIO_ENGINE_KIND_"),
                             (EngineState, "PVIO_ENGINE_"), (AuditKind, "PVIO_AUDIT_")):
        for m in enum_cls:
            d(prefix + m.name, int(m))
        L.append("")
    d("PVIO_CLS_READ_SHIFT", CLS_READ_SHIFT)
    d("PVIO_CLS_WRITE_SHIFT", CLS_WRITE_SHIFT)
    d("PVIO_CLS_CLASS_MASK", CLS_CLASS_MASK)
    d("PVIO_CLS_READ_EFFECT", CLS_READ_EFFECT, "a shadow hit also queues PVIO_OP_IN_DISCARD")
    d("PVIO_CLS_OWNED", CLS_OWNED, "a strict access may travel as a batch entry")
    d("PVIO_CLS_SLOT_SHIFT", CLS_SLOT_SHIFT)
    L.append("")
    d("PVIO_ENTRY_CAPACITY", ENTRY_CAPACITY)
    d("PVIO_DEFAULT_THRESHOLD", DEFAULT_THRESHOLD)
    d("PVIO_FIFO_CAPACITY", FIFO_CAPACITY)
    d("PVIO_SHADOW_SLOTS", SHADOW_SLOTS)
    d("PVIO_MAX_STRING_BYTES", MAX_STRING_BYTES)
    d("PVIO_STAGING_SIZE", STAGING_SIZE)
    d("PVIO_READ_NEUTRAL_SIZE", READ_NEUTRAL_SIZE, "bitmap by slot: an IN_DISCARD of a marked slot is neutral")
    for name in ("COND_NONE", "COND_SHADOW", "COND_LATCH", "COND_RANGE", "NO_REF", "LATCH_COUNT", "COND_COUNT",
                 "EFFECT_COUNT", "ENGINE_COUNT", "CMD_RULE_COUNT", "IRQ_RULE_COUNT", "IX_ENTRY_COUNT",
                 "AUDIT_CAPACITY", "AUDIT_DATA_SIZE", "XSTAGING_SIZE", "ENGINE_MEM_SIZE"):
        d("PVIO_" + name, globals()[name])
    d("PVIO_SERVED_OFF_BITS", SERVED_OFF_BITS, "served_gpa(): bits of the area offset")
    d("PVIO_SERVED_ADDR_SHIFT", SERVED_ADDR_SHIFT, "served_gpa(): the device address")
    d("PVIO_SERVED_ENGINE_SHIFT", SERVED_ENGINE_SHIFT, "served_gpa(): the engine index")
    for name, off, _ in AREA_REGIONS:
        d(f"PVIO_OFF_{name.upper()}", off)
    d("PVIO_AREA_SIZE", AREA_SIZE)
    L.append("")
    for lay in (HEADER, FIFO, ENTRY, SHADOW, WRITE_RULE, *MODEL_LAYOUTS):
        L.extend(_c_struct(lay))
    # The whole area as one struct with explicit padding, so offsets are checked by the compiler.
    L.append("/* The per-vCPU batch area (page aligned, physically contiguous). */")
    L.append("struct pvio_area {")
    members = {
        "header": "struct pvio_header header;", "fifo": "struct pvio_fifo fifo;",
        "read_neutral": "pvio_u8 read_neutral[PVIO_READ_NEUTRAL_SIZE];",
        "entries": "struct pvio_entry entries[PVIO_ENTRY_CAPACITY];",
        "fifo_values": "pvio_u32 fifo_values[PVIO_FIFO_CAPACITY];",
        "shadows": "struct pvio_shadow shadows[PVIO_SHADOW_SLOTS];",
        "doorbell_masks": "pvio_u8 doorbell_masks[PVIO_SHADOW_SLOTS];",
        "write_rules": "struct pvio_wrule write_rules[PVIO_SHADOW_SLOTS];",
        "staging": "pvio_u8 staging[PVIO_STAGING_SIZE];", "classes": "pvio_u16 classes[0x10000];",
        "latches": "struct pvio_latch latches[PVIO_LATCH_COUNT];",
        "irq_rules": "struct pvio_irqrule irq_rules[PVIO_IRQ_RULE_COUNT];",
        "ix_file": "struct pvio_ixfile ix_file;",
        "engines": "struct pvio_engine engines[PVIO_ENGINE_COUNT];",
        "cmd_rules": "struct pvio_cmdrule cmd_rules[PVIO_CMD_RULE_COUNT];",
        "ix_entries": "struct pvio_ixentry ix_entries[PVIO_IX_ENTRY_COUNT];",
        "audit": "struct pvio_audit audit;",
        "audit_recs": "struct pvio_auditrec audit_recs[PVIO_AUDIT_CAPACITY];",
        "audit_data": "pvio_u8 audit_data[PVIO_AUDIT_DATA_SIZE];",
        "xstaging": "pvio_u8 xstaging[PVIO_XSTAGING_SIZE];",
        "engine_mem": "pvio_u8 engine_mem[PVIO_ENGINE_MEM_SIZE];",
    }
    end = 0
    for name, off, size in AREA_REGIONS:
        if off > end:
            L.append(f"\tpvio_u8 pad_{end:#x}[{off - end:#x}];")
        L.append(f"\t{members[name]}")
        end = off + size
    L.append("};")
    L.append(f"_Static_assert(sizeof(struct pvio_area) == PVIO_AREA_SIZE, \"pvio_area size\");")
    for name, _, _ in AREA_REGIONS:
        L.append(f"_Static_assert(__builtin_offsetof(struct pvio_area, {name}) == PVIO_OFF_{name.upper()}, "
                 f"\"pvio_area.{name}\");")
    L += ["", "#endif", ""]
    return "\n".join(L)
