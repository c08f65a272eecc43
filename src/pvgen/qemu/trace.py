"""QEMU's trace events, read as QEMU writes them: port accesses of one device model, counted between the guest's marks.

QEMU's "log" trace back end writes one line per event, `<event> <text>` (`-trace enable=EVENT -D FILE`); `pvgen qemu`
points -D at a FIFO and feeds every line to a TraceCounter while the guest runs. The guest marks its phases by writing
MARK_TAG, then the mark id, to the parallel port's data register (guest/pvqwl.c), which QEMU traces as
`parallel_ioport_write`; QEMU's ne2000 and IDE models trace every access the guest makes to their ports."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

MARK_EVENT = "parallel_ioport_write"
MARK_TAG = 0xA5
MARK_SESSION = 0xF0            # the workload script starts: everything before it (firmware, boot) is ignored
MARK_VARIANT = 0x40            # + the variant's index: the following phases are that variant's
ISR_OFFSET, ISR_PRX = 0x7, 0x01


@dataclass(frozen=True)
class DeviceTrace:
    """The trace events in which one QEMU device model sees a guest port access (one event per access)."""

    device: str
    events: tuple[str, ...]

    def enables(self) -> list[str]:
        return [MARK_EVENT, *self.events]


# hw/net/ne2000.c: ne2000_read/ne2000_write trace every access to the NIC's 32 ports (registers, data port, reset).
NE2000 = DeviceTrace("ne2k_pci", ("ne2000_read", "ne2000_write"))
# hw/ide/core.c, hw/ide/piix.c: task-file registers, alternate status/device control, data port, bus-master ports.
PIIX_IDE = DeviceTrace("piix3-ide", ("ide_ioport_read", "ide_ioport_write", "ide_status_read", "ide_ctrl_write",
                                     "ide_data_readw", "ide_data_writew", "ide_data_readl", "ide_data_writel",
                                     "bmdma_read", "bmdma_write", "bmdma_addr_read", "bmdma_addr_write"))

_LINE = re.compile(r"^(\w+) (.*)$")
_ADDR = re.compile(r"(?:addr[= ]|@ )(0x[0-9a-fA-F]+)")
_VAL = re.compile(r"val[= ](0x[0-9a-fA-F]+)")


def access_key(event: str, text: str) -> str:
    """How an access is counted in the breakdown: the event and the register offset (`ne2000_write +0x7`). The IDE
    events give the port itself: the offset in the channel's block (0x1F0/0x170 + n, 0x3F6/0x376) is kept, so that
    both channels count alike."""
    m = _ADDR.search(text)
    if not m:
        return event
    addr = int(m.group(1), 16)
    if event.startswith("ide_") and addr >= 0x100:
        addr &= 0x7
    return f"{event} +{addr:#x}"


@dataclass
class Segment:
    """The accesses between two marks: `mark` is the id of the mark that ends the segment."""

    mark: int
    accesses: Counter = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.accesses.values())


class TraceCounter:
    """Feeds on trace lines (from QEMU's thread or a test) and cuts the device's accesses into segments at marks.

    Thread-safe: the net peer reads `prx_acks` and `quiet_for()` while the reader thread feeds lines."""

    def __init__(self, device: DeviceTrace) -> None:
        self.device = device
        self._events = frozenset(device.events)
        self._lock = threading.Lock()
        self.started = False
        self.segments: list[Segment] = []
        self._current = Counter()
        self._tag_seen = False
        self.last_mark = -1                # the id of the latest mark
        self.prx_acks = 0                  # NE2000 ISR writes acknowledging a received packet (the rx pacer's clock)
        self.last_access = time.monotonic()
        self.lines = 0

    def feed(self, line: str) -> None:
        m = _LINE.match(line.strip())
        if not m:
            return
        event, text = m.groups()
        with self._lock:
            self.lines += 1
            if event == MARK_EVENT:
                self._mark_byte(text)
            elif event in self._events and self.started:
                self._current[access_key(event, text)] += 1
                self.last_access = time.monotonic()
                if event == "ne2000_write" and _is_prx_ack(text):
                    self.prx_acks += 1

    def _mark_byte(self, text: str) -> None:
        v = _VAL.search(text)
        if v is None or _ADDR.search(text) is None or int(_ADDR.search(text).group(1), 16) != 0:
            return
        val = int(v.group(1), 16)
        if not self._tag_seen:
            self._tag_seen = val == MARK_TAG
            return
        self._tag_seen = False
        if val == MARK_SESSION and not self.started:
            self.started = True
            self._current = Counter()
            return
        if self.started:
            self.last_mark = val
            self.segments.append(Segment(val, self._current))
            self._current = Counter()

    def quiet_for(self) -> float:
        """Seconds since the device's last access."""
        with self._lock:
            return time.monotonic() - self.last_access

    def variants(self) -> list[list[Segment]]:
        """The segments cut by variant marks: [[segments of variant 0], [variant 1], ...] (from each variant mark
        to the next; the variant mark's own segment, what happened before it, is dropped)."""
        out: list[list[Segment]] = []
        for seg in self.segments:
            if MARK_VARIANT <= seg.mark < MARK_SESSION:
                out.append([])
            elif out:
                out[-1].append(seg)
        return out


def _is_prx_ack(text: str) -> bool:
    a, v = _ADDR.search(text), _VAL.search(text)
    return bool(a and v and int(a.group(1), 16) == ISR_OFFSET and int(v.group(1), 16) & ISR_PRX)


def phase_accesses(segments: list[Segment], start: int, end: int) -> Counter | None:
    """The accesses from mark `start` to mark `end` (the segments ending at the marks after `start`, up to and
    including the one ending at `end`), or None when either mark is missing."""
    ids = [s.mark for s in segments]
    if start not in ids or end not in ids[ids.index(start) + 1:]:
        return None
    i = ids.index(start)
    j = ids.index(end, i + 1)
    total: Counter = Counter()
    for seg in segments[i + 1:j + 1]:
        total.update(seg.accesses)
    return total
