"""pvaudit: the monitor's check of an audit build's log (protocol v5, docs/protocol.md "Audit mode").

An audit build of the runtime (-DPVIO_AUDIT) logs every value it served without an exit (shadow, FIFO, engine,
index file) with its position in the queue.  At the flush the monitor replays the batch and, at each position,
makes the same read on the device (a read with no queued replay: side-effect free by the device's declaration) or
takes the value the replayed entry read (IN_DISCARD, SERVED_IN), and compares it with what the guest was given.
A mismatch is a protocol error (counted, never raised at the guest): the in-guest models served a value the
device would not have returned at that point of the access sequence.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from pvgen import protocol as P
from pvgen.protocol import AuditKind

_REC = P.AUDIT_REC.fmt
_BEFORE = (int(AuditKind.SHADOW), int(AuditKind.INDEX))


@dataclass
class AuditStats:
    served: int = 0           # values (or engine-served runs) checked
    mismatches: int = 0
    errors: list[str] = field(default_factory=list)

    def mismatch(self, msg: str) -> None:
        self.mismatches += 1
        self.errors = (self.errors + [msg])[-16:]


class AuditBatch:
    """The audit records of one flush, by queue position."""

    def __init__(self, raw_records: bytes, data: bytes, stats: AuditStats, read, fifo_values: list[int]):
        """`read(kind, port, size)`: the device's value for a read served with no replay entry, made without side
        effects (a shadow's shadow_read, an index file's data port), or None: the monitor never makes an access
        the guest did not make because a record names a port."""
        self.stats, self._read, self._fifo = stats, read, fifo_values
        self._data = data
        self.at: dict[int, list[tuple]] = defaultdict(list)
        self.fifo: list[tuple] = []
        for rec in _REC.iter_unpack(raw_records):
            port, size, kind, value, pos, data_off = rec
            if kind == AuditKind.FIFO:
                self.fifo.append(rec)
            else:
                self.at[pos].append(rec)

    def _check(self, rec: tuple, got: int, what: str) -> None:
        port, size, kind, value, pos, _ = rec
        self.stats.served += 1
        if got != value:
            self.stats.mismatch(f"{what} {port:#x}/{size} at queue position {pos}: the guest was served "
                                f"{value:#x}, the device returns {got:#x}")

    def before(self, pos: int) -> None:
        """Reads served with no replay entry, made before queue entry `pos`: read the device now."""
        for rec in self.at.get(pos, ()):
            if rec[2] in _BEFORE:
                mask = (1 << (8 * rec[1])) - 1
                got = self._read(rec[2], rec[0], rec[1])   # side-effect free, or None
                if got is None:
                    self.stats.served += 1
                    self.stats.mismatch(f"{AuditKind(rec[2]).name.lower()} {rec[0]:#x}/{rec[1]} at queue position "
                                        f"{rec[4]}: the device has no side-effect-free value there (nothing it "
                                        "publishes could have served it)")
                    continue
                self._check(rec, got & mask, AuditKind(rec[2]).name.lower())

    def replayed(self, pos: int, value: int) -> None:
        """The IN_DISCARD entry `pos` read `value`: the shadow read it replays was served that."""
        for rec in self.at.get(pos, ()):
            if rec[2] == AuditKind.REPLAYED:
                self._check(rec, value & ((1 << (8 * rec[1])) - 1), "shadow (replayed)")

    def served_in(self, pos: int, data: bytes) -> None:
        """The SERVED_IN entry `pos` read `data`: the engine served the logged bytes."""
        for rec in self.at.get(pos, ()):
            if rec[2] != AuditKind.ENGINE:
                continue
            port, size, _, nbytes, _, off = rec
            given = self._data[off: off + nbytes]
            self.stats.served += 1
            if len(given) != nbytes or given != data[:nbytes]:
                first = next((i for i, (a, b) in enumerate(zip(given, data)) if a != b), min(len(given), len(data)))
                self.stats.mismatch(f"engine {port:#x}/{size} at queue position {pos}: the guest was served "
                                    f"{nbytes} bytes that differ from the device's at byte {first}")

    def finish(self, count: int) -> None:
        """After the replay: the reads made after the last entry, and the FIFO values."""
        self.before(count)
        for rec in self.fifo:
            idx = rec[5]
            want = self._fifo[idx] if 0 <= idx < len(self._fifo) else None
            self.stats.served += 1
            if want is None or want & ((1 << (8 * rec[1])) - 1) != rec[3]:
                self.stats.mismatch(f"fifo {rec[0]:#x}/{rec[1]} value {idx}: the guest was served {rec[3]:#x}, "
                                    f"the monitor handed {'nothing' if want is None else hex(want)}")
