"""The MC146818 RTC model: register map, BCD/binary and 12/24-hour formats, UIP, SET, register C, the POST port."""

from __future__ import annotations

import calendar

import pytest

from pvgen.devices import mc146818 as rtc
from pvgen.devices.bus import PortBus

T0 = calendar.timegm((2026, 12, 6, 21, 59, 58, 0, 0, 0)) + 0.5   # a Sunday


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make(t: float = T0):
    clock = Clock(t)
    bus = PortBus()
    dev = rtc.attach(bus, now=clock)
    return bus, dev, clock


def cmos(bus, reg: int) -> int:
    bus.write(0x70, 1, reg)
    return bus.read(0x71, 1)


def test_bcd_24h_time_after_reset():
    bus, _, _ = make()
    got = [cmos(bus, r) for r in (rtc.SECONDS, rtc.MINUTES, rtc.HOURS, rtc.DAY_OF_WEEK, rtc.DAY_OF_MONTH,
                                  rtc.MONTH, rtc.YEAR)]
    assert got == [0x58, 0x59, 0x21, 0x01, 0x06, 0x12, 0x26]
    assert cmos(bus, rtc.CENTURY) == 0x20
    assert cmos(bus, rtc.REG_D) == rtc.D_VRT
    assert cmos(bus, rtc.REG_B) == rtc.B_24H


def test_binary_and_12_hour_modes():
    bus, _, _ = make()
    bus.write(0x70, 1, rtc.REG_B)
    bus.write(0x71, 1, rtc.B_DM)          # binary, 12-hour
    assert cmos(bus, rtc.SECONDS) == 58
    assert cmos(bus, rtc.HOURS) == 0x80 | 9   # 21:xx is 9 PM


def test_time_advances_with_the_host_clock_and_rolls_over():
    bus, _, clock = make()
    clock.t += 2.0
    assert [cmos(bus, r) for r in (rtc.SECONDS, rtc.MINUTES, rtc.HOURS)] == [0x00, 0x00, 0x22]


def test_uip_before_and_during_the_update_cycle_only():
    bus, dev, clock = make()
    clock.t = int(T0) + 0.5
    assert not cmos(bus, rtc.REG_A) & rtc.A_UIP
    clock.t = int(T0) + 1 - 100e-6           # inside the 244 µs before the update
    assert cmos(bus, rtc.REG_A) & rtc.A_UIP
    clock.t = int(T0) + 1 + 1000e-6          # inside the 1984 µs update
    assert cmos(bus, rtc.REG_A) & rtc.A_UIP
    clock.t = int(T0) + 1 + 3000e-6
    assert not cmos(bus, rtc.REG_A) & rtc.A_UIP
    dev.write_register(rtc.REG_A, 0x06)       # divider stopped: no update cycles
    clock.t = int(T0) + 1 - 100e-6
    assert not cmos(bus, rtc.REG_A) & rtc.A_UIP


def test_set_freezes_and_a_write_moves_the_clock():
    bus, _, clock = make()
    bus.write(0x70, 1, rtc.REG_B)
    bus.write(0x71, 1, rtc.B_SET | rtc.B_24H)
    bus.write(0x70, 1, rtc.HOURS)
    bus.write(0x71, 1, 0x07)
    bus.write(0x70, 1, rtc.YEAR)
    bus.write(0x71, 1, 0x30)
    clock.t += 10                              # frozen while SET is held
    assert cmos(bus, rtc.SECONDS) == 0x58 and not cmos(bus, rtc.REG_A) & rtc.A_UIP
    bus.write(0x70, 1, rtc.REG_B)
    bus.write(0x71, 1, rtc.B_24H)
    clock.t += 3
    assert [cmos(bus, r) for r in (rtc.SECONDS, rtc.HOURS, rtc.YEAR)] == [0x01, 0x08, 0x30]   # 07:59:58 + 3 s


def test_register_c_latches_update_and_clears_on_read():
    bus, _, clock = make()
    assert cmos(bus, rtc.REG_C) == 0
    clock.t += 1.0
    c = cmos(bus, rtc.REG_C)
    assert c & rtc.C_UF and c & rtc.C_PF and not c & rtc.C_IRQF   # no interrupt enabled
    assert cmos(bus, rtc.REG_C) == 0
    bus.write(0x70, 1, rtc.REG_B)
    bus.write(0x71, 1, rtc.B_24H | rtc.B_UIE)
    clock.t += 1.0
    assert cmos(bus, rtc.REG_C) & (rtc.C_UF | rtc.C_IRQF) == rtc.C_UF | rtc.C_IRQF


def test_alarm_flag():
    bus, dev, clock = make()
    for reg, v in ((rtc.SECONDS_ALARM, 0x00), (rtc.MINUTES_ALARM, 0xC0), (rtc.HOURS_ALARM, 0xFF)):
        bus.write(0x70, 1, reg)
        bus.write(0x71, 1, v)
    assert cmos(bus, rtc.MINUTES_ALARM) == 0xC0
    clock.t += 1.0                             # 21:59:59: no match
    assert not cmos(bus, rtc.REG_C) & rtc.C_AF
    clock.t += 1.0                             # 22:00:00
    assert cmos(bus, rtc.REG_C) & rtc.C_AF


def test_nvram_nmi_bit_and_bad_accesses():
    bus, dev, _ = make()
    bus.write(0x70, 1, 0x80 | 0x40)            # NMI masked, RAM byte 0x40
    bus.write(0x71, 1, 0x5A)
    assert dev.nmi_masked and cmos(bus, 0x40) == 0x5A
    assert bus.read(0x70, 1) == 0xFF
    bus.write(0x70, 1, rtc.REG_D)
    bus.write(0x71, 1, 0)                      # read-only
    assert bus.read(0x71, 2) == 0xFF and dev.bad_accesses == 2


@pytest.mark.parametrize("value", [0x00, 0x12, 0xFF])
def test_post_port_ignores_writes(value):
    bus, _, _ = make()
    bus.write(0x80, 1, value)
    assert bus.read(0x80, 1) == value and bus.unowned_writes == 0
