"""pvbatch: the monitor side of the batch protocol, a port device on the pvgen control ports (docs/protocol.md).

Registration publishes the port-class table (devices/pvpublish.py) and the shadows (devices/pvshadow.py) into the
guest's area and marks it active; a flush is one `outl` to CTRL_FLUSH: the whole batch is validated first (header,
count, every entry: op, size, port owned by a device, string ranges inside guest RAM), then replayed in order on the
PortBus, IN results are written back into their entries, the FIFO is refilled and the shadows refreshed.  A hostile
batch is rejected, counted and recorded; it never raises out of io_write and never touches memory outside guest RAM.
"""

from __future__ import annotations

import array
import struct
from dataclasses import dataclass, field
from typing import Protocol

from pvgen import protocol as P
from pvgen.devices import pvpublish, pvshadow
from pvgen.devices.bus import PortBus
from pvgen.devices.pvaudit import AuditBatch, AuditStats
from pvgen.devices.pvmodels import ModelSet
from pvgen.errors import PvgenError, ProtocolError
from pvgen.protocol import AuditKind, BatchRejected, Op, PortClass, State, Status

MAX_AREAS = 64                        # areas (vCPUs) one monitor accepts
MAX_BATCH_STRING_BYTES = 8 << 20      # string bytes one batch may move in total
_FIFO_HDR = struct.Struct("<HBBIII")
_HDR, _ENTRY, _U32 = P.HEADER.fmt, P.ENTRY.fmt, struct.Struct("<I")
_U16 = struct.Struct("<H")
_OFF_COUNT, _OFF_STATUS = P.HEADER.field("count")[0], P.HEADER.field("status")[0]
_OFF_NEUTRAL, _OFF_STAGED = P.HEADER.field("neutral")[0], P.HEADER.field("staged")[0]
_OFF_XSTAGED = P.HEADER.field("xstaged")[0]
_OFF_STALE = P.HEADER.field("stale")[0]
_ONE32 = (1).to_bytes(4, "little")
_ZERO32 = bytes(4)
_OUT, _IN, _IN_DISCARD, _OUTS, _INS = int(Op.OUT), int(Op.IN), int(Op.IN_DISCARD), int(Op.OUTS), int(Op.INS)
_SERVED_IN, _SERVED_OUT, _IRQ_MARK = int(Op.SERVED_IN), int(Op.SERVED_OUT), int(Op.IRQ_MARK)
_AUDIT_CTL = struct.Struct("<IIII")
_SERVED_REGIONS = ((P.OFF_XSTAGING, P.XSTAGING_SIZE), (P.OFF_ENGINE_MEM, P.ENGINE_MEM_SIZE))
_SERVED_OFF_MASK = (1 << P.SERVED_OFF_BITS) - 1
_ST_READ, _ST_WRITE = P.EngineState.READ, P.EngineState.WRITE
_MASKS = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF}
_UNRESOLVED = object()
_CODES = {1: "B", 2: "H", 4: "I"}          # native = little-endian on x86: a string's elements as a memoryview


def _pack(vals: list[int], size: int) -> bytes:
    """Values read from a device (masked to their size) as the little-endian bytes a string moves."""
    mask = _MASKS[size]
    return array.array(_CODES[size], [v & mask for v in vals]).tobytes()


class GuestMemory(Protocol):
    """Guest RAM at GPA 0..size (docs/team.md)."""

    size: int

    def read(self, gpa: int, n: int) -> bytes: ...

    def write(self, gpa: int, data: bytes) -> None: ...


@dataclass
class _Area:
    gpa: int
    shadows: list[pvshadow.Shadow] = field(default_factory=list)
    groups: list[pvshadow.Group] = field(default_factory=list)
    refresh_due: bool = False   # refresh() found entries queued: the next flush refreshes every shadow
    irq_lines: int = 0          # header.irq_lines at registration: lines the guest takes as notifications
    models: ModelSet | None = None   # the in-guest device models published in this area (protocol v5)
    audit: bool = False         # header.audit at registration: the guest logs every value it serves
    fifo_values: list[int] = field(default_factory=list)   # the last FIFO refill (what audit records index)
    fifo_owner: tuple | None = None   # (device, its fifo_epoch at the refill): the transfer the values belong to


@dataclass
class PvBatchStats:
    registrations: int = 0
    flushes: int = 0
    entries: int = 0
    rejected: int = 0
    fifo_refills: int = 0
    shadow_writes: int = 0   # shadow groups rewritten (a refresh skips devices that cannot have changed)
    republished: int = 0     # times the tables were published again after a device moved on the bus
    errors: list[str] = field(default_factory=list)   # the last few rejection messages

    def record(self, exc: PvgenError) -> None:
        self.rejected += 1
        self.errors = (self.errors + [str(exc)])[-16:]


class PvBatch:
    """The batch handler: register at CTRL_BASE..+CTRL_LEN on the bus it replays batches onto."""

    name = "pvbatch"

    def __init__(self, bus: PortBus, mem: GuestMemory, models: bool = True):
        self.bus, self.mem = bus, mem
        self.models = models          # publish the devices' in-guest models (protocol v5)
        self.areas: list[_Area] = []
        self.stats = PvBatchStats()
        self.audit = AuditStats()
        self._words: dict[int, int] = {}
        self._slots: list[tuple[int, int]] = []          # slot -> (port, doorbell mask)
        self._read_neutral: list[int] = []               # slots whose read effect is neutral (the read_neutral bits)
        self._rules = bytes(P.WRITE_RULE.size * P.SHADOW_SLOTS)
        self._fifo_ports: frozenset[int] = frozenset()
        self._routes: dict[int, tuple[object, int] | None] = {}   # port * 8 + size -> (device, offset) or None
        self._routes_sig: object = ()
        self._pub_gen: int | None = None    # the bus generation the published tables were derived at
        self._checked: dict[int, tuple] = {}    # port << 16 | size << 8 | op -> (device, offset, max value, id, string)
        self.notifier = None   # devices/pvirq.py IrqNotifier: interrupt lines a flush raises go back in the area
        # called after every replay, before the refresh: an asynchronous source that reacts to the guest (the bench's
        # receive pacer) delivers there, after the whole batch, never between two of its entries (an event inside
        # the batch would put the device's history at odds with values the guest was served from its shadows)
        self.after_replay: list = []
        self._flushing = False      # a flush is in progress: a device callback must not flush or register again

    @classmethod
    def attach(cls, bus: PortBus, mem: GuestMemory) -> "PvBatch":
        """A handler registered on the protocol's control ports of `bus` (the one place that knows them)."""
        dev = cls(bus, mem)
        bus.register(P.CTRL_BASE, P.CTRL_LEN, dev)
        return dev

    # --- the port device -------------------------------------------------------------------------------------
    def io_read(self, offset: int, size: int) -> int:
        if offset == 0 and size == 4:
            return P.MAGIC
        return (1 << (8 * size)) - 1

    def io_write(self, offset: int, size: int, value: int) -> None:
        try:
            if size != 4:
                raise ProtocolError(f"control port {P.CTRL_BASE + offset:#x} written with size {size}, expected 4")
            if self._flushing:
                # a device callback re-entered the monitor: a nested flush would replay the batch being replayed
                # (recursively), a registration would publish tables under it
                raise ProtocolError(f"control port {P.CTRL_BASE + offset:#x} written during a replay (a device "
                                    "callback re-entered the monitor): refused")
            if offset == P.CTRL_REGISTER - P.CTRL_BASE:
                self.register(value << 12)
            elif offset == P.CTRL_FLUSH - P.CTRL_BASE:
                self.flush(value)
            else:
                raise ProtocolError(f"write to unused control port {P.CTRL_BASE + offset:#x}")
        except ProtocolError as exc:
            self.stats.record(exc)

    def port_classes(self) -> dict[int, tuple[PortClass, PortClass]]:
        return {}   # strict both ways: a control access must exit

    # --- guest memory, always bounds-checked -----------------------------------------------------------------
    def _read(self, gpa: int, n: int) -> bytes:
        if gpa < 0 or n < 0 or gpa + n > self.mem.size:
            raise BatchRejected(Status.BAD_ADDRESS, f"read of {n:#x} bytes at GPA {gpa:#x} outside guest RAM")
        return self.mem.read(gpa, n)

    def _write(self, gpa: int, data: bytes) -> None:
        if gpa < 0 or gpa + len(data) > self.mem.size:
            raise BatchRejected(Status.BAD_ADDRESS, f"write of {len(data):#x} bytes at GPA {gpa:#x} outside RAM")
        self.mem.write(gpa, data)

    def _set(self, area: _Area, name: str, value: int) -> None:
        off, size = P.HEADER.field(name)
        self._write(area.gpa + off, value.to_bytes(size, "little"))

    # --- the class map -----------------------------------------------------------------------------------------
    def _owner(self, port: int):
        hit = self.bus.find(port)
        if hit is None or hit[0] is self:
            return None
        return hit

    def class_words(self) -> dict[int, int]:
        """port -> class word of every port on the bus (devices/pvpublish.py); keeps the slots, FIFO ports, neutral
        reads and write-rule records that go with it for the next registration."""
        self._pub_gen = getattr(self.bus, "generation", None)
        pub = pvpublish.publish(self.bus, self, models=self.models)
        self._slots, self._fifo_ports, self._read_neutral, self._rules = (pub.slots, pub.fifo_ports,
                                                                          pub.read_neutral, pub.rules)
        return pub.words

    # --- registration ------------------------------------------------------------------------------------------
    def register(self, gpa: int) -> int:
        """Validate the area at gpa, publish classes, doorbell masks, write rules, neutral reads and shadows, mark it
        active; returns its slot."""
        self.stats.registrations += 1
        if gpa % P.PAGE_SIZE or gpa + P.AREA_SIZE > self.mem.size:
            raise ProtocolError(f"area at GPA {gpa:#x}+{P.AREA_SIZE:#x} is not page aligned inside guest RAM")
        h = P.decode_header(self._read(gpa, P.HEADER.size))
        P.check_header(h, active=False)
        slot = next((i for i, a in enumerate(self.areas) if a.gpa == gpa), None)
        if slot is None:
            if len(self.areas) >= MAX_AREAS:
                raise ProtocolError(f"more than {MAX_AREAS} batch areas registered")
            slot = len(self.areas)
            self.areas.append(_Area(gpa))
        area = self.areas[slot]
        area.irq_lines = h["irq_lines"]
        area.audit = h["audit"] == 1
        self._words = self.class_words()
        self._routes, self._checked, self._routes_sig = {}, {}, ()
        self._publish_tables(area)
        for name, value in (("slot", slot), ("count", 0), ("status", Status.OK), ("state", State.ACTIVE)):
            self._set(area, name, int(value))
        return slot

    def _publish_tables(self, area: _Area, queued: bool = False, old_words: dict[int, int] | None = None) -> None:
        """Everything registration publishes into `area`, from the current class words: class table, FIFO
        (emptied), doorbell masks, write rules, neutral reads, shadows and models.  `queued`: the guest has entries
        queued on the previous tables, so its shadows hold neutral changes the devices have not seen: it is marked
        stale (nothing served) and refreshed in full at its next flush.  `old_words`: the class words published
        before (only the ports whose word changed are written)."""
        gpa = area.gpa
        if old_words is None:
            self._write(gpa + P.OFF_CLASSES, P.encode_class_table(self._words))
        else:
            new = self._words
            for port in {*old_words, *new}:
                w = new.get(port, 0)
                if old_words.get(port, 0) != w:
                    self._write(gpa + P.OFF_CLASSES + 2 * port, _U16.pack(w))
        if area.fifo_owner is not None:
            self._fifo_giveback(area)   # what the guest did not read goes back to the device, not just away
        self._write(gpa + P.OFF_FIFO, bytes(P.FIFO.size))
        area.fifo_values, area.fifo_owner = [], None
        masks = bytes(m for _, m, *_ in self._slots) + bytes(P.SHADOW_SLOTS - len(self._slots))
        self._write(gpa + P.OFF_DOORBELL_MASKS, masks)
        self._write(gpa + P.OFF_WRITE_RULES, self._rules)
        self._write(gpa + P.OFF_READ_NEUTRAL, P.read_neutral_bitmap(self._read_neutral))
        area.shadows, area.groups = pvshadow.layout(self.bus, self._slots, self._words, self._owner)
        if queued:
            self._set(area, "stale", 1)
            area.refresh_due = True
        else:
            self._refresh(area)
        self._publish_models(area)

    def _republish_if_remapped(self, flushing: _Area) -> bool:
        """A device moved on the bus since the tables were published (a BAR written during the replay: the bus's
        generation changed): publish them again in every area, as registration does, so no area serves a port
        from its old place or misses its new one.  True when it did (the flushing area is then current)."""
        gen = getattr(self.bus, "generation", None)
        if gen is None or gen == self._pub_gen:
            return False
        old, self._words = self._words, self.class_words()
        self._routes, self._checked, self._routes_sig = {}, {}, ()
        if self._words == old:
            return False        # moved and back within the batch (or another range of no port's class changed)
        for a in self.areas:
            queued = a is not flushing and P.decode_header(self._read(a.gpa, P.HEADER.size))["count"] > 0
            self._publish_tables(a, queued, old)
        self.stats.republished += 1
        return True

    def _publish_models(self, area: _Area) -> None:
        """The in-guest device models (devices/pvmodels.py), for a single area only: the models of two CPUs would
        each believe they know the device's state, so a second registration withdraws them from the first."""
        others = [a for a in self.areas if a is not area]
        for other in others:
            if other.models is not None:
                other.models = None
                ModelSet().publish(self._write, other.gpa)   # empty records: nothing modelled
                self._set(other, "models", 0)
        area.models = None
        ms = ModelSet.build(self.bus, self._words, self._slots, self._owner,
                            irq_lines=area.irq_lines if self.notifier is not None else 0,
                            monitor=self) if self.models and not others else ModelSet()
        ms.publish(self._write, area.gpa)
        if ms.active:
            area.models = ms
            ms.refresh(self._write, self._read, area.gpa, None, self._fifo_busy(area))
        self._set(area, "models", ms.models_word())

    def _fifo_state(self, area: _Area) -> tuple[int, int, int, int]:
        """The FIFO control as the guest left it: (port, size, count, head); head is the guest's word."""
        port, size, _, count, head, _ = _FIFO_HDR.unpack(self._read(area.gpa + P.OFF_FIFO, P.FIFO.size))
        return port, size, count, head

    def _fifo_clear(self, area: _Area, port: int, size: int) -> None:
        """No values left: the guest's next read of the port exits (no kill range either)."""
        self._write(area.gpa + P.OFF_FIFO, _FIFO_HDR.pack(port, size, 0, 0, 0, 0))

    def _fifo_busy(self, area: _Area) -> int | None:
        """The port whose prefetched FIFO values the guest has not read yet (its engine must wait: order)."""
        port, _, count, head = self._fifo_state(area)
        return port if head < count else None

    # --- flush -------------------------------------------------------------------------------------------------
    def flush(self, slot: int) -> None:
        """Validate and replay the batch of area `slot` (one exit)."""
        if not 0 <= slot < len(self.areas):
            raise ProtocolError(f"flush of unknown area slot {slot} ({len(self.areas)} registered)")
        self._flushing = True
        try:
            self._flush(self.areas[slot], slot)
        finally:
            self._flushing = False

    def _flush(self, area: _Area, slot: int) -> None:
        self.stats.flushes += 1
        try:
            entries, touched = self._validate(area, slot)
        except BatchRejected as exc:
            self._set(area, "status", int(exc.status))
            self._set(area, "count", 0)
            h = P.decode_header(self._read(area.gpa, P.HEADER.size))
            self._set(area, "rejected", (h["rejected"] + 1) & 0xFFFFFFFF)
            raise
        if area.fifo_owner is not None:
            self._fifo_giveback(area)
        audit = self._audit_batch(area) if area.audit else None
        notifier = self.notifier
        if notifier is not None:
            notifier.begin(area.gpa, area.irq_lines, entries)
        try:
            fifo_port = self._replay(area, entries, audit)
            if audit is not None:
                audit.finish(len(entries))
            for hook in self.after_replay:
                hook()
        finally:
            if notifier is not None:
                for msg in notifier.end():
                    if area.models is not None:
                        area.models.stats.mismatch(msg)
        if self._republish_if_remapped(area):
            fifo_port = None            # the FIFO was emptied with the rest: the next data read exits
        if area.fifo_owner is not None:
            self._fifo_expire(area)
        if fifo_port is not None:
            self._refill(area, fifo_port)
        # An empty batch (a tick or an idle hlt) refreshes every shadow: it is how a guest polling a shadow sees
        # a device change; a non-empty one only the devices it touched and those whose shadows are not synchronous
        # (and all of them when refresh() was deferred to this flush).
        # An asynchronous event during the flush (refresh_due: the bench's pacer injects frames after the replay)
        # refreshes every device too, by the fast paths.
        full, every = not entries, area.refresh_due
        area.refresh_due = False
        self._refresh(area, None if full else touched, every)
        if area.models is not None:
            area.models.refresh(self._write, self._read, area.gpa, None if full or every else touched,
                                self._fifo_busy(area))
        mem, gpa = self.mem, area.gpa
        mem.write(gpa + _OFF_COUNT, _ZERO32)
        mem.write(gpa + _OFF_NEUTRAL, _ZERO32)
        mem.write(gpa + _OFF_STAGED, _ZERO32)
        mem.write(gpa + _OFF_XSTAGED, _ZERO32)
        mem.write(gpa + _OFF_STALE, _ZERO32)
        mem.write(gpa + _OFF_STATUS, _ZERO32)
        if area.audit:
            mem.write(gpa + P.OFF_AUDIT, _ZERO32)
            mem.write(gpa + P.OFF_AUDIT + 8, _ZERO32)

    def _audit_batch(self, area: _Area) -> AuditBatch | None:
        """The audit log of this flush (records and the engine-served bytes), bounds-checked."""
        count, _, used, _ = _AUDIT_CTL.unpack(self._read(area.gpa + P.OFF_AUDIT, _AUDIT_CTL.size))
        count, used = min(count, P.AUDIT_CAPACITY), min(used, P.AUDIT_DATA_SIZE)
        if not count:
            return None
        recs = self._read(area.gpa + P.OFF_AUDIT_RECS, count * P.AUDIT_REC.size)
        data = self._read(area.gpa + P.OFF_AUDIT_DATA, used) if used else b""
        return AuditBatch(recs, data, self.audit, lambda kind, port, size: self._audit_peek(area, kind, port, size),
                          area.fifo_values)

    def _audit_peek(self, area: _Area, kind: int, port: int, size: int) -> int | None:
        """What the device returns now for a read an audit record says was served with no replay entry, read
        without side effects: a shadow through the device's shadow_read, an index-file value through the published
        data port (configuration reads have none); None for anything else."""
        route = self._resolve(port, size) if 0 <= port and port + size <= 0x10000 and size in (1, 2, 4) else None
        if route is None:
            return None
        dev, off = route
        if kind == AuditKind.SHADOW:
            read = getattr(dev, "shadow_read", None)
            return None if read is None else read(off, size)
        ix = area.models.ix if area.models is not None else None
        if kind == AuditKind.INDEX and ix is not None and ix.data_port <= port and \
                port + size <= ix.data_port + ix.data_len:
            return self.bus.read(port, size)
        return None

    def _route_table(self) -> dict[int, tuple[object, int] | None]:
        gen = getattr(self.bus, "generation", None)     # bumped by every (un)registration (devices/bus.py)
        sig = tuple((r.base, r.length, id(r.device)) for r in self.bus.ranges) if gen is None else gen
        if sig != self._routes_sig:
            self._routes, self._checked, self._routes_sig = {}, {}, sig
        return self._routes

    def _resolve(self, port: int, size: int) -> tuple[object, int] | None:
        first, last = self._owner(port), self._owner(port + size - 1)
        return first if first is not None and last is not None and first[0] is last[0] else None

    def _validate(self, area: _Area, slot: int) -> tuple[list[tuple], set]:
        """The whole batch checked before anything runs: [(op, device, offset, size, value, gpa, port)], and the
        set of the ids of the devices it touches."""
        raw = self._read(area.gpa, P.HEADER.size)
        magic, version, hslot, state, asize, cap, count = _HDR.unpack(raw)[:7]
        if (magic != P.MAGIC or version != P.VERSION or hslot != slot or state != State.ACTIVE
                or asize != P.AREA_SIZE or cap != P.ENTRY_CAPACITY or count > cap):
            P.check_header(P.decode_header(raw), slot=slot)   # raises, naming the first bad field
        data = self._read(area.gpa + P.OFF_ENTRIES, count * P.ENTRY.size)
        routes, ram = self._route_table(), self.mem.size
        checked = self._checked
        out: list[tuple] = []
        append = out.append
        touched: set = set()
        string_bytes = 0
        for i, (port, size, op, value, gpa) in enumerate(_ENTRY.iter_unpack(data)):
            if op >= _SERVED_IN:        # the in-guest models' entries (protocol v5)
                ent = self._check_model_entry(area, i, port, size, op, value, gpa, routes)
                if ent[1] is not None:
                    touched.add(id(ent[1]))
                    string_bytes += value * size        # a served run moves data like a string: same budget
                    if string_bytes > MAX_BATCH_STRING_BYTES:
                        raise BatchRejected(Status.BAD_ADDRESS, f"entry {i}: batch moves more than "
                                            f"{MAX_BATCH_STRING_BYTES} string bytes")
                append(ent)
                continue
            # An (op, port, size) that passed every check before: only the value (and a string's range) is left.
            hit = checked.get(port << 16 | size << 8 | op)
            if hit is not None and value <= hit[2]:
                if not hit[4]:
                    touched.add(hit[3])
                    append((op, hit[0], hit[1], size, value, gpa, port))
                    continue
                if value and gpa + value * size <= ram and (op != _INS or not self._in_area(gpa, value * size)):
                    string_bytes += value * size
                    if string_bytes > MAX_BATCH_STRING_BYTES:
                        raise BatchRejected(Status.BAD_ADDRESS, f"entry {i}: batch moves more than "
                                            f"{MAX_BATCH_STRING_BYTES} string bytes")
                    touched.add(hit[3])
                    append((op, hit[0], hit[1], size, value, gpa, port))
                    continue
            if _OUT <= op <= _IN_DISCARD:
                if ((size != 1 and size != 2 and size != 4) or port + size > 0x10000
                        or (op == _OUT and value >> (8 * size))):
                    P.check_entry(i, port, size, op, value, gpa, ram)   # raises with the reason
            else:
                P.check_entry(i, port, size, op, value, gpa, ram)       # unknown op, or a string's range
                if op == _INS and self._in_area(gpa, value * size):
                    raise BatchRejected(Status.BAD_ADDRESS, f"entry {i}: INS into a batch area ({value * size:#x} "
                                        f"bytes at GPA {gpa:#x}): the monitor writes there during the replay")
                string_bytes += value * size
            route = self._route(routes, i, port, size)
            if string_bytes > MAX_BATCH_STRING_BYTES:
                raise BatchRejected(Status.BAD_ADDRESS, f"entry {i}: batch moves more than "
                                    f"{MAX_BATCH_STRING_BYTES} string bytes")
            dev = route[0]
            touched.add(id(dev))
            append((op, dev, route[1], size, value, gpa, port))
            string = op == _OUTS or op == _INS
            # the largest value that passes P.check_entry: OUT fits in size; a string moves at most MAX_STRING_BYTES
            vmax = P.MAX_STRING_BYTES // size if string else (1 << 8 * size) - 1 if op == _OUT else 0xFFFFFFFF
            checked[port << 16 | size << 8 | op] = (dev, route[1], vmax, id(dev), string)
        return out, touched

    def _in_area(self, gpa: int, n: int) -> bool:
        """Whether gpa..+n overlaps a registered area (an INS there would race the monitor's own writes to it)."""
        return any(gpa < a.gpa + P.AREA_SIZE and a.gpa < gpa + n for a in self.areas)

    def _check_model_entry(self, area: _Area, i: int, port: int, size: int, op: int, value: int, gpa: int,
                           routes) -> tuple:
        """Validate a SERVED_IN / SERVED_OUT / IRQ_MARK entry (before anything runs)."""
        if op == _IRQ_MARK:
            if value >= 32 or not area.irq_lines >> value & 1:
                raise BatchRejected(Status.BAD_ENTRY, f"entry {i}: interrupt mark of line {value}, which the "
                                    "area does not take")
            return (op, None, 0, 1, value, 0, port)
        if op not in (_SERVED_IN, _SERVED_OUT) or size not in (1, 2, 4):
            raise BatchRejected(Status.BAD_ENTRY, f"entry {i}: unknown op {op} or size {size}")
        if value == 0 or value * size > P.MAX_STRING_BYTES:
            raise BatchRejected(Status.BAD_ADDRESS, f"entry {i}: served run of {value} accesses of {size} bytes")
        if op == _SERVED_OUT:
            off, n = gpa & _SERVED_OFF_MASK, value * size
            if not any(lo <= off and off + n <= lo + length for lo, length in _SERVED_REGIONS):
                raise BatchRejected(Status.BAD_ADDRESS, f"entry {i}: served write data at area offset {off:#x}"
                                    f"+{n:#x} outside xstaging and the engine memory")
        route = self._route(routes, i, port, size)
        return (op, route[0], route[1], size, value, gpa, port)

    def _route(self, routes: dict, i: int, port: int, size: int) -> tuple[object, int]:
        """(device, offset) of entry i's port, memoized in `routes`; a port no one device owns rejects the batch."""
        key = port * 8 + size
        route = routes.get(key, _UNRESOLVED)
        if route is _UNRESOLVED:
            route = routes[key] = self._resolve(port, size)
        if route is None:
            raise BatchRejected(Status.BAD_ENTRY, f"entry {i}: port {port:#x} (size {size}) is not owned by one "
                                "device")
        return route

    def _served(self, area: _Area, i: int, op: int, dev, off: int, size: int, value: int, gpa: int, port: int,
                audit: AuditBatch | None) -> None:
        """Replay a run of accesses an in-guest engine served, after checking the device is where the guest says
        (a claim the device contradicts is counted; the accesses are made either way: the guest made them)."""
        ms = area.models
        idx, addr = gpa >> P.SERVED_ENGINE_SHIFT & 0xFF, gpa >> P.SERVED_ADDR_SHIFT & 0xFFFFFFFF
        eng = ms.engine_at(idx, port) if ms is not None else None
        nbytes = value * size
        if eng is None:
            (ms.stats if ms is not None else self.audit).mismatch(
                f"entry {i}: served run on {port:#x} names engine {idx}, which is not published there")
            if op == _SERVED_IN:
                data = self._read_run(dev, off, size, value)
                if audit is not None:
                    audit.served_in(i, data)
            else:
                self._write_run(dev, off, size, self._read(area.gpa + (gpa & _SERVED_OFF_MASK), nbytes), None)
            return
        if op == _SERVED_IN:
            ms.check_position(eng, _ST_READ, addr, nbytes, "served read")
            data = eng.read_many(off, size, value) if eng.read_many is not None else \
                self._read_run(dev, off, size, value)
            ms.stats.served_in += value
            if eng.decl.kind == P.EngineKind.WINDOW:
                ms.check_window(eng, gpa & _SERVED_OFF_MASK, data)
            if audit is not None:
                audit.served_in(i, data)
            return
        data = self._read(area.gpa + (gpa & _SERVED_OFF_MASK), nbytes)
        ms.check_position(eng, _ST_WRITE, addr, nbytes, "served write")
        ms.stats.served_out += value
        if eng.decl.kind == P.EngineKind.WINDOW and not ms.may_take_writes(eng):
            ms.stats.mismatch(f"entry {i}: served write on {port:#x}, where no write window was armed")
            self._write_run(dev, off, size, data, None)     # plain data writes: nothing acknowledged ahead
            return
        self._write_run(dev, off, size, data, eng)

    @staticmethod
    def _read_run(dev, off: int, size: int, count: int) -> bytes:
        read_many = getattr(dev, "read_many", None)
        if read_many is not None:
            return bytes(read_many(off, size, count)[: count * size])
        read = dev.io_read
        return _pack([read(off, size) for _ in range(count)], size)

    @staticmethod
    def _write_run(dev, off: int, size: int, data: bytes, eng) -> None:
        take = eng.engine_write if eng is not None else None
        if take is not None:
            take(eng.index, off, size, data)
            return
        write_many = eng.write_many if eng is not None else getattr(dev, "write_many", None)
        if write_many is not None:
            write_many(off, size, data)
            return
        write = dev.io_write
        for v in memoryview(data).cast(_CODES[size]):     # one call per element (8 Mi at most: docs/protocol.md)
            write(off, size, v)

    def _replay(self, area: _Area, entries: list[tuple], audit: AuditBatch | None = None) -> tuple[int, int] | None:
        """Run the entries in order; returns (port, size) if the last FIFO-class read was an IN, for the refill.
        With an audit log, every served value is checked at its position in the sequence."""
        fifo, fifo_ports = None, self._fifo_ports
        self.stats.entries += len(entries)
        notifier = self.notifier
        for i, (op, dev, off, size, value, gpa, port) in enumerate(entries):
            if audit is not None:
                audit.before(i)
            if notifier is not None:
                notifier.pos = i
            if op == _OUT:
                dev.io_write(off, size, value)
                continue
            if op == _IN:
                v = dev.io_read(off, size) & _MASKS[size]
                self._write(area.gpa + P.OFF_ENTRIES + i * P.ENTRY.size + 4, _U32.pack(v))
            elif op == _IN_DISCARD:
                v = dev.io_read(off, size)
                if audit is not None:
                    audit.replayed(i, v)
                continue
            elif op == _SERVED_IN or op == _SERVED_OUT:
                self._served(area, i, op, dev, off, size, value, gpa, port, audit)
                continue
            elif op == _IRQ_MARK:
                if area.models is not None:
                    area.models.stats.irq_marks += 1
                continue
            elif op == _OUTS:
                self._write_run(dev, off, size, self._read(gpa, value * size), None)
                continue
            else:   # INS
                read_many = getattr(dev, "read_many", None)   # optional: the same values and effects, as bytes
                if read_many is not None:
                    self._write(gpa, read_many(off, size, value)[: value * size])
                else:
                    self._write(gpa, self._read_many(port, size, value))
            if port in fifo_ports:
                # Prefetch after a single read only: an INS took exactly what the guest asked for, and the device's
                # "current block" after it may be one the guest has not started (docs/protocol.md).
                fifo = (port, size) if op == _IN else None
        return fifo

    def _read_many(self, port: int, size: int, n: int) -> bytes:
        """n reads of port: in bulk through the device's fifo_read while it hands values, then one io_read each."""
        hit = self._owner(port)
        if hit is None:     # moved away during this batch: what the bus reads there
            return _pack([self.bus.read(port, size) for _ in range(n)], size)
        dev, off = hit
        vals: list[int] = []
        fifo_read = getattr(dev, "fifo_read", None)
        while fifo_read is not None and len(vals) < n:
            got = fifo_read(off, size, n - len(vals))
            if not got:
                break
            vals += got[: n - len(vals)]
        read = dev.io_read
        vals += [read(off, size) for _ in range(n - len(vals))]
        return _pack(vals, size)

    def _fifo_giveback(self, area: _Area) -> None:
        """Before the replay: the values of the last refill the guest did not read go back to a device that takes
        them (its optional `fifo_rewind(unread)`), and the FIFO is emptied.  The device's transfer is then where
        the guest is, not where the prefetch left it, for everything the batch does: a read of another size, a
        register that shows the position (the NE2000's CRDA), an abort, a device select.  The guest's next read
        of the port exits and refills.  (A device without it keeps unread values until its fifo_epoch moves.)"""
        dev = area.fifo_owner[0]  # type: ignore[index]
        rewind = getattr(dev, "fifo_rewind", None)
        if rewind is None:
            return
        area.fifo_owner = None
        port, size, count, head = self._fifo_state(area)
        rewind(count - min(head, count))     # head is the guest's word: at most what was handed goes back
        self._fifo_clear(area, port, size)

    def _fifo_expire(self, area: _Area) -> None:
        """Prefetched values the guest has not read belong to a transfer the batch abandoned (the device's optional
        `fifo_epoch` moved: a new command, an abort, a new address or count): they are not what the guest reads
        next, so they go (the guest's next read of the port exits)."""
        dev, epoch = area.fifo_owner  # type: ignore[misc]
        if getattr(dev, "fifo_epoch", epoch) == epoch:
            return
        area.fifo_owner = None
        port, size, count, head = self._fifo_state(area)
        if head < count:
            self._fifo_clear(area, port, size)

    def _refill(self, area: _Area, fifo: tuple[int, int] | None) -> None:
        """After an IN/INS on a FIFO port: prefetch the values the device promises the guest reads next."""
        _, _, count, head = self._fifo_state(area)
        if fifo is None or head < count:
            return          # no FIFO read in this batch, or values still unread: keep them
        hit = self._owner(fifo[0])
        vals = hit[0].fifo_read(hit[1], fifo[1], P.FIFO_CAPACITY) if hit else []  # type: ignore[union-attr]
        vals = list(vals)[: P.FIFO_CAPACITY]
        if hit is not None and vals:
            area.fifo_owner = (hit[0], getattr(hit[0], "fifo_epoch", None))
        mask = (1 << (8 * fifo[1])) - 1
        area.fifo_values = [v & mask for v in vals]
        kill = 0
        if hit is not None:
            rng = next((r for r in self.bus.ranges if r.device is hit[0] and r.base <= fifo[0] < r.base + r.length),
                       None)
            kill = rng.base | min(rng.length, 0xFFFF) << 16 if rng is not None else 0
        self._write(area.gpa + P.OFF_FIFO_VALUES, struct.pack(f"<{len(vals)}I", *(v & mask for v in vals)))
        self._write(area.gpa + P.OFF_FIFO, _FIFO_HDR.pack(fifo[0], fifo[1], 0, len(vals), 0, kill))
        if vals:
            self.stats.fifo_refills += 1

    def _refresh(self, area: _Area, touched: set | None = None, every: bool = False) -> None:
        """The shadows of `area` (devices/pvshadow.py): of the devices in `touched` and of every device whose
        shadows are not synchronous; all of them when touched is None (generic path) or `every` (fast paths)."""
        pvshadow.refresh(area.groups, touched, self._write, area.gpa, self.stats, every)

    def refresh(self) -> None:
        """Bring every area's shadows up to date (call after an asynchronous device event: a device whose
        `synchronous_shadows` is true promises its shadow values change only through its port accesses or an
        event followed by this call, so a flush that does not touch it skips it).  An area with entries queued is
        refreshed by its next flush instead: its shadows hold the guest's neutral writes, which the devices have not
        seen yet; header.stale tells the guest to serve nothing until then (protocol v5: before, it kept serving
        the old values while every queued entry was neutral, after the event had happened)."""
        for area in self.areas:
            try:
                if area.fifo_owner is not None:
                    # prefetched values may hold what the event changed (a frame written where a remote read is):
                    # the unread ones go back, and the guest's next data read exits
                    self._fifo_giveback(area)
                if _U32.unpack(self._read(area.gpa + _OFF_COUNT, 4))[0]:
                    # the guest's shadows hold its queued neutral writes, which the devices have not seen: they
                    # cannot be computed now, so the guest serves nothing until its next flush refreshes them
                    area.refresh_due = True
                    self._write(area.gpa + _OFF_STALE, _ONE32)
                else:
                    self._refresh(area)
                    if area.models is not None:
                        area.models.refresh(self._write, self._read, area.gpa, None, self._fifo_busy(area))
            except ProtocolError as exc:
                self.stats.record(exc)
