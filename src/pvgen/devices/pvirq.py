"""Interrupt notification through the batch area (protocol v4): a line that a flush raises goes back to the guest in
the area's irq_notify word instead of being asserted on the interrupt controller (docs/protocol.md).

Why: a device usually raises its interrupt as the direct result of a batched access (the NE2000's transmit-complete
after the TXP doorbell, the receive interrupt after the driver acknowledged the previous one).  Asserted on the
in-kernel PIC, that interrupt is injected at the next entry, and on this host each injection costs a further exit
(KVM counts it in `irq_injections`) plus the emulated CPL0 entry path.  The guest is already stopped in the flush
that raised the line, so the monitor can hand the line back in the same exit; the runtime passes it to the
environment (pvio_arch_irq_notify), which makes it pending exactly like an upcall the CPL0 entry marked, and runs
the handler when the runtime's operation unmasks: the driver sees an interrupt right after the access that caused
it, as on hardware.

The edge semantics of the PIC are kept: one notification per rising edge.  A line the flush raised stays "notified"
(the PIC never sees it) until it falls; a line that rises outside a flush (an asynchronous device event), or on a
line the area did not offer, takes the interrupt controller as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from pvgen import protocol as P

_OFF_NOTIFY = P.HEADER.field("irq_notify")[0]
_IRQ_MARK = int(P.Op.IRQ_MARK)


@dataclass
class IrqNotifierStats:
    notified: int = 0          # rising edges handed back through an area
    forwarded: int = 0         # rising edges left to the interrupt controller
    premarked: int = 0         # rising edges the guest's interrupt rules had raised already (protocol v5)


class IrqNotifier:
    """Sits between the device models' interrupt lines and the machine's set_irq (Machine.irq_filter)."""

    def __init__(self, mem) -> None:
        self.mem = mem
        self.stats = IrqNotifierStats()
        self._gpa: int | None = None      # the area being flushed
        self._offered = 0                 # its irq_lines
        self._raised = 0                  # lines raised during this flush
        self._notified: set[int] = set()  # lines high without the interrupt controller knowing
        self._marks: dict[int, list[int]] = {}   # line -> queue positions of the guest's IRQ_MARK entries
        self._stale: list[str] = []
        self.pos = 0                      # the entry being replayed (PvBatch._replay)

    @classmethod
    def attach(cls, machine, pvbatch) -> "IrqNotifier":
        """Route `machine`'s interrupt lines through a notifier driven by `pvbatch`'s flushes."""
        n = cls(pvbatch.mem)
        pvbatch.notifier = n
        machine.irq_filter = n.filter
        return n

    # --- the flush brackets (PvBatch.flush) ---------------------------------------------------------------------
    def begin(self, gpa: int, offered: int, entries: list[tuple] = ()) -> None:
        """A flush starts; `entries` (validated: (op, device, offset, size, value, gpa, port)) may hold the
        guest's IRQ_MARK entries: lines an interrupt rule raised in the guest (protocol v5), whose rising edge at
        the device in this replay was delivered already."""
        self._gpa, self._offered, self._raised, self.pos = gpa, offered & 0xFFFFFFFF, 0, 0
        marks: dict[int, list[int]] = {}
        for k, ent in enumerate(entries):
            if ent[0] == _IRQ_MARK:
                marks.setdefault(ent[4], []).append(k)
        self._marks = marks

    def end(self) -> list[str]:
        """Publish the lines raised during the flush (OR-ed into irq_notify: the guest clears what it takes).
        Returns the guest's marks no device edge matched (its interrupt rule raised a line the device did not)."""
        gpa, raised = self._gpa, self._raised
        self._gpa, self._raised = None, 0
        left = self._stale + [f"interrupt line {line}: the guest raised it at queue position {k}, the device did "
                              "not" for line, ks in self._marks.items() for k in ks]
        self._marks, self._stale = {}, []
        if gpa is None or not raised:
            return left
        old = int.from_bytes(self.mem.read(gpa + _OFF_NOTIFY, 4), "little")
        self.mem.write(gpa + _OFF_NOTIFY, (old | raised).to_bytes(4, "little"))
        return left

    # --- the machine's filter -----------------------------------------------------------------------------------
    def filter(self, line: int, level: bool) -> bool:
        """Called on each change of a line's level; True: handled here, the interrupt controller is not told."""
        if level:
            marks = self._marks.get(line) if self._marks else None
            if marks and self._gpa is not None:
                # the guest's interrupt rule raised this edge already (its mark follows the access that raised
                # it): delivered, so neither the area nor the controller takes it again
                while marks and marks[0] < self.pos:     # the guest raised it earlier than the device did
                    self._stale.append(f"interrupt line {line}: the guest raised it at queue position "
                                       f"{marks.pop(0)}, the device only at {self.pos}")
                if marks:
                    marks.pop(0)
                    self._notified.add(line)
                    self.stats.premarked += 1
                    return True
            if self._gpa is not None and 0 <= line < 32 and self._offered >> line & 1:
                self._raised |= 1 << line
                self._notified.add(line)
                self.stats.notified += 1
                return True
            self.stats.forwarded += 1
            return False
        if line in self._notified:
            self._notified.discard(line)
            return True
        return False
