"""Monitor-side devices for the harness: run control and measurement marks (0x500), and a posted debug sink (0x510)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from pvgen.protocol import PortClass

HX_PORT_BASE = 0x500     # guest/src/hx_internal.h
EXIT, MARK, FAULT, PANIC = 0, 1, 2, 3
SINK_PORT_BASE = 0x510


class GuestStop(Exception):
    """Raised inside the exit loop by the harness device when the guest asks to stop (exit, panic, fault)."""

    def __init__(self, kind: str, code: int):
        super().__init__(f"{kind} {code}")
        self.kind, self.code = kind, code


@dataclass
class HarnessDevice:
    """hx_exit / hx_mark / fault and panic reports. `on_mark(id)` snapshots statistics (the machine's)."""

    name: str = "hx-control"
    on_mark: Callable[[int], None] = lambda mark: None

    def port_classes(self) -> dict[int, tuple[PortClass, PortClass]]:
        return {}

    def io_read(self, offset: int, size: int) -> int:
        return 0

    def io_write(self, offset: int, size: int, value: int) -> None:
        if offset == EXIT:
            raise GuestStop("exit", value if value < 1 << 31 else value - (1 << 32))
        if offset == MARK:
            self.on_mark(value & 0xFF)
        elif offset == FAULT:
            raise GuestStop("fault", value)
        elif offset == PANIC:
            raise GuestStop("panic", 255)


@dataclass
class SinkDevice:
    """A debug sink: offset 0 takes posted byte writes; a strict read of offset 1 returns the count of bytes
    received (low 8 bits), of offset 4 (32-bit) the full count, of offset 2 the byte sum mod 256. Lets a benchmark
    verify that a batch delivered every write, in order, before the strict read."""

    name: str = "debug-sink"
    count: int = 0
    checksum: int = 0
    last: int = 0
    trace: list[int] = field(default_factory=list)
    keep_trace: bool = False

    def port_classes(self) -> dict[int, tuple[PortClass, PortClass]]:
        return {0: (PortClass.STRICT, PortClass.POSTED)}

    def io_read(self, offset: int, size: int) -> int:
        if offset == 1:
            return self.count & 0xFF
        if offset == 2:
            return self.checksum & 0xFF
        if offset == 4:
            return self.count & 0xFFFFFFFF
        return 0xFF

    def io_write(self, offset: int, size: int, value: int) -> None:
        if offset == 0:
            self.count += 1
            self.checksum = (self.checksum + value) & 0xFF
            self.last = value
            if self.keep_trace:
                self.trace.append(value)
