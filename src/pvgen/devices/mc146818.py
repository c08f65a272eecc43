"""MC146818 real-time clock and CMOS RAM (PC ports 0x70/0x71), and the POST delay port 0x80 (writes ignored).

Register map, status bits and the update cycle per the Motorola MC146818A datasheet ("Address map", "Register A"
to "Register D", "Update cycle"): 14 clock/status registers and 50 bytes of RAM behind an index port (bit 7 of the
index write is the PC's NMI mask, not part of the address; 128 bytes on PC chipsets). The clock runs from the
host's clock (`now`, seconds since the epoch, UTC), starts at the host's time and keeps an offset when the guest
sets it. Once a second, when the divider runs (DV = 010) and SET is clear, the chip spends 1984 µs updating;
UIP (register A bit 7) rises 244 µs before that update and falls when it ends. Interrupt flags (register C) are
latched from the time elapsed, as the chip would have; no IRQ 8 is raised (no host timer drives the device)."""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass, field
from typing import Callable

from pvgen.protocol import PortClass

INDEX, DATA = 0, 1                     # offsets from 0x70
CMOS_BASE, CMOS_LEN, POST_PORT = 0x70, 2, 0x80
# Clock registers (datasheet "Address map")
SECONDS, SECONDS_ALARM, MINUTES, MINUTES_ALARM, HOURS, HOURS_ALARM = 0, 1, 2, 3, 4, 5
DAY_OF_WEEK, DAY_OF_MONTH, MONTH, YEAR = 6, 7, 8, 9
REG_A, REG_B, REG_C, REG_D = 0x0A, 0x0B, 0x0C, 0x0D
CENTURY = 0x32                         # the PC/AT BIOS's century byte in CMOS RAM (BCD)
RAM_SIZE = 128
# Register A
A_UIP, A_DV_MASK, A_DV_32K, A_RS_MASK = 0x80, 0x70, 0x20, 0x0F
# Register B
B_SET, B_PIE, B_AIE, B_UIE, B_SQWE, B_DM, B_24H, B_DSE = 0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01
# Register C (read-only, cleared by a read)
C_IRQF, C_PF, C_AF, C_UF = 0x80, 0x40, 0x20, 0x10
# Register D
D_VRT = 0x80
UIP_LEAD_S = 244e-6                    # UIP is set this long before an update cycle starts
UPDATE_S = 1984e-6                     # and the cycle lasts this long (32.768 kHz time base)
ALARM_DONT_CARE = 0xC0                 # an alarm byte of 11xxxxxx matches any value


def _bcd(v: int) -> int:
    return (v // 10) << 4 | v % 10


def _unbcd(v: int) -> int:
    return (v >> 4) * 10 + (v & 0x0F)


@dataclass
class Mc146818:
    """The RTC behind the PC's index/data ports. `now()` is the host clock (seconds, UTC)."""

    name: str = "mc146818"
    now: Callable[[], float] = time.time
    index: int = 0
    nmi_masked: bool = False
    reg_a: int = 0
    reg_b: int = 0
    reg_c: int = 0
    ram: bytearray = field(default_factory=lambda: bytearray(RAM_SIZE))
    offset: float = 0.0                # guest time minus host time, seconds
    frozen: float | None = None        # the guest time while SET is held
    alarm: tuple[int, int, int] = (0, 0, 0)   # seconds, minutes, hours alarm bytes as written (register format)
    _seen: float = 0.0                 # the guest time register C's flags were last brought up to
    bad_accesses: int = 0

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """The state a PC BIOS leaves: 32.768 kHz divider, 1024 Hz rate, 24-hour BCD, valid RAM and time."""
        self.index, self.nmi_masked = 0, False
        self.reg_a = A_DV_32K | 0x06
        self.reg_b = B_24H
        self.reg_c = 0
        self.ram[:] = bytes(RAM_SIZE)
        self.offset, self.frozen, self.alarm = 0.0, None, (0, 0, 0)
        self._seen = self.guest_time()

    # --- time ---------------------------------------------------------------------------------------------------
    def guest_time(self) -> float:
        return self.frozen if self.frozen is not None else self.now() + self.offset

    def running(self) -> bool:
        return (self.reg_a & A_DV_MASK) == A_DV_32K and not self.reg_b & B_SET

    def uip(self) -> bool:
        """Register A's UIP: the last 244 µs before a second boundary, and the 1984 µs update after it."""
        if not self.running():
            return False
        frac = self.guest_time() % 1.0
        return frac >= 1.0 - UIP_LEAD_S or frac < UPDATE_S

    def _field(self, value: int) -> int:
        return value if self.reg_b & B_DM else _bcd(value)

    def _hours(self, hour: int) -> int:
        if self.reg_b & B_24H:
            return self._field(hour)
        pm = hour >= 12
        h12 = hour % 12 or 12
        return self._field(h12) | (0x80 if pm else 0)

    def _from_field(self, v: int) -> int:
        return v if self.reg_b & B_DM else _unbcd(v)

    def _from_hours(self, v: int) -> int:
        if self.reg_b & B_24H:
            return self._from_field(v)
        h = self._from_field(v & 0x7F) % 12
        return h + 12 if v & 0x80 else h

    def clock(self) -> dict[int, int]:
        """The clock registers as the guest reads them (register B's data mode and hour format). During an
        update cycle the datasheet leaves them undefined: the model returns the new second's values."""
        tm = time.gmtime(int(self.guest_time()))
        return {SECONDS: self._field(tm.tm_sec), MINUTES: self._field(tm.tm_min), HOURS: self._hours(tm.tm_hour),
                DAY_OF_WEEK: self._field((tm.tm_wday + 1) % 7 + 1), DAY_OF_MONTH: self._field(tm.tm_mday),
                MONTH: self._field(tm.tm_mon), YEAR: self._field(tm.tm_year % 100)}

    def _set_clock(self, reg: int, value: int) -> None:
        tm = list(time.gmtime(int(self.guest_time())))
        frac = self.guest_time() % 1.0
        if reg == SECONDS:
            tm[5] = self._from_field(value) % 60
        elif reg == MINUTES:
            tm[4] = self._from_field(value) % 60
        elif reg == HOURS:
            tm[3] = self._from_hours(value) % 24
        elif reg == DAY_OF_MONTH:
            tm[2] = max(1, min(31, self._from_field(value)))
        elif reg == MONTH:
            tm[1] = max(1, min(12, self._from_field(value)))
        elif reg == YEAR:
            century = _unbcd(self.ram[CENTURY]) if self.ram[CENTURY] else 20
            tm[0] = century * 100 + self._from_field(value) % 100
        else:
            return                           # day of week: not kept apart from the date
        t = calendar.timegm(tuple(tm)) + frac
        if self.frozen is not None:
            self.frozen = t
        else:
            self.offset = t - self.now()

    # --- interrupt flags (register C) ---------------------------------------------------------------------------
    def _latch_flags(self) -> None:
        """Set PF/AF/UF for what happened since the last look, as the running chip would have; IRQF follows."""
        t = self.guest_time()
        before, self._seen = self._seen, t
        if not self.running() or t <= before:
            return
        rate = self.reg_a & A_RS_MASK
        if rate:
            period = (1 << (rate - 1)) / 32768.0 if rate > 2 else (1 << (rate + 6)) / 32768.0
            if int(t / period) != int(before / period):
                self.reg_c |= C_PF
        if int(t) != int(before):
            self.reg_c |= C_UF
            if self._alarm_between(int(before) + 1, int(t)):
                self.reg_c |= C_AF
        enabled = self.reg_b & (B_PIE | B_AIE | B_UIE)    # the same bit positions as their flags in C
        if self.reg_c & enabled & (C_PF | C_AF | C_UF):
            self.reg_c |= C_IRQF

    def _alarm_between(self, first: int, last: int) -> bool:
        """Did any second from `first` to `last` match the three alarm bytes (11xxxxxx: any value)?"""
        for s in range(first, min(last, first + 86400) + 1):
            tm = time.gmtime(s)
            now = (self._field(tm.tm_sec), self._field(tm.tm_min), self._hours(tm.tm_hour))
            if all(a & ALARM_DONT_CARE == ALARM_DONT_CARE or a == v for a, v in zip(self.alarm, now)):
                return True
        return False

    # --- bus ----------------------------------------------------------------------------------------------------
    def port_classes(self) -> dict[int, tuple[PortClass, PortClass]]:
        """The index write selects what the next data access means: every access is strict."""
        return {}

    def io_read(self, offset: int, size: int) -> int:
        if size != 1:
            self.bad_accesses += 1
            return 0xFF
        if offset == INDEX:
            return 0xFF                      # the index port is write-only on the PC
        return self.read_register(self.index)

    def io_write(self, offset: int, size: int, value: int) -> None:
        if size != 1:
            self.bad_accesses += 1
            return
        if offset == INDEX:
            self.index, self.nmi_masked = value & 0x7F, bool(value & 0x80)
        else:
            self.write_register(self.index, value & 0xFF)

    def read_register(self, reg: int) -> int:
        if reg <= YEAR:
            if reg in (SECONDS_ALARM, MINUTES_ALARM, HOURS_ALARM):
                return self.alarm[(reg - 1) // 2]
            return self.clock()[reg]
        if reg == REG_A:
            return self.reg_a | (A_UIP if self.uip() else 0)
        if reg == REG_B:
            return self.reg_b
        if reg == REG_C:
            self._latch_flags()
            value, self.reg_c = self.reg_c, 0
            return value
        if reg == REG_D:
            return D_VRT
        return self.ram[reg]

    def write_register(self, reg: int, value: int) -> None:
        if reg <= YEAR:
            if reg in (SECONDS_ALARM, MINUTES_ALARM, HOURS_ALARM):
                a = list(self.alarm)
                a[(reg - 1) // 2] = value
                self.alarm = tuple(a)
            else:
                self._set_clock(reg, value)
        elif reg == REG_A:
            self._latch_flags()
            self.reg_a = value & ~A_UIP      # UIP is read-only
        elif reg == REG_B:
            self._latch_flags()
            if value & B_SET and self.frozen is None:
                self.frozen = self.guest_time()
            elif not value & B_SET and self.frozen is not None:
                self.offset, self.frozen = self.frozen - self.now(), None
                self._seen = self.guest_time()
            if value & B_SET:
                value &= ~B_UIE              # SET clears UIE (datasheet, register B bit 7)
            self.reg_b = value
        elif reg in (REG_C, REG_D):
            self.bad_accesses += 1           # read-only
        else:
            self.ram[reg] = value


@dataclass
class PostPort:
    """Port 0x80, the POST code / I/O delay port: writes are ignored, reads return the last value written."""

    name: str = "post-0x80"
    last: int = 0

    def port_classes(self) -> dict[int, tuple[PortClass, PortClass]]:
        return {0: (PortClass.STRICT, PortClass.POSTED)}

    def io_read(self, offset: int, size: int) -> int:
        return self.last

    def io_write(self, offset: int, size: int, value: int) -> None:
        self.last = value & 0xFF


def attach(ports, now: Callable[[], float] = time.time) -> Mc146818:
    """The RTC on 0x70/0x71 and the POST port on 0x80 of a PC's port bus; the century byte set from the clock."""
    rtc = Mc146818(now=now)
    rtc.ram[CENTURY] = _bcd(time.gmtime(int(now())).tm_year // 100)
    ports.register(CMOS_BASE, CMOS_LEN, rtc)
    ports.register(POST_PORT, 1, PostPort())
    return rtc
