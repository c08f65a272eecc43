"""pvbatch: the monitor side of the batch protocol, a port device on the pvgen control ports (docs/protocol.md).

Registration publishes the port-class table and the shadows into the guest's area and marks it active; a flush is
one `outl` to CTRL_FLUSH: the whole batch is validated first (header, count, every entry: op, size, port owned by
a device, string ranges inside guest RAM), then replayed in order on the PortBus, IN results are written back into
their entries, the FIFO is refilled and the shadows refreshed.  A hostile batch is rejected, counted and recorded;
it never raises out of io_write and never touches memory outside guest RAM.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field
from typing import Protocol

from pvgen import protocol as P
from pvgen.devices.bus import PortBus
from pvgen.errors import PvgenError, ProtocolError
from pvgen.protocol import BatchRejected, Op, PortClass, State, Status

MAX_AREAS = 64                        # areas (vCPUs) one monitor accepts
MAX_BATCH_STRING_BYTES = 8 << 20      # string bytes one batch may move in total
_FIFO_HDR = struct.Struct("<HBBIII")
_HDR, _ENTRY, _U32 = P.HEADER.fmt, P.ENTRY.fmt, struct.Struct("<I")
_OFF_COUNT, _OFF_STATUS = P.HEADER.field("count")[0], P.HEADER.field("status")[0]
_OFF_NEUTRAL, _OFF_STAGED = P.HEADER.field("neutral")[0], P.HEADER.field("staged")[0]
_ZERO32 = bytes(4)
_OUT, _IN, _IN_DISCARD, _OUTS, _INS = int(Op.OUT), int(Op.IN), int(Op.IN_DISCARD), int(Op.OUTS), int(Op.INS)
_MASKS = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF}
_UNRESOLVED = object()
_SHADOW_PACK = P.SHADOW.fmt.pack
_SHADOW_VAL = P.SHADOW.field("val")[0]     # the low byte of val[0] (size 1) in a little-endian shadow record
_SIZE_SLOTS = tuple((i, size, (1 << (8 * size)) - 1) for i, size in enumerate(P.SIZES))


class GuestMemory(Protocol):
    """Guest RAM at GPA 0..size (docs/team.md)."""

    size: int

    def read(self, gpa: int, n: int) -> bytes: ...

    def write(self, gpa: int, data: bytes) -> None: ...


@dataclass
class _Shadow:
    port: int
    device: object | None    # None: a slot holding only a doorbell mask (its shadow stays invalid)
    offset: int
    length: int       # of the device's range, so a wide read never leaves it
    sizes: tuple = ()  # (index, size, mask) of the access sizes that had a value at the last full refresh


class _BankView:
    """A bank slot's reader: `shadow_read` of one bank of a device's BANK rule (not the current one)."""

    __slots__ = ("device", "bank", "shadow_read")

    def __init__(self, device: object, bank: int):
        self.device, self.bank = device, bank
        self.shadow_read = functools.partial(device.bank_shadow_read, bank)  # type: ignore[attr-defined]


@dataclass
class _Group:
    """The contiguous slots of one device, refreshed together."""

    device: object
    first: int                     # slot of shadows[0]
    shadows: list[_Shadow]
    synchronous: bool              # the device's shadows change only through its accesses (or refresh())
    byte_offsets: list[int] | None = None   # fast partial refresh (_plan_group): one byte read per shadow
    args: list[int] = field(default_factory=list)
    pack: object = None
    read: object = None
    arg_index: list[int] = field(default_factory=list)
    # bulk partial refresh (_plan_blocks), for a device with shadow_block(bank, first, count): the byte value of
    # every slot is the concatenation of one block per run (bytes: a run of slots without a value, published 0)
    runs: list | None = None
    template: bytes = b""           # the group's records with every value 0 (valid bits as the fast path sets them)
    block: object = None
    plan_key: tuple | None = None   # the sizes the plan was made for: an unchanged full refresh keeps it
    full_sizes: tuple = _SIZE_SLOTS  # what a full refresh asks: the sizes the device declares (shadow_sizes), or all


@dataclass
class _Area:
    gpa: int
    shadows: list[_Shadow] = field(default_factory=list)
    groups: list[_Group] = field(default_factory=list)
    refresh_due: bool = False   # refresh() found entries queued: the next flush refreshes every shadow
    irq_lines: int = 0          # header.irq_lines at registration: lines the guest takes as notifications


@dataclass
class PvBatchStats:
    registrations: int = 0
    flushes: int = 0
    entries: int = 0
    rejected: int = 0
    fifo_refills: int = 0
    shadow_writes: int = 0   # shadow groups rewritten (a refresh skips devices that cannot have changed)
    errors: list[str] = field(default_factory=list)   # the last few rejection messages

    def record(self, exc: PvgenError) -> None:
        self.rejected += 1
        self.errors = (self.errors + [str(exc)])[-16:]


def device_write_rules(bus) -> dict[int, tuple[P.WriteRule, int]]:
    """port -> (rule, base of the device's range), from the devices' optional write_rules() (offset -> WriteRule)."""
    out: dict[int, tuple[P.WriteRule, int]] = {}
    for r in bus.ranges:
        get = getattr(r.device, "write_rules", None)
        if get is None:
            continue
        for off, rule in get().items():
            if 0 <= off < r.length and rule.op != P.Neutral.NONE:
                out[r.base + off] = (rule, r.base)
    return out


def device_doorbell_masks(bus) -> dict[int, int]:
    """port -> doorbell mask for every DOORBELL_IF port, from the devices' optional doorbell_masks() (offset ->
    mask); a DOORBELL_IF port without a mask is absent (the monitor publishes it as DOORBELL)."""
    out: dict[int, int] = {}
    for r in bus.ranges:
        get = getattr(r.device, "doorbell_masks", None)
        if get is None:
            continue
        for off, m in get().items():
            if 0 <= off < r.length and m & 0xFF:
                out[r.base + off] = m & 0xFF
    return out


def device_neutral_reads(bus) -> frozenset[int]:
    """Ports whose read side effect the device declares neutral for the shadows (it changes no shadowed register's
    readback, of this device or any other), from the devices' optional neutral_read_effects() (offsets)."""
    out: set[int] = set()
    for r in bus.ranges:
        get = getattr(r.device, "neutral_read_effects", None)
        if get is not None:
            out.update(r.base + off for off in get() if 0 <= off < r.length)
    return frozenset(out)


class PvBatch:
    """The batch handler: register at CTRL_BASE..+CTRL_LEN on the bus it replays batches onto."""

    name = "pvbatch"

    def __init__(self, bus: PortBus, mem: GuestMemory):
        self.bus, self.mem = bus, mem
        self.areas: list[_Area] = []
        self.stats = PvBatchStats()
        self._words: dict[int, int] = {}
        self._slots: list[tuple[int, int]] = []          # slot -> (port, doorbell mask)
        self._read_neutral: list[int] = []               # slots whose read effect is neutral (the read_neutral bits)
        self._rules = bytes(P.WRITE_RULE.size * P.SHADOW_SLOTS)
        self._fifo_ports: frozenset[int] = frozenset()
        self._routes: dict[int, tuple[object, int] | None] = {}   # port * 8 + size -> (device, offset) or None
        self._routes_sig: object = ()
        self._checked: dict[int, tuple] = {}    # port << 16 | size << 8 | op -> (device, offset, max value, id, string)
        self.notifier = None   # devices/pvirq.py IrqNotifier: interrupt lines a flush raises go back in the area

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
        """port -> class word, from the devices' declarations; every port a device owns is marked OWNED.  A slot
        goes to each SHADOW read (its shadow) and each DOORBELL_IF write (its doorbell mask and write rule); a
        POSTED port with a write rule becomes DOORBELL_IF with mask 0."""
        words: dict[int, int] = {}
        declared = self.bus.class_map()
        masks, rules = device_doorbell_masks(self.bus), device_write_rules(self.bus)
        neutral_reads, read_neutral = device_neutral_reads(self.bus), []
        slots: list[tuple[int, int]] = []
        fifo: set[int] = set()
        for r in self.bus.ranges:
            if r.device is self:
                continue
            for port in range(r.base, r.base + r.length):
                rc, wc = declared.get(port, (PortClass.STRICT, PortClass.STRICT))
                dev, off = r.device, port - r.base
                mask = masks.get(port, 0) if wc == PortClass.DOORBELL_IF else 0   # a mask needs DOORBELL_IF
                if wc == PortClass.POSTED and port in rules:
                    wc = PortClass.DOORBELL_IF
                if wc == PortClass.DOORBELL_IF and not mask and port not in rules:
                    wc = PortClass.DOORBELL           # neither mask nor rule declared: the safe side
                elif wc not in (PortClass.STRICT, PortClass.POSTED, PortClass.DOORBELL, PortClass.DOORBELL_IF):
                    wc = PortClass.STRICT
                if rc == PortClass.FIFO and not hasattr(dev, "fifo_read"):
                    rc = PortClass.STRICT          # no prefetch: every read is one in-order IN entry
                shadow = rc == PortClass.SHADOW and hasattr(dev, "shadow_read")
                if rc == PortClass.SHADOW and not shadow or rc not in (PortClass.STRICT, PortClass.FIFO,
                                                                       PortClass.SHADOW):
                    rc = PortClass.STRICT
                slot, effect = 0, False
                if shadow or wc == PortClass.DOORBELL_IF:
                    if len(slots) < P.SHADOW_SLOTS:
                        slot = len(slots)
                        slots.append((port, mask if wc == PortClass.DOORBELL_IF else 0))
                        if shadow:
                            probe = getattr(dev, "read_side_effects", None)
                            effect = True if probe is None else bool(probe(off))
                            if effect and port in neutral_reads:
                                read_neutral.append(slot)   # its IN_DISCARD keeps the shadows servable
                    else:
                        rc = PortClass.STRICT if shadow else rc
                        wc = PortClass.DOORBELL if wc == PortClass.DOORBELL_IF else wc
                if not shadow and rc == PortClass.SHADOW:
                    rc = PortClass.STRICT
                if rc == PortClass.FIFO:
                    fifo.add(port)
                words[port] = P.class_word(rc, wc, owned=True, read_effect=effect, slot=slot)
            self._add_banks(r, words, slots, rules)
        self._slots, self._fifo_ports, self._read_neutral = slots, frozenset(fifo), read_neutral
        self._rules = self._rule_records(words, slots, rules)
        return words

    @staticmethod
    def _add_banks(r, words: dict[int, int], slots: list, rules: dict[int, tuple[P.WriteRule, int]]) -> None:
        """Slots for the banks of a BANK rule of this range (P.bank_slot: right after its live slots, which must be
        the device's next `banked` ports, all SHADOW, the last slots so far), filled through the device's
        `bank_shadow_read(bank, offset, size)`.  Without room or that method the rule is not published."""
        dev = r.device
        if not hasattr(dev, "bank_shadow_read"):
            return
        for port in range(r.base, r.base + r.length):
            rule = rules.get(port, (None,))[0]
            if rule is None or rule.op != P.Neutral.BANK or port not in words:
                continue
            own, n = P.split_class_word(words[port])[4], rule.banked & 0xFF
            live = [own + 1 + i for i in range(n)]
            ok = (n > 0 and rule.operand & 0xFF and own + 1 + n == len(slots) and port + n < r.base + r.length
                  and P.bank_slot(own, n, P.bank_count(rule.operand), 0) <= P.SHADOW_SLOTS
                  and all(slots[s][0] == port + 1 + i and P.split_class_word(words[port + 1 + i])[0] == PortClass.SHADOW
                          for i, s in enumerate(live)))
            if ok:
                for bank in range(P.bank_count(rule.operand)):
                    slots.extend((port + 1 + i, 0, bank) for i in range(n))
            return

    @staticmethod
    def _rule_records(words: dict[int, int], slots: list[tuple[int, int]],
                      rules: dict[int, tuple[P.WriteRule, int]]) -> bytes:
        """The write_rules region.  A rule is published only for a DOORBELL_IF port, with its condition's port a
        SHADOW of the same device, and (unless KEEP) its own port a SHADOW; else the write is simply posted."""
        out = bytearray(P.WRITE_RULE.size * P.SHADOW_SLOTS)
        for slot, (port, *bank) in enumerate(slots):
            if bank[1:] or port not in rules:
                continue
            rule, base = rules[port]
            own_rc, wc, _, _, _ = P.split_class_word(words[port])
            cond = words.get(base + rule.cond_offset, 0)
            cond_rc, _, _, _, cond_slot = P.split_class_word(cond)
            if wc != PortClass.DOORBELL_IF or (rule.cond_mask & 0xFF and cond_rc != PortClass.SHADOW):
                continue
            if rule.op != P.Neutral.KEEP and own_rc != PortClass.SHADOW:
                continue
            banked = rule.banked & 0xFF if rule.op == P.Neutral.BANK else 0
            if rule.op == P.Neutral.BANK:
                last = P.bank_slot(slot, banked, P.bank_count(rule.operand), 0) - 1
                if not banked or last >= len(slots) or len(slots[last]) < 3 or slots[last][0] != port + banked:
                    continue            # no bank slots were allocated (_add_banks)
            P.WRITE_RULE.fmt.pack_into(out, slot * P.WRITE_RULE.size, int(rule.op), rule.operand & 0xFF,
                                       cond_slot if rule.cond_mask & 0xFF else 0, rule.cond_mask & 0xFF,
                                       rule.cond_want & 0xFF, rule.value_mask & 0xFF, rule.value_want & 0xFF,
                                       banked)
        return bytes(out)

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
        self._words = self.class_words()
        self._routes, self._checked, self._routes_sig = {}, {}, ()
        self._write(gpa + P.OFF_CLASSES, P.encode_class_table(self._words))
        self._write(gpa + P.OFF_FIFO, bytes(P.FIFO.size))
        masks = bytes(m for _, m, *_ in self._slots) + bytes(P.SHADOW_SLOTS - len(self._slots))
        self._write(gpa + P.OFF_DOORBELL_MASKS, masks)
        self._write(gpa + P.OFF_WRITE_RULES, self._rules)
        self._write(gpa + P.OFF_READ_NEUTRAL, P.read_neutral_bitmap(self._read_neutral))
        area.shadows, area.groups = [], []
        for i, (port, _, *bank) in enumerate(self._slots):
            dev, off = self._owner(port)  # type: ignore[misc]
            rng = next(r for r in self.bus.ranges if r.device is dev and r.base <= port < r.base + r.length)
            is_shadow = P.split_class_word(self._words[port])[0] == PortClass.SHADOW
            sh = _Shadow(port, (_BankView(dev, bank[0]) if bank else dev) if is_shadow else None, off, rng.length)
            area.shadows.append(sh)
            if not area.groups or area.groups[-1].device is not dev:
                declared = getattr(dev, "shadow_sizes", None)   # optional: shadow_read gives None for other sizes
                area.groups.append(_Group(dev, i, [], bool(getattr(dev, "synchronous_shadows", False)),
                                          full_sizes=tuple(t for t in _SIZE_SLOTS if declared is None
                                                           or t[1] in declared)))
            area.groups[-1].shadows.append(sh)
        self._refresh(area)
        for name, value in (("slot", slot), ("count", 0), ("status", Status.OK), ("state", State.ACTIVE)):
            self._set(area, name, int(value))
        return slot

    # --- flush -------------------------------------------------------------------------------------------------
    def flush(self, slot: int) -> None:
        """Validate and replay the batch of area `slot` (one exit)."""
        if not 0 <= slot < len(self.areas):
            raise ProtocolError(f"flush of unknown area slot {slot} ({len(self.areas)} registered)")
        area = self.areas[slot]
        self.stats.flushes += 1
        try:
            entries, touched = self._validate(area, slot)
        except BatchRejected as exc:
            self._set(area, "status", int(exc.status))
            self._set(area, "count", 0)
            h = P.decode_header(self._read(area.gpa, P.HEADER.size))
            self._set(area, "rejected", (h["rejected"] + 1) & 0xFFFFFFFF)
            raise
        notifier = self.notifier
        if notifier is None:
            fifo_port = self._replay(area, entries)
        else:
            notifier.begin(area.gpa, area.irq_lines)
            try:
                fifo_port = self._replay(area, entries)
            finally:
                notifier.end()
        if fifo_port is not None:
            self._refill(area, fifo_port)
        # An empty batch (a tick or an idle hlt) refreshes every shadow: it is how a guest polling a shadow sees
        # a device change; a non-empty one only the devices it touched and those whose shadows are not synchronous
        # (and all of them when refresh() was deferred to this flush).
        full = not entries or area.refresh_due
        area.refresh_due = False
        self._refresh(area, None if full else touched)
        mem, gpa = self.mem, area.gpa
        mem.write(gpa + _OFF_COUNT, _ZERO32)
        mem.write(gpa + _OFF_NEUTRAL, _ZERO32)
        mem.write(gpa + _OFF_STAGED, _ZERO32)
        mem.write(gpa + _OFF_STATUS, _ZERO32)

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
            # An (op, port, size) that passed every check before: only the value (and a string's range) is left.
            hit = checked.get(port << 16 | size << 8 | op)
            if hit is not None and value <= hit[2]:
                if not hit[4]:
                    touched.add(hit[3])
                    append((op, hit[0], hit[1], size, value, gpa, port))
                    continue
                if value and gpa + value * size <= ram:
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
                string_bytes += value * size
            key = port * 8 + size
            route = routes.get(key, _UNRESOLVED)
            if route is _UNRESOLVED:
                route = routes[key] = self._resolve(port, size)
            if route is None:
                raise BatchRejected(Status.BAD_ENTRY, f"entry {i}: port {port:#x} (size {size}) is not owned "
                                    "by one device")
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

    def _replay(self, area: _Area, entries: list[tuple]) -> tuple[int, int] | None:
        """Run the entries in order; returns (port, size) if the last FIFO-class read was an IN, for the refill."""
        fifo, fifo_ports = None, self._fifo_ports
        self.stats.entries += len(entries)
        for i, (op, dev, off, size, value, gpa, port) in enumerate(entries):
            if op == _OUT:
                dev.io_write(off, size, value)
                continue
            if op == _IN:
                v = dev.io_read(off, size) & _MASKS[size]
                self._write(area.gpa + P.OFF_ENTRIES + i * P.ENTRY.size + 4, _U32.pack(v))
            elif op == _IN_DISCARD:
                dev.io_read(off, size)
                continue
            elif op == _OUTS:
                data = self._read(gpa, value * size)
                write_many = getattr(dev, "write_many", None)
                if write_many is not None:
                    write_many(off, size, data)
                else:
                    for k in range(0, len(data), size):
                        dev.io_write(off, size, int.from_bytes(data[k:k + size], "little"))
                continue
            else:   # INS
                read_many = getattr(dev, "read_many", None)   # optional: the same values and effects, as bytes
                if read_many is not None:
                    self._write(gpa, read_many(off, size, value)[: value * size])
                else:
                    vals = self._read_many(port, size, value)
                    self._write(gpa, struct.pack(f"<{len(vals)}{'?BH?I'[size]}", *vals))   # values are masked
            if port in fifo_ports:
                # Prefetch after a single read only: an INS took exactly what the guest asked for, and the device's
                # "current block" after it may be one the guest has not started (docs/protocol.md).
                fifo = (port, size) if op == _IN else None
        return fifo
    def _read_many(self, port: int, size: int, n: int) -> list[int]:
        """n reads of port, in bulk through the device's fifo_read while it hands values."""
        vals: list[int] = []
        hit = self._owner(port)
        fifo_read = getattr(hit[0], "fifo_read", None) if hit else None
        while len(vals) < n:
            got = fifo_read(hit[1], size, n - len(vals)) if fifo_read else []
            if not got:
                fifo_read = None
                vals.append(self.bus.read(port, size))
            else:
                mask = (1 << (8 * size)) - 1
                vals += [v & mask for v in got[: n - len(vals)]]
        return vals

    def _refill(self, area: _Area, fifo: tuple[int, int] | None) -> None:
        """After an IN/INS on a FIFO port: prefetch the values the device promises the guest reads next."""
        port, size, _, count, head, _ = _FIFO_HDR.unpack(self._read(area.gpa + P.OFF_FIFO, P.FIFO.size))
        if fifo is None or head < count:
            return          # no FIFO read in this batch, or values still unread: keep them
        hit = self._owner(fifo[0])
        vals = hit[0].fifo_read(hit[1], fifo[1], P.FIFO_CAPACITY) if hit else []  # type: ignore[union-attr]
        vals = list(vals)[: P.FIFO_CAPACITY]
        mask = (1 << (8 * fifo[1])) - 1
        self._write(area.gpa + P.OFF_FIFO_VALUES, struct.pack(f"<{len(vals)}I", *(v & mask for v in vals)))
        self._write(area.gpa + P.OFF_FIFO, _FIFO_HDR.pack(fifo[0], fifo[1], 0, len(vals), 0, 0))
        if vals:
            self.stats.fifo_refills += 1

    def _refresh(self, area: _Area, touched: set | None = None) -> None:
        """Rewrite the shadows of the devices in `touched` and of every device whose shadows are not synchronous;
        all of them when touched is None.  Always written: the guest updates the shadows of neutral writes."""
        full = touched is None
        for g in area.groups:
            if not full and g.synchronous and id(g.device) not in touched:
                continue
            data = None
            if not full and g.byte_offsets is not None:
                data = self._block_group(g) if g.runs is not None else None
                if data is None:
                    data = self._byte_group(g)
            if data is None:
                data = b"".join([self._shadow_bytes(s, full, g.full_sizes) for s in g.shadows])
                if full:
                    self._plan_group(g)
            self._write(area.gpa + P.OFF_SHADOWS + g.first * P.SHADOW.size, data)
            self.stats.shadow_writes += 1

    @staticmethod
    def _plan_group(g: _Group) -> None:
        """After a full refresh: a group whose every shadow had a byte value only gets the fast partial path."""
        key = tuple(s.sizes for s in g.shadows)
        if key == g.plan_key:
            return
        g.plan_key = key
        # A slot with no value at all (an unpublished bank) stays invalid without a read.
        live = [s for s in g.shadows if s.sizes]
        if live and all(s.device is not None and s.sizes in ((), _SIZE_SLOTS[:1]) for s in g.shadows):
            g.byte_offsets = [s.offset for s in live]
            g.args = [x for s in g.shadows for x in (s.port, 1 if s.sizes else 0, 0, 0, 0, 0)]
            g.pack = struct.Struct("<" + "HBBIII" * len(g.shadows)).pack
            # bound once: no proxy lookups (a bank slot reads through its _BankView)
            g.read = [s.device.shadow_read for s in live]   # type: ignore[union-attr]
            g.arg_index = [3 + 6 * i for i, s in enumerate(g.shadows) if s.sizes]
            PvBatch._plan_blocks(g)
        else:
            g.byte_offsets, g.runs = None, None

    @staticmethod
    def _plan_blocks(g: _Group) -> None:
        """For a device with `shadow_block`: the group's slots as runs of consecutive offsets of one bank (a
        _BankView's, or None: the live registers) read with one call each, and runs of slots with no value."""
        if getattr(g.device, "shadow_block", None) is None:
            g.runs = None
            return
        runs: list = []
        for s in g.shadows:
            if not s.sizes:
                if runs and isinstance(runs[-1], bytes):
                    runs[-1] += bytes(1)
                else:
                    runs.append(bytes(1))
                continue
            bank = s.device.bank if isinstance(s.device, _BankView) else None
            last = runs[-1] if runs else None
            if isinstance(last, list) and last[0] == bank and last[1] + last[2] == s.offset:
                last[2] += 1
            else:
                runs.append([bank, s.offset, 1])
        g.runs = [r if isinstance(r, bytes) else tuple(r) for r in runs]
        g.block = g.device.shadow_block  # type: ignore[attr-defined]   # bound once, as g.read
        blank = list(g.args)
        for k in g.arg_index:
            blank[k] = 0
        g.template = g.pack(*blank)

    @staticmethod
    def _block_group(g: _Group) -> bytearray | None:
        """The group's records from one shadow_block call per run; None when a block has no value (the per-register
        path then decides, slot by slot)."""
        block = g.block
        parts = []
        try:
            for r in g.runs:  # type: ignore[union-attr]
                if r.__class__ is bytes:
                    parts.append(r)
                    continue
                b = block(*r)
                if b is None:
                    return None
                parts.append(b)
            out = bytearray(g.template)
            out[_SHADOW_VAL::P.SHADOW.size] = b"".join(parts)   # ValueError: a block of the wrong size
        except (PvgenError, ValueError, TypeError):
            return None
        return out

    @staticmethod
    def _byte_group(g: _Group) -> bytes | None:
        """The group's records from one byte read per shadow; None when a read has no value (the generic path)."""
        args = g.args
        try:
            for read, off, k in zip(g.read, g.byte_offsets, g.arg_index):  # type: ignore[arg-type]
                v = read(off, 1)
                if v is None:
                    return None
                args[k] = v & 0xFF
        except PvgenError:
            return None
        return g.pack(*args)

    @staticmethod
    def _shadow_bytes(s: _Shadow, full: bool, full_sizes: tuple = _SIZE_SLOTS) -> bytes:
        """One shadow record.  A full refresh asks every access size (that the device's optional `shadow_sizes`
        does not rule out); a partial one only the sizes that had a value at the last full refresh (a size left
        out is marked invalid: the guest reads it with an exit)."""
        if s.device is None:
            return _SHADOW_PACK(s.port, 0, 0, 0, 0, 0)
        valid, vals = 0, [0, 0, 0]
        sizes = full_sizes if full else s.sizes
        found = []
        for i, size, mask in sizes:
            if s.offset + size > s.length:
                continue
            try:
                v = s.device.shadow_read(s.offset, size)  # type: ignore[attr-defined]
            except PvgenError:
                continue
            if v is not None:
                valid |= 1 << i
                vals[i] = v & mask
                found.append((i, size, mask))
        if full:
            s.sizes = tuple(found)
        return _SHADOW_PACK(s.port, valid, 0, *vals)

    def refresh(self) -> None:
        """Bring every area's shadows up to date (call after an asynchronous device event: a device whose
        `synchronous_shadows` is true promises its shadow values change only through its port accesses or an
        event followed by this call, so a flush that does not touch it skips it).  An area with entries queued is
        refreshed by its next flush instead: its shadows hold the guest's neutral writes, which the devices have not
        seen yet (the guest serves no shadow until then unless every queued entry is neutral)."""
        for area in self.areas:
            try:
                if _U32.unpack(self._read(area.gpa + _OFF_COUNT, 4))[0]:
                    area.refresh_due = True
                else:
                    self._refresh(area)
            except ProtocolError as exc:
                self.stats.record(exc)
