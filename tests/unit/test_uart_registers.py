"""16550 UART model: register semantics from the PC16550D datasheet, and the IIR/IER/LSR invariant (hypothesis)."""

from __future__ import annotations

import os

from hypothesis import given, settings, strategies as st

from pvgen.devices.uart16550 import (DLL, DLM, FCR, IER, IIR, IIR_NO_INT, IIR_RDI, IIR_RLSI, IIR_THRI, LCR,
                                     LSR, LSR_DR, LSR_OE, LSR_THRE, MCR, MSR, RBR, SCR, THR, Uart16550)
from pvgen.protocol import PortClass

# Small by default; PVGEN_HYPOTHESIS_PROFILE=long (make test-long) runs the long profile.
EXAMPLES = 5000 if os.environ.get("PVGEN_HYPOTHESIS_PROFILE") == "long" else 150


def make():
    out, lines = bytearray(), []
    u = Uart16550(output=out.extend, irq=lines.append)
    return u, out, lines


def test_reset_values():
    u, _, _ = make()
    assert u.io_read(LSR, 1) == LSR_THRE | 0x40
    assert u.io_read(IIR, 1) == IIR_NO_INT
    assert u.io_read(LCR, 1) == 0x03 and u.io_read(IER, 1) == 0


def test_transmit_goes_to_the_backend():
    u, out, _ = make()
    for b in b"hi\n":
        u.io_write(THR, 1, b)
    assert bytes(out) == b"hi\n"


def test_dlab_switches_offsets_0_and_1_to_the_divisor():
    u, out, _ = make()
    u.io_write(LCR, 1, 0x83)
    u.io_write(DLL, 1, 0x01)
    u.io_write(DLM, 1, 0x02)
    assert (u.dll, u.dlm) == (1, 2) and u.ier == 0 and out == b""
    assert u.io_read(DLL, 1) == 1 and u.io_read(DLM, 1) == 2
    u.io_write(LCR, 1, 0x03)
    assert u.io_read(IER, 1) == 0


def test_receive_raises_rdi_and_reading_rbr_lowers_it():
    u, _, lines = make()
    u.io_write(FCR, 1, 0x01)
    u.io_write(IER, 1, 0x01)
    u.receive(b"ab")
    assert lines == [True]
    assert u.io_read(IIR, 1) & 0x0F == IIR_RDI
    assert u.io_read(LSR, 1) & LSR_DR
    assert u.io_read(RBR, 1) == ord("a") and u.io_read(RBR, 1) == ord("b")
    assert not u.io_read(LSR, 1) & LSR_DR
    assert lines == [True, False]


def test_overrun_without_fifo_sets_oe_and_rlsi_wins():
    u, _, _ = make()
    u.io_write(IER, 1, 0x05)
    u.receive(b"xy")                     # FIFO off: one-byte holding register, the second byte is lost
    assert u.io_read(IIR, 1) & 0x0F == IIR_RLSI
    assert u.io_read(LSR, 1) & LSR_OE
    assert not u.io_read(LSR, 1) & LSR_OE   # cleared by the read
    assert u.io_read(RBR, 1) == ord("x")


def test_thre_interrupt_on_enable_and_cleared_by_iir_read():
    u, _, lines = make()
    u.io_write(IER, 1, 0x02)
    assert lines == [True]
    assert u.io_read(IIR, 1) & 0x0F == IIR_THRI
    assert u.io_read(IIR, 1) & 0x0F == IIR_NO_INT
    assert lines == [True, False]
    u.io_write(THR, 1, 0x41)             # the transmitter empties at once: THRE interrupt again
    assert lines[-1] is True


def test_out2_gates_the_line_and_loopback_echoes():
    u, out, lines = make()
    u.io_write(MCR, 1, 0x00)
    u.io_write(IER, 1, 0x02)
    assert lines == []
    u.io_write(MCR, 1, 0x18)             # OUT2 | LOOP
    assert lines == [True]
    u.io_write(FCR, 1, 0x01)
    u.io_write(THR, 1, 0x55)
    assert out == b"" and u.io_read(RBR, 1) == 0x55
    assert u.io_read(MSR, 1) & 0xF0 == 0x80          # OUT2 -> DCD in loopback


def test_scratch_and_bad_sizes_are_counted_not_fatal():
    u, _, _ = make()
    u.io_write(SCR, 1, 0x5A)
    assert u.io_read(SCR, 1) == 0x5A
    u.io_write(THR, 2, 0x4142)
    assert u.io_read(LSR, 4) == 0xFF
    assert u.bad_accesses == 2


def test_port_classes_post_writes_and_keep_reads_strict():
    u, _, _ = make()
    classes = u.port_classes()
    assert set(classes) == set(range(8))
    assert all(r == PortClass.STRICT and w == PortClass.POSTED for r, w in classes.values())


ops = st.lists(st.one_of(
    st.tuples(st.just("w"), st.integers(0, 7), st.integers(0, 255)),
    st.tuples(st.just("r"), st.integers(0, 7), st.just(0)),
    st.tuples(st.just("rx"), st.integers(1, 20), st.just(0)),
), max_size=60)


@settings(max_examples=EXAMPLES, deadline=None)
@given(ops)
def test_iir_and_line_consistent_with_ier_lsr(seq):
    u, _, lines = make()
    for kind, a, b in seq:
        if kind == "w":
            u.io_write(a, 1, b)
        elif kind == "r":
            u.io_read(a, 1)
        else:
            u.receive(bytes(range(a)))
        iir = u.iir() & 0x0F
        if u.ier & 0x04 and u.lsr & 0x1E:
            assert iir == IIR_RLSI
        elif u.ier & 0x01 and u.lsr & LSR_DR:
            assert iir == IIR_RDI
        if iir == IIR_RDI:
            assert u.lsr & LSR_DR and u.ier & 0x01
        assert bool(u.lsr & LSR_DR) == bool(u.rx)
        assert u.irq_level == (iir != IIR_NO_INT and bool(u.mcr & 0x08))
        assert not lines or lines[-1] == u.irq_level
        assert all(x != y for x, y in zip(lines, lines[1:]))   # only edges are signalled
