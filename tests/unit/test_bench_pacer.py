"""The bench's receive pacer (bench/linuxkit.py RxPacer) on the NE2000 model: bounded bursts, never an overflow."""

from __future__ import annotations

from collections import deque

from pvgen.bench.linuxkit import PUMP_BURST, RxPacer
from pvgen.devices import ne2000 as ne


def nic_ready() -> ne.Ne2000:
    nic = ne.Ne2000()
    nic.started, nic.rcr, nic.page = True, ne.RCR_AB, 0
    nic.pstart, nic.pstop, nic.curr, nic.bnry = 0x46, 0x80, 0x47, 0x46
    return nic


def frames(n: int, size: int = 60) -> deque:
    return deque(b"\xff" * 6 + bytes([i % 256]) * (size - 6) for i in range(n))


def test_pumps_only_after_enable_and_only_on_prx_ack():
    nic, inbox = nic_ready(), frames(40)
    pacer = RxPacer(nic, inbox)
    pacer.io_write(ne.ISR, 1, ne.ISR_PRX)
    assert pacer.injected == 0                    # before the RX phase starts
    pacer.enabled = True
    assert pacer.pump() == PUMP_BURST
    pacer.io_write(ne.ISR, 1, ne.ISR_RDC)         # a remote-DMA ack is not a receive ack
    assert pacer.injected == PUMP_BURST
    pacer.io_write(ne.ISR, 1, ne.ISR_PRX | ne.ISR_RXE)
    assert pacer.injected == 2 * PUMP_BURST and len(inbox) == 40 - 2 * PUMP_BURST
    assert nic.metrics["rx_frames"] == 2 * PUMP_BURST


def test_a_full_ring_holds_frames_back_instead_of_overflowing():
    nic, inbox = nic_ready(), frames(100, size=1514)
    pacer = RxPacer(nic, inbox, enabled=True)
    for _ in range(10):
        pacer.pump()                              # the guest never frees a page (BNRY stays)
    ring = nic.pstop - nic.pstart
    assert 0 < pacer.injected < ring // 6 + 1     # 1514-byte frames take 6 pages each
    assert nic.metrics["rx_overflow"] == 0 and not nic.isr & ne.ISR_OVW
    assert len(inbox) == 100 - pacer.injected     # nothing dropped: the rest waits


def test_delegates_everything_else_to_the_nic():
    nic = nic_ready()
    pacer = RxPacer(nic, deque())
    assert pacer.port_classes() == nic.port_classes()
    assert pacer.io_read(ne.CR, 1) == nic.io_read(ne.CR, 1)
