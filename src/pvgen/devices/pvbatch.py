"""pvbatch: the monitor side of the batch protocol, a port device on the pvgen control ports (docs/protocol.md).

Registration publishes the port-class table and the shadows into the guest's area and marks it active; a flush is
one `outl` to CTRL_FLUSH: the whole batch is validated first (header, count, every entry: op, size, port owned by
a device, string ranges inside guest RAM), then replayed in order on the PortBus, IN results are written back into
their entries, the FIFO is refilled and the shadows refreshed.  A hostile batch is rejected, counted and recorded;
it never raises out of io_write and never touches memory outside guest RAM.
"""

from __future__ import annotations

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


class GuestMemory(Protocol):
    """Guest RAM at GPA 0..size (docs/team.md)."""

    size: int

    def read(self, gpa: int, n: int) -> bytes: ...

    def write(self, gpa: int, data: bytes) -> None: ...


@dataclass
class _Shadow:
    port: int
    device: object
    offset: int
    length: int       # of the device's range, so a wide read never leaves it


@dataclass
class _Area:
    gpa: int
    shadows: list[_Shadow] = field(default_factory=list)


@dataclass
class PvBatchStats:
    registrations: int = 0
    flushes: int = 0
    entries: int = 0
    rejected: int = 0
    fifo_refills: int = 0
    errors: list[str] = field(default_factory=list)   # the last few rejection messages

    def record(self, exc: PvgenError) -> None:
        self.rejected += 1
        self.errors = (self.errors + [str(exc)])[-16:]


class PvBatch:
    """The batch handler: register at CTRL_BASE..+CTRL_LEN on the bus it replays batches onto."""

    name = "pvbatch"

    def __init__(self, bus: PortBus, mem: GuestMemory):
        self.bus, self.mem = bus, mem
        self.areas: list[_Area] = []
        self.stats = PvBatchStats()
        self._words: dict[int, int] = {}
        self._shadow_ports: list[int] = []
        self._route: dict[int, tuple[object, int]] = {}   # port -> (device, offset), per batch

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
        """port -> class word, from the devices' declarations; every port a device owns is marked OWNED."""
        words: dict[int, int] = {}
        declared = self.bus.class_map()
        shadows: list[int] = []
        for r in self.bus.ranges:
            if r.device is self:
                continue
            for port in range(r.base, r.base + r.length):
                rc, wc = declared.get(port, (PortClass.STRICT, PortClass.STRICT))
                dev, off = r.device, port - r.base
                if wc not in (PortClass.STRICT, PortClass.POSTED, PortClass.DOORBELL):
                    wc = PortClass.STRICT
                if rc == PortClass.FIFO and not hasattr(dev, "fifo_read"):
                    rc = PortClass.STRICT          # no prefetch: every read is one in-order IN entry
                slot, effect = 0, False
                if rc == PortClass.SHADOW:
                    if hasattr(dev, "shadow_read") and len(shadows) < P.SHADOW_SLOTS:
                        slot = len(shadows)
                        shadows.append(port)
                        probe = getattr(dev, "read_side_effects", None)
                        effect = True if probe is None else bool(probe(off))
                    else:
                        rc = PortClass.STRICT
                elif rc not in (PortClass.STRICT, PortClass.FIFO):
                    rc = PortClass.STRICT
                words[port] = P.class_word(rc, wc, owned=True, read_effect=effect, slot=slot)
        self._shadow_ports = shadows
        return words

    # --- registration ------------------------------------------------------------------------------------------
    def register(self, gpa: int) -> int:
        """Validate the area at gpa, publish classes and shadows, mark it active; returns its slot."""
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
        self._words = self.class_words()
        self._write(gpa + P.OFF_CLASSES, P.encode_class_table(self._words))
        self._write(gpa + P.OFF_FIFO, bytes(P.FIFO.size))
        area.shadows = []
        for port in self._shadow_ports:
            dev, off = self._owner(port)  # type: ignore[misc]
            rng = next(r for r in self.bus.ranges if r.device is dev and r.base <= port < r.base + r.length)
            area.shadows.append(_Shadow(port, dev, off, rng.length))
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
            entries = self._validate(area, slot)
        except BatchRejected as exc:
            self._set(area, "status", int(exc.status))
            self._set(area, "count", 0)
            h = P.decode_header(self._read(area.gpa, P.HEADER.size))
            self._set(area, "rejected", (h["rejected"] + 1) & 0xFFFFFFFF)
            raise
        fifo_port = self._replay(area, entries)
        self._refill(area, fifo_port)
        self._refresh(area)
        self._set(area, "count", 0)
        self._set(area, "status", Status.OK)

    def _validate(self, area: _Area, slot: int) -> list[P.Entry]:
        h = P.decode_header(self._read(area.gpa, P.HEADER.size))
        P.check_header(h, slot=slot)
        entries = P.decode_entries(self._read(area.gpa + P.OFF_ENTRIES, h["count"] * P.ENTRY.size), self.mem.size)
        owners: dict[tuple[int, int], bool] = {}
        self._route = route = {}
        string_bytes = 0
        for i, e in enumerate(entries):
            ok = owners.get((e.port, e.size))
            if ok is None:
                first, last = self._owner(e.port), self._owner(e.port + e.size - 1)
                ok = owners[(e.port, e.size)] = first is not None and last is not None and first[0] is last[0]
                if ok:
                    route[e.port] = first
            if not ok:
                raise BatchRejected(Status.BAD_ENTRY, f"entry {i}: port {e.port:#x} (size {e.size}) is not owned "
                                    "by one device")
            if e.op in (Op.OUTS, Op.INS):
                string_bytes += e.value * e.size
                if string_bytes > MAX_BATCH_STRING_BYTES:
                    raise BatchRejected(Status.BAD_ADDRESS, f"entry {i}: batch moves more than "
                                        f"{MAX_BATCH_STRING_BYTES} string bytes")
        return entries

    def _replay(self, area: _Area, entries: list[P.Entry]) -> tuple[int, int] | None:
        """Run the entries in order; returns (port, size) if the last FIFO-class read was an IN, for the refill."""
        fifo, route = None, self._route
        OUT, IN, IN_DISCARD, OUTS = Op.OUT, Op.IN, Op.IN_DISCARD, Op.OUTS
        self.stats.entries += len(entries)
        for i, (op, port, size, value, gpa) in enumerate(entries):
            dev, off = route[port]            # resolved once per port by _validate
            if op is OUT:
                dev.io_write(off, size, value)
                continue
            if op is IN:
                v = dev.io_read(off, size) & ((1 << (8 * size)) - 1)
                self._write(area.gpa + P.OFF_ENTRIES + i * P.ENTRY.size + 4, v.to_bytes(4, "little"))
            elif op is IN_DISCARD:
                dev.io_read(off, size)
            elif op is OUTS:
                data = self._read(gpa, value * size)
                write_many = getattr(dev, "write_many", None)   # optional: the same effects, in bulk
                if write_many is not None:
                    write_many(off, size, data)
                    continue
                for k in range(0, len(data), size):
                    dev.io_write(off, size, int.from_bytes(data[k:k + size], "little"))
            else:   # INS
                vals = self._read_many(port, size, value)
                self._write(gpa, struct.pack(f"<{len(vals)}{'?BH?I'[size]}", *vals))   # values are masked
            if op is not IN_DISCARD and op is not OUTS and self._read_class(port) == PortClass.FIFO:
                # Prefetch after a single read only: an INS took exactly what the guest asked for, and the device's
                # "current block" after it may be one the guest has not started (docs/protocol.md).
                fifo = (port, size) if op is IN else None
        return fifo

    def _read_class(self, port: int) -> PortClass:
        return PortClass(self._words.get(port, 0) & P.CLS_CLASS_MASK)

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

    def _refresh(self, area: _Area) -> None:
        if not area.shadows:
            return
        out = bytearray()
        for s in area.shadows:
            valid, vals = 0, [0, 0, 0]
            for i, size in enumerate(P.SIZES):
                if s.offset + size > s.length:
                    continue
                try:
                    v = s.device.shadow_read(s.offset, size)  # type: ignore[attr-defined]
                except PvgenError:
                    continue
                if v is not None:
                    valid |= 1 << i
                    vals[i] = v & ((1 << (8 * size)) - 1)
            out += P.SHADOW.pack(port=s.port, valid=valid, val=tuple(vals))
        self._write(area.gpa + P.OFF_SHADOWS, bytes(out))

    def refresh(self) -> None:
        """Bring every area's shadows up to date (call after an asynchronous device event)."""
        for area in self.areas:
            try:
                self._refresh(area)
            except ProtocolError as exc:
                self.stats.record(exc)
