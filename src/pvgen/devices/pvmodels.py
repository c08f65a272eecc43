"""pvmodels: the monitor side of the in-guest device models (protocol v5, docs/protocol.md "In-guest device models").

From the devices' declarations (pvgen/modeldecl.py) it plans which ports the runtime must see (`plan_ports`,
before the slots are given out), builds the records registration publishes (`build`: latches, command rules,
transfer engines, interrupt rules, an index file), brings their dynamic part up to date after every flush
(`ModelSet.refresh`: latch values, engine states, windows and mirrors, interrupt levels, index entries), and checks
what the guest claims when its SERVED_* entries are replayed (`check_position`, `check_window`,
`may_take_writes`).  Anything a
declaration asks that cannot be published exactly is left out: the guest then exits, as without models.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from pvgen import protocol as P
from pvgen.modeldecl import CommandRule, Cond, EngineDecl, EngineNow, Reg
from pvgen.protocol import EngineKind, EngineState, PortClass

NO = P.NO_REF
_LATCH = P.LATCH.fmt
_IRQ = P.IRQ_RULE.fmt
_OFF_E_STATE = P.ENGINE.field("state")[0]
_OFF_E_MEM_OFF = P.ENGINE.field("mem_off")[0]
_OFF_E_MEM_BASE = P.ENGINE.field("mem_base")[0]
_OFF_E_FLAGS = P.ENGINE.field("flags")[0]
_OFF_E_DONE = P.ENGINE.field("done_slot")[0]
_U32 = struct.Struct("<I")
_OFF_R_XMIN = P.CMD_RULE.field("xmin")[0]
assert P.CMD_RULE.field("xmax")[0] == _OFF_R_XMIN + 4
_U32X2 = struct.Struct("<II")
_OFF_E_ADDR = P.ENGINE.field("addr")[0]
_OFF_E_WRAP = P.ENGINE.field("wrap_at")[0]
_OFF_E_SEQ = P.ENGINE.field("seq")[0]


@dataclass
class _Engine:
    dev: object
    index: int                 # the device's engine index
    decl: EngineDecl
    port: int
    mem_off: int               # area offset of its memory
    seq: int = 0               # WINDOW: the arm number published with each window
    done_bytes: bytes = b""    # the declared completion effects as published (done_slot, done_and, done_or)
    flags: int = 0             # the record's flags as published (a command rule may change them in the guest)
    write_armed: bool = False  # WINDOW: the last refresh armed it for writing (the guest may take the data)
    # bound once (the replay's hot path): the device's optional methods, looked up through any wrapper
    position: object = None    # engine_position(i) -> (EngineState, addr, count), or engine_state
    read_many: object = None
    write_many: object = None
    engine_write: object = None

    def __post_init__(self) -> None:
        dev = self.dev
        self.position = getattr(dev, "engine_position", None)
        self.read_many = getattr(dev, "read_many", None)
        self.write_many = getattr(dev, "write_many", None)
        self.engine_write = getattr(dev, "engine_write", None)


@dataclass
class _Irq:
    dev: object
    index: int
    status_slot: int
    mask_latch: int
    mask: int
    cond: tuple[int, int, int]   # (slot, mask, want)


@dataclass
class _Ix:
    dev: object
    index: int
    base: int
    index_port: int
    data_port: int
    data_len: int
    index_size: int
    key_mask: int


@dataclass
class ModelStats:
    served_in: int = 0         # accesses replayed from SERVED_IN entries
    served_out: int = 0
    mismatches: int = 0        # a claim the device contradicts (must stay 0)
    irq_marks: int = 0
    errors: list[str] = field(default_factory=list)

    def mismatch(self, msg: str) -> None:
        self.mismatches += 1
        self.errors = (self.errors + [msg])[-16:]


def _is(bus_device, device) -> bool:
    """Whether a bus range's device is `device`, or a wrapper forwarding to it (a recorder, the bench's pacer):
    the device behind a wrapper is the owner of its forwarded bound methods."""
    return bus_device is device or getattr(getattr(bus_device, "port_classes", None), "__self__", None) is device


def _ranges_with(bus, method: str):
    for r in bus.ranges:
        get = getattr(r.device, method, None)
        if get is not None:
            yield r, get


def plan_ports(bus, monitor: object = None) -> tuple[set[int], set[int]]:
    """(ports whose writes the runtime must see on its slow path, data ports whose reads an engine may serve):
    latch ports, command-rule ports, engine data and command ports, index ports."""
    writes: set[int] = set()
    reads: set[int] = set()
    for r in bus.ranges:
        dev = r.device
        if dev is monitor:
            continue
        for method in ("latches", "command_rules", "engines", "index_files"):
            if getattr(dev, method, None) is None:
                continue
            try:
                items = getattr(dev, method)()
            except Exception:   # noqa: BLE001 - a device's declaration must not take the monitor down
                continue
            if method == "latches":
                writes.update(r.base + off for off in items if isinstance(off, int) and 0 <= off < r.length)
            elif method == "command_rules":
                writes.update(r.base + c.offset for c in items if 0 <= c.offset < r.length)
            elif method == "engines":
                for e in items:
                    if 0 <= e.data_offset < r.length:
                        writes.add(r.base + e.data_offset)
                        reads.add(r.base + e.data_offset)
                    if e.cmd_offset is not None and 0 <= e.cmd_offset < r.length:
                        writes.add(r.base + e.cmd_offset)
            else:
                writes.update(r.base + f.index_offset for f in items if 0 <= f.index_offset < r.length)
    return writes, reads


class ModelSet:
    """The published in-guest models of one area's bus: records written at registration, refreshed after flushes."""

    def __init__(self) -> None:
        self.latches: list[tuple[object, int, int]] = []        # latch index -> (device, offset, port)
        self.engines: list[_Engine] = []
        self.irqs: list[_Irq] = []
        self.ix: _Ix | None = None
        self.cmd_records: list[bytes] = []
        self.rule_groups: list[tuple] = []   # (device, first record, records, dynamic)
        self._engine_records: list[dict] = []
        self._irq_devs: set[int] = set()
        self.windows: dict[int, bytes] = {}  # area offset -> window bytes published there (the replay's check)
        self._rule_cache: dict[int, tuple] = {}   # id(device) -> (command_rules_key(), published records)
        self._ports: dict[tuple, int | None] = {}  # (id(device), offset) -> port, for this publication's bus
        self._shape_cache: dict[tuple, bytes] = {}  # a rule's shape -> its record (_rule_record_cached)
        self._published_rules: dict[int, bytes] = {}   # first record -> the command-rule records written there
        self._ix_cache: tuple | None = None  # (index_entries_key(), count, entries published); None: not published
        self.stats = ModelStats()

    @property
    def active(self) -> bool:
        return bool(self.latches or self.engines or self.irqs or self.cmd_records or self.ix)

    # --- resolving a declaration's registers against this bus's publication -----------------------------------
    def _port_of(self, reg: Reg, dev) -> int | None:
        d = reg.device if reg.device is not None else dev
        key = (id(d), reg.offset)
        if key not in self._ports:
            self._ports[key] = next((r.base + reg.offset for r in self._bus.ranges
                                     if _is(r.device, d) and 0 <= reg.offset < r.length), None)
        return self._ports[key]

    def _shadow_slot(self, reg: Reg, dev) -> int | None:
        port = self._port_of(reg, dev)
        if port is None or port not in self._live:
            return None
        if (self._words.get(port, 0) >> P.CLS_READ_SHIFT) & P.CLS_CLASS_MASK != PortClass.SHADOW:
            return None
        return self._live[port]

    def _bus_dev(self, d):
        """The device on the bus that is `d` or wraps it (latches are keyed by the bus's device objects)."""
        return next((r.device for r in self._bus.ranges if _is(r.device, d)), d)

    def _latch(self, dev, key) -> int | None:
        return None if key is None else self._latch_of.get((id(self._bus_dev(dev)), key))

    def _cond(self, c: Cond | None, dev) -> tuple[int, int, int, int, int] | None:
        """(kind, a, b, x, y), or None when it cannot be published."""
        if c is None:
            return (P.COND_NONE, 0, 0, 0, 0)
        if c.kind == "shadow":
            s = self._shadow_slot(c.reg, dev)
            return None if s is None else (P.COND_SHADOW, s, 0, c.x & 0xFF, c.y & 0xFF)
        if c.kind == "latch":
            lt = self._latch(c.reg.device or dev, c.reg.offset)
            return None if lt is None else (P.COND_LATCH, lt, 0, c.x & 0xFF, c.y & 0xFF)
        if c.kind == "range":
            lo = self._latch(c.reg.device or dev, c.reg.offset)
            hi = NO if c.reg2 is None else self._latch(c.reg2.device or dev, c.reg2.offset)
            if lo is None or hi is None:
                return None
            return (P.COND_RANGE, lo, hi, c.x & 0xFFFF, c.y & 0xFFFF)
        return None

    def _effects(self, effs, dev) -> list[tuple[int, int, int]] | None:
        out = []
        for e in effs:
            s = self._shadow_slot(e.reg, dev)
            if s is None:
                return None
            out.append((s, e.and_mask & 0xFF, e.or_bits & 0xFF))
        return out if len(out) <= P.EFFECT_COUNT else None

    # --- building the records ---------------------------------------------------------------------------------
    @classmethod
    def build(cls, bus, words: dict[int, int], slots: list[tuple], owner, *, irq_lines: int = 0,
              monitor: object = None) -> "ModelSet":
        """The models `bus`'s devices declare that can be published exactly with these class `words` and
        `slots` (pvpublish); `irq_lines`: the lines the area takes as notifications (0: no interrupt rules)."""
        ms = cls()
        ms._bus, ms._words = bus, words
        ms._live = {port: i for i, (port, *bank) in enumerate(slots) if not bank[1:]}
        ms._latch_of = {}                       # (id(device), key) -> latch index
        for r, get in _ranges_with(bus, "latches"):
            if r.device is monitor:
                continue
            for key in sorted(get(), key=lambda k: (not isinstance(k, int), str(k))):
                if isinstance(key, int):
                    port = r.base + key
                    wc = P.split_class_word(words.get(port, 0))[1]
                    if not 0 <= key < r.length or wc == PortClass.POSTED:
                        continue      # a posted write would change it behind the runtime's back
                else:
                    port = 0          # a latch with no port: only command rules set it
                if len(ms.latches) >= P.LATCH_COUNT:
                    continue
                ms._latch_of[(id(r.device), key)] = len(ms.latches)
                ms.latches.append((r.device, key, port))

        # engines: memory placed in engine_mem (8-byte aligned), records built from the latches and slots above
        mem_next = 0
        ms._engine_of = {}                      # (id(device), index) -> engine index
        for r, get in _ranges_with(bus, "engines"):
            dev = r.device
            if dev is monitor:
                continue
            for i, d in enumerate(get()):
                port = r.base + d.data_offset
                rc, wc = P.split_class_word(words.get(port, 0))[:2]
                if len(ms.engines) >= P.ENGINE_COUNT or rc != PortClass.ENGINE or wc != PortClass.DOORBELL_IF:
                    continue
                if d.mem_len <= 0 or mem_next + d.mem_len > P.ENGINE_MEM_SIZE:
                    continue
                if d.kind == EngineKind.WINDOW and any(u not in (0, s) for u, s in zip(d.units, P.SIZES)):
                    continue      # a window moves exactly the access's bytes (no wrap, no padding)
                if d.kind == EngineKind.DMA:
                    need = [d.addr_latches, d.count_latches]
                    if d.cmd_offset is None or any(x is None for x in need) or any(
                            ms._latch(dev, off) is None for pair in need for off in pair):
                        continue
                    if d.wrap_latches is not None and any(ms._latch(dev, off) is None for off in d.wrap_latches):
                        continue
                rec = ms._engine_record(d, dev, port, P.OFF_ENGINE_MEM + mem_next)
                if rec is None:
                    continue
                ms._engine_of[(id(dev), i)] = len(ms.engines)
                ms.engines.append(_Engine(dev, i, d, port, P.OFF_ENGINE_MEM + mem_next,
                                          done_bytes=bytes(rec["done_slot"] + rec["done_and"] + rec["done_or"]),
                                          flags=rec["flags"]))
                ms._engine_records.append(rec)
                mem_next += (d.mem_len + 7) & ~7

        # interrupt rules: only for lines the area takes as notifications
        ms._irq_devs = set()
        for r, get in _ranges_with(bus, "irq_rules"):
            dev = r.device
            if dev is monitor or not irq_lines:
                continue
            for i, rule in enumerate(get()):
                st = ms._shadow_slot(Reg(rule.status), dev)
                ml = ms._latch(dev, rule.mask_latch)
                c = ms._cond(rule.cond, dev)
                if st is None or ml is None or c is None or c[0] != P.COND_SHADOW or len(ms.irqs) >= P.IRQ_RULE_COUNT:
                    continue
                ms.irqs.append(_Irq(dev, i, st, ml, rule.mask & 0xFF, (c[1], c[3], c[4])))
                ms._irq_devs.add(id(dev))

        # command rules: each device keeps the records it had room for (command_rule_capacity, for dynamic ones)
        for r, get in _ranges_with(bus, "command_rules"):
            dev = r.device
            if dev is monitor:
                continue
            recs = [x for x in (ms._rule_record(rule, dev) for rule in get()) if x is not None]
            cap = max(len(recs), getattr(dev, "command_rule_capacity", 0))
            cap = min(cap, P.CMD_RULE_COUNT - len(ms.cmd_records))
            if cap <= 0:
                continue
            dynamic = bool(getattr(dev, "dynamic_command_rules", False))
            ms.rule_groups.append((dev, len(ms.cmd_records), cap, dynamic))
            ms.cmd_records += (recs + [bytes(P.CMD_RULE.size)] * cap)[:cap]

        # the index file (one)
        for r, get in _ranges_with(bus, "index_files"):
            if r.device is monitor or ms.ix is not None:
                continue
            for i, f in enumerate(get()):
                ip, dp = r.base + f.index_offset, r.base + f.data_offset
                if P.split_class_word(words.get(ip, 0))[1] != PortClass.DOORBELL_IF or f.index_size not in P.SIZES:
                    continue
                ms.ix = _Ix(r.device, i, r.base, ip, dp, f.data_len, f.index_size, f.key_mask)
                break
        return ms

    def _rule_record_cached(self, rule: CommandRule, dev) -> bytes | None:
        """_rule_record, reusing the record of a rule that differs only in its wide condition's bounds (the ATA
        read-ahead's LBA moves at every read): the bounds are patched into it."""
        def reg(r):
            return None if r is None else (id(r.device), r.offset)
        shape = (id(dev), rule.offset, rule.value_mask, rule.value_want, rule.own_mask, rule.own_and, rule.engine,
                 int(rule.engine_state), rule.needs_irq_rules, rule.window_count, rule.count_reg,
                 rule.window_offset, rule.stage, rule.sets_latch,
                 tuple((c.kind, reg(c.reg), c.x, c.y, reg(c.reg2)) for c in rule.conds),
                 tuple((reg(e.reg), e.and_mask, e.or_bits) for e in rule.effects),
                 None if rule.wide is None else (rule.wide.regs, rule.wide.mask))
        rec = self._shape_cache.get(shape)
        if rec is None:
            rec = self._rule_record(rule, dev)
            if rec is None:
                return None
            self._shape_cache[shape] = rec
        if rule.wide is not None:
            rec = bytearray(rec)
            _U32X2.pack_into(rec, _OFF_R_XMIN, rule.wide.lo & 0xFFFFFFFF, rule.wide.hi & 0xFFFFFFFF)
            rec = bytes(rec)
        return rec

    def _rule_record(self, rule: CommandRule, dev) -> bytes | None:
        """The CMD_RULE record of one declaration, or None when part of it cannot be published."""
        port = self._port_of(Reg(rule.offset), dev)
        if port is None or port not in self._live:
            return None
        if (self._words.get(port, 0) >> P.CLS_WRITE_SHIFT) & P.CLS_CLASS_MASK not in (PortClass.DOORBELL_IF,
                                                                                        PortClass.DOORBELL):
            return None       # the runtime's slow path sees these writes (a POSTED port with a rule is DOORBELL_IF)
        if rule.needs_irq_rules and id(dev) not in self._irq_devs:
            return None
        conds = [self._cond(c, dev) for c in rule.conds]
        effs = self._effects(rule.effects, dev)
        if any(c is None for c in conds) or len(conds) > P.COND_COUNT or effs is None:
            return None
        eng, win_count, win_mem, count_slot = NO, 0, 0, NO
        if rule.engine is not None:
            eng = self._engine_of.get((id(dev), rule.engine), NO)
            if eng == NO:
                return None
            e = self.engines[eng]
            if e.decl.kind == EngineKind.WINDOW:
                win_count = rule.window_count
                if not win_count or rule.window_offset < 0 or rule.window_offset >= e.decl.mem_len:
                    return None
                win_mem = e.mem_off + rule.window_offset
                if rule.count_reg is not None:
                    count_slot = self._shadow_slot(Reg(rule.count_reg), dev)
                    if count_slot is None:
                        return None
                    if rule.window_offset + win_count * 255 > e.decl.mem_len:
                        return None   # every count the register can hold must fit
                elif rule.window_offset + win_count > e.decl.mem_len:
                    return None
        xslot, xmask, xmin, xmax = [NO] * 4, 0, 0, 0
        if rule.wide is not None:
            slots = [self._shadow_slot(Reg(o), dev) for o in rule.wide.regs]
            if None in slots or not 1 <= len(slots) <= 4:
                return None
            xslot[:len(slots)] = slots
            xmask, xmin, xmax = rule.wide.mask & 0xFFFFFFFF, rule.wide.lo & 0xFFFFFFFF, rule.wide.hi & 0xFFFFFFFF
        latch_set, latch_value = NO, 0
        if rule.sets_latch is not None:
            latch_set = self._latch(dev, rule.sets_latch[0])
            if latch_set is None:
                return None
            latch_value = rule.sets_latch[1] & 0xFF
        conds += [(P.COND_NONE, 0, 0, 0, 0)] * (P.COND_COUNT - len(conds))
        effs += [(NO, 0, 0)] * (P.EFFECT_COUNT - len(effs))
        return P.CMD_RULE.pack(
            port=port, value_mask=rule.value_mask & 0xFF, value_want=rule.value_want & 0xFF,
            own_mask=rule.own_mask & 0xFF, own_and=rule.own_and & 0xFF, engine=eng,
            engine_state=int(rule.engine_state),
            cond_kind=tuple(c[0] for c in conds), cond_a=tuple(c[1] for c in conds),
            cond_b=tuple(c[2] for c in conds), cond_x=tuple(c[3] for c in conds),
            cond_y=tuple(c[4] for c in conds), eff_slot=tuple(e[0] for e in effs),
            eff_and=tuple(e[1] for e in effs), eff_or=tuple(e[2] for e in effs), xslot=tuple(xslot),
            xmask=xmask, xmin=xmin, xmax=xmax, win_count=win_count, win_mem=win_mem, count_slot=count_slot,
            latch_set=latch_set, latch_value=latch_value, flags=1 if rule.stage else 0)

    def _engine_record(self, d: EngineDecl, dev, port: int, mem_off: int) -> dict | None:
        """The static ENGINE record of one declaration, or None when part of it cannot be published."""
        serve, done_c = self._cond(d.serve_cond, dev), self._cond(d.done_cond, dev)
        done = self._effects(d.done, dev)
        addr_slots = [NO if o is None else self._shadow_slot(Reg(o), dev) for o in d.addr_regs]
        if serve is None or done_c is None or done is None or None in addr_slots:
            return None

        def lat(pair):
            return (NO, NO) if pair is None else tuple(self._latch(dev, o) for o in pair)
        deps = 0
        for o in (*d.dep_latches, *(d.count_latches or ()), *(d.wrap_latches or ())):
            li = self._latch(dev, o)
            if li is not None:
                deps |= 1 << li
        done += [(NO, 0, 0)] * (P.EFFECT_COUNT - len(done))
        cmd = self._port_of(Reg(d.cmd_offset), dev) if d.cmd_offset is not None else 0
        return dict(
            port=port, kind=int(d.kind), state=0, unit=(*(u & 0xFF for u in d.units), 0), mem_off=mem_off,
            mem_base=d.mem_base if d.kind == EngineKind.DMA else 0, mem_len=d.mem_len,
            addr_mask=d.addr_mask & 0xFFFFFFFF, dep_latches=deps, addr_latch=lat(d.addr_latches),
            count_latch=lat(d.count_latches), wrap_latch=lat(d.wrap_latches), wrap_shift=d.wrap_shift,
            flags=1 if d.saturate else 0, addr_slot=tuple(addr_slots), done_slot=tuple(x[0] for x in done),
            done_and=tuple(x[1] for x in done), done_or=tuple(x[2] for x in done),
            cond_kind=(serve[0], done_c[0]), cond_a=(serve[1], done_c[1]), cond_b=(serve[2], done_c[2]),
            cond_x=(serve[3], done_c[3]), cond_y=(serve[4], done_c[4]), cmd_port=cmd or 0)

    # --- writing them -------------------------------------------------------------------------------------------
    def publish(self, write, gpa: int) -> None:
        """The static records (registration): every region written whole, unused records zero."""
        lat = b"".join(_LATCH.pack(port, 0, 0) for _, _, port in self.latches)
        write(gpa + P.OFF_LATCHES, lat.ljust(P.LATCH.size * P.LATCH_COUNT, b"\0"))
        eng = b"".join(P.ENGINE.pack(**rec) for rec in self._engine_records)
        write(gpa + P.OFF_ENGINES, eng.ljust(P.ENGINE.size * P.ENGINE_COUNT, b"\0"))
        write(gpa + P.OFF_CMD_RULES, b"".join(self.cmd_records).ljust(P.CMD_RULE.size * P.CMD_RULE_COUNT, b"\0"))
        self._published_rules = {first: b"".join(self.cmd_records[first:first + cap])   # dynamic ones: refresh
                                 for _, first, cap, _ in self.rule_groups}
        irq = b"".join(_IRQ.pack(0, 0, 0, q.status_slot, q.mask_latch, q.mask, *q.cond, *bytes(7))
                       for q in self.irqs)
        write(gpa + P.OFF_IRQ_RULES, irq.ljust(P.IRQ_RULE.size * P.IRQ_RULE_COUNT, b"\0"))
        ix, self._ix_cache = self.ix, None     # the entries follow at the first refresh
        write(gpa + P.OFF_IX_FILE, P.IX_FILE.pack(
            index_port=ix.index_port, data_port=ix.data_port, data_len=ix.data_len, index_size=ix.index_size,
            key_mask=ix.key_mask & 0xFFFFFFFF) if ix else bytes(P.IX_FILE.size))
        write(gpa + P.OFF_ENGINE_MEM, bytes(P.ENGINE_MEM_SIZE))
        for e in self.engines:
            if e.decl.kind == EngineKind.DMA:     # the whole mirror once; then what changed
                take = getattr(e.dev, "mirror_take_dirty", None)
                if take is not None:
                    take(e.index)
                self._mirror(write, gpa, e, e.decl.mem_base, e.decl.mem_base + e.decl.mem_len)

    def models_word(self) -> int:
        """header.models: bit 0 latches/rules/engines/interrupt rules, bit 1 an index file."""
        return (1 if (self.latches or self.engines or self.irqs or self.cmd_records) else 0) | (2 if self.ix else 0)

    def _mirror(self, write, gpa: int, e: _Engine, lo: int, hi: int) -> None:
        base, n = e.decl.mem_base, e.decl.mem_len
        lo, hi = max(lo, base), min(hi, base + n)
        if lo >= hi:
            return
        data = e.dev.mirror_bytes(e.index, lo, hi)
        write(gpa + e.mem_off + (lo - base), bytes(data[: hi - lo]))

    def refresh(self, write, read, gpa: int, touched: set | None, fifo_busy: int | None) -> None:
        """The dynamic part after a flush (or registration): of the devices in `touched` (None: all).
        `fifo_busy`: a port with FIFO values the guest has not read (its engine stays idle: order)."""
        for dev, first, entries in self._latch_groups():
            if touched is not None and id(dev) not in touched:
                continue
            vals = dev.latches()
            write(gpa + P.OFF_LATCHES + first * P.LATCH.size, b"".join(
                _LATCH.pack(port, 0 if vals.get(off) is None else 1, (vals.get(off) or 0) & 0xFF)
                for off, port in entries))
        for dev, first, cap, dynamic in self.rule_groups:
            if not dynamic or (touched is not None and id(dev) not in touched):
                continue
            keyf = getattr(dev, "command_rules_key", None)   # optional: what command_rules() depends on
            key = keyf() if keyf is not None else None
            cached = self._rule_cache.get(id(dev))
            if key is None or cached is None or cached[0] != key:
                recs = [x for x in (self._rule_record_cached(rule, dev) for rule in dev.command_rules())
                        if x is not None]
                cached = (key, b"".join((recs + [bytes(P.CMD_RULE.size)] * cap)[:cap]))
                self._rule_cache[id(dev)] = cached
            write(gpa + P.OFF_CMD_RULES + first * P.CMD_RULE.size, cached[1])
            self._published_rules[first] = cached[1]
        for k, e in enumerate(self.engines):
            if touched is not None and id(e.dev) not in touched:
                continue
            self._refresh_engine(write, gpa, k, e, fifo_busy)
        for k, q in enumerate(self.irqs):
            if touched is not None and id(q.dev) not in touched:
                continue
            st = q.dev.irq_rule_state(q.index)
            off = gpa + P.OFF_IRQ_RULES + k * P.IRQ_RULE.size
            if st is None:
                write(off + 1, b"\0")
            else:
                line, level = st
                write(off, bytes((line & 0xFF, 1, 1 if level else 0)))
        ix = self.ix
        if ix is not None and (touched is None or id(ix.dev) in touched):
            keyf = getattr(ix.dev, "index_entries_key", None)   # optional: what index_entries() depends on
            key = keyf(ix.index) if keyf is not None else None
            cached = self._ix_cache
            if key is None or cached is None or cached[0] != key:
                entries = sorted(ix.dev.index_entries(ix.index).items())[: P.IX_ENTRY_COUNT]
                cached = self._ix_cache = (key, len(entries), b"".join(
                    P.IX_ENTRY.fmt.pack(k & 0xFFFFFFFF, v & 0xFFFFFFFF) for k, v in entries))
                write(gpa + P.OFF_IX_ENTRIES, cached[2])
                write(gpa + P.OFF_IX_FILE + P.IX_FILE.field("entries")[0], struct.pack("<I", cached[1]))
            cur = ix.dev.index_latch(ix.index)
            write(gpa + P.OFF_IX_FILE + P.IX_FILE.field("valid")[0], bytes((0 if cur is None else 1,)))
            write(gpa + P.OFF_IX_FILE + P.IX_FILE.field("latch")[0], struct.pack("<I", (cur or 0) & 0xFFFFFFFF))

    def _latch_groups(self) -> list[tuple[object, int, list[tuple[int, int]]]]:
        """The latches by device: (device, first latch index, [(offset, port)]); a device's are contiguous."""
        groups = getattr(self, "_groups", None)
        if groups is None:
            groups = []
            for i, (dev, off, port) in enumerate(self.latches):
                if groups and groups[-1][0] is dev:
                    groups[-1][2].append((off, port))
                else:
                    groups.append((dev, i, [(off, port)]))
            self._groups = groups
        return groups

    def _refresh_engine(self, write, gpa: int, k: int, e: _Engine, fifo_busy: int | None) -> None:
        d, dev = e.decl, e.dev
        rec = gpa + P.OFF_ENGINES + k * P.ENGINE.size
        if d.kind == EngineKind.DMA:
            take = getattr(dev, "mirror_take_dirty", None)
            span = take(e.index) if take is not None else (d.mem_base, d.mem_base + d.mem_len)
            if span is not None:
                self._mirror(write, gpa, e, *span)
        now: EngineNow | None = dev.engine_state(e.index)
        e.write_armed = False
        if d.kind == EngineKind.WINDOW:
            # a command rule may have pointed the engine elsewhere in the guest: back to its own memory
            write(rec + _OFF_E_MEM_OFF, _U32.pack(e.mem_off))
            write(rec + _OFF_E_FLAGS, bytes((e.flags,)))
            self._windows_drop(e)
            for off, data in (now.extra if now is not None else ()):   # the command rules' windows
                if 0 <= off and off + len(data) <= d.mem_len and data:
                    write(gpa + e.mem_off + off, bytes(data))
                    self.windows[e.mem_off + off] = bytes(data)
        if now is None or fifo_busy == e.port or now.state == EngineState.IDLE:
            write(rec + _OFF_E_STATE, b"\0")
            return
        if d.kind == EngineKind.WINDOW:
            data = bytes(now.data[: now.count]) if now.state == EngineState.READ else b""
            if now.count > d.mem_len or (now.state == EngineState.READ and len(data) != now.count):
                write(rec + _OFF_E_STATE, b"\0")
                return
            if data:
                write(gpa + e.mem_off, data)
                self.windows[e.mem_off] = data
            e.seq = (e.seq + 1) & 0xFFFFFFFF
            mem_base = now.addr           # the window holds device addresses now.addr .. + count
            write(rec + _OFF_E_MEM_BASE, _U32X2.pack(mem_base, max(now.count, 1)))
            write(rec + _OFF_E_SEQ, _U32.pack(e.seq))
        done = e.done_bytes
        if now.done is not None:
            slots = self._done_slots(dev, now.done)
            if slots is None:
                write(rec + _OFF_E_STATE, b"\0")
                return
            done = bytes(s for s, _, _ in slots) + bytes(a for _, a, _ in slots) + bytes(o for _, _, o in slots)
        write(rec + _OFF_E_DONE, done)
        write(rec + _OFF_E_ADDR, _U32X2.pack(now.addr & 0xFFFFFFFF, now.count & 0xFFFFFFFF))
        write(rec + _OFF_E_WRAP, _U32X2.pack(now.wrap_at & 0xFFFFFFFF, now.wrap_to & 0xFFFFFFFF))
        write(rec + _OFF_E_STATE, bytes((int(now.state),)))
        e.write_armed = now.state == EngineState.WRITE

    def may_take_writes(self, e: _Engine) -> bool:
        """Whether the guest may have taken data-port writes on WINDOW engine `e` since the last refresh: the
        monitor armed it for writing, or a published command rule arms it for writing.  A served write the monitor
        never allowed is a claim the device must not acknowledge (write-back) but take as plain writes."""
        if e.write_armed:
            return True
        k = self.engines.index(e)
        eng_off, st_off = P.CMD_RULE.field("engine")[0], P.CMD_RULE.field("engine_state")[0]
        recs = b"".join(self._published_rules.values())
        return any(recs[i] | recs[i + 1] and recs[i + eng_off] == k and recs[i + st_off] == EngineState.WRITE
                   for i in range(0, len(recs), P.CMD_RULE.size))

    def _done_slots(self, dev, effects) -> list[tuple[int, int, int]] | None:
        out = []
        for eff in effects:
            d = eff.reg.device if eff.reg.device is not None else dev
            port = next((r.base + eff.reg.offset for r in self._bus.ranges if _is(r.device, d)), None)
            if port is None or port not in self._live or \
                    P.split_class_word(self._words.get(port, 0))[0] != PortClass.SHADOW:
                return None
            out.append((self._live[port], eff.and_mask & 0xFF, eff.or_bits & 0xFF))
        if len(out) > P.EFFECT_COUNT:
            return None
        return out + [(NO, 0, 0)] * (P.EFFECT_COUNT - len(out))

    # --- the replay of what the guest served ------------------------------------------------------------------
    def engine_at(self, index: int, port: int) -> _Engine | None:
        if 0 <= index < len(self.engines) and self.engines[index].port == port:
            return self.engines[index]
        return None

    def check_position(self, e: _Engine, state: EngineState, addr: int, nbytes: int, what: str) -> None:
        """The device's transfer must be where the guest says it served from (a mismatch is counted)."""
        if e.position is not None:
            cur = e.position(e.index)          # (state, addr, count) or None
        else:
            now = e.dev.engine_state(e.index)
            cur = None if now is None else (now.state, now.addr, now.count)
        if cur is None or cur[0] != state or (cur[1] & e.decl.addr_mask) != addr:
            got = "idle" if cur is None else f"{EngineState(cur[0]).name} at {cur[1]:#x}"
            self.stats.mismatch(f"{what} {e.port:#x}: the guest served {nbytes} bytes at {addr:#x}, "
                                f"the device's transfer is {got}")
            return
        if not e.decl.saturate and nbytes > cur[2]:
            self.stats.mismatch(f"{what} {e.port:#x}: the guest served {nbytes} bytes, {cur[2]} were left")

    def _windows_drop(self, e: _Engine) -> None:
        """Forget the windows published in `e`'s memory (they are published again, or not, now)."""
        lo, hi = e.mem_off, e.mem_off + e.decl.mem_len
        for off in [o for o in self.windows if lo <= o < hi]:
            del self.windows[off]

    def check_window(self, e: _Engine, area_off: int, data: bytes) -> None:
        """A WINDOW read: the device returned the bytes the guest was given, which came from area offset
        `area_off` (the SERVED_IN entry says where: the window engine_state published, or a command rule's)."""
        want = None
        for off, win in self.windows.items():
            if off <= area_off and area_off + len(data) <= off + len(win):
                want = win[area_off - off: area_off - off + len(data)]
                break
        if want != data:
            self.stats.mismatch(f"window {e.port:#x}: the guest was given other bytes (from area offset "
                                f"{area_off:#x}) than the device returns ({len(data)} bytes)")
