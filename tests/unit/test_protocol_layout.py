"""The batch protocol declaration: layout invariants, class words, entry validation, the generated C header."""

from __future__ import annotations

import subprocess

import pytest

from pvgen import protocol as P
from pvgen.errors import ProtocolError
from pvgen.protocol import BatchRejected, Op, PortClass, Status
from pvgen.runtime.build import RUNTIME_DIR
from pvgen.runtime.commands import HEADER_PATH


def test_protocol_checked_in_header_is_current():
    assert HEADER_PATH.read_text() == P.c_header(), "run `pvgen runtime header`"


def test_protocol_header_compiles_and_its_static_asserts_hold(tmp_path):
    src = tmp_path / "h.c"
    src.write_text('#include "pvio_protocol.h"\nstruct pvio_area a;\n')
    for arch in ("-m64", "-m32"):
        subprocess.run(["gcc", arch, "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-ffreestanding",
                        f"-I{RUNTIME_DIR}", "-c", str(src), "-o", str(tmp_path / "h.o")], check=True)


def test_protocol_header_asserts_catch_a_wrong_offset(tmp_path):
    bad = P.c_header().replace("pvio_u16 slot;", "pvio_u32 slot;")
    (tmp_path / "pvio_protocol.h").write_text(bad)
    src = tmp_path / "h.c"
    src.write_text('#include "pvio_protocol.h"\n')
    proc = subprocess.run(["gcc", "-std=gnu11", f"-I{tmp_path}", "-c", str(src), "-o", str(tmp_path / "h.o")],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "static assertion failed" in proc.stderr


def test_protocol_area_regions_are_ordered_and_page_sized():
    end = 0
    for _, off, size in P.AREA_REGIONS:
        assert off >= end
        end = off + size
    assert end == P.AREA_SIZE and P.AREA_SIZE % P.PAGE_SIZE == 0
    assert P.OFF_ENTRIES + P.ENTRY_CAPACITY * P.ENTRY.size <= P.PAGE_SIZE     # the queue is in the first page
    assert (P.HEADER.size, P.FIFO.size, P.ENTRY.size, P.SHADOW.size) == (100, 16, 16, 16)
    assert P.OFF_HEADER + P.HEADER.size <= P.OFF_FIFO


def test_protocol_port_class_names_and_values_are_stable():
    assert [(c.name, int(c)) for c in PortClass] == [("STRICT", 0), ("POSTED", 1), ("DOORBELL", 2), ("SHADOW", 3),
                                                     ("FIFO", 4), ("ENGINE", 5), ("DOORBELL_IF", 6)]


@pytest.mark.parametrize("rc", list(PortClass))
@pytest.mark.parametrize("wc", [PortClass.STRICT, PortClass.POSTED, PortClass.DOORBELL, PortClass.DOORBELL_IF])
def test_protocol_class_word_round_trip(rc, wc):
    for owned in (False, True):
        for effect in (False, True):
            w = P.class_word(rc, wc, owned=owned, read_effect=effect, slot=200)
            assert 0 <= w < 0x10000
            assert P.split_class_word(w) == (rc, wc, owned, effect, 200)
    # the hand-scheduled pvio_out tests bit 3 for "write class POSTED"
    assert bool(P.class_word(rc, wc) & 8) == (wc == PortClass.POSTED)


def test_protocol_doorbell_if_rings_only_on_a_masked_bit():
    masks = bytearray(P.SHADOW_SLOTS)
    masks[7] = 0x04
    w = P.class_word(PortClass.SHADOW, PortClass.DOORBELL_IF, slot=7)
    assert [P.is_doorbell(w, v, masks) for v in (0x22, 0x26, 0x04, 0x1FB)] == [False, True, True, False]
    assert P.is_doorbell(P.class_word(PortClass.STRICT, PortClass.DOORBELL), 0, masks)
    assert not P.is_doorbell(P.class_word(PortClass.STRICT, PortClass.POSTED, slot=7), 0x04, masks)


def test_protocol_class_word_rejects_bad_slot():
    with pytest.raises(ProtocolError):
        P.class_word(PortClass.SHADOW, PortClass.STRICT, slot=P.SHADOW_SLOTS)


def test_protocol_entry_round_trip():
    e = P.Entry(Op.OUTS, 0x1F0, 2, 256, 0x2000)
    assert P.decode_entry(e.encode(), 0, 1 << 20) == e
    assert P.decode_entry(P.Entry(Op.OUT, 0x80, 1, 0x5A).encode(), 0, 4096) == P.Entry(Op.OUT, 0x80, 1, 0x5A)


@pytest.mark.parametrize("raw,status", [
    (P.ENTRY.pack(port=0x80, size=1, op=9), Status.BAD_ENTRY),
    (P.ENTRY.pack(port=0x80, size=3, op=Op.OUT), Status.BAD_ENTRY),
    (P.ENTRY.pack(port=0xFFFF, size=2, op=Op.OUT), Status.BAD_ENTRY),
    (P.ENTRY.pack(port=0x80, size=1, op=Op.OUT, value=0x100), Status.BAD_ENTRY),
    (P.ENTRY.pack(port=0x80, size=2, op=Op.INS, value=0, gpa=0), Status.BAD_ADDRESS),
    (P.ENTRY.pack(port=0x80, size=2, op=Op.INS, value=8, gpa=4096 - 8), Status.BAD_ADDRESS),
    (P.ENTRY.pack(port=0x80, size=4, op=Op.OUTS, value=1 << 30, gpa=0), Status.BAD_ADDRESS),
    (P.ENTRY.pack(port=0x80, size=4, op=Op.OUTS, value=4, gpa=(1 << 64) - 8), Status.BAD_ADDRESS),
])
def test_protocol_entry_rejections(raw, status):
    with pytest.raises(BatchRejected) as info:
        P.decode_entry(raw, 3, 4096)
    assert info.value.status == status and "entry 3" in str(info.value)


def test_protocol_header_checks():
    good = dict(P.HEADER.unpack(P.HEADER.pack(magic=P.MAGIC, version=P.VERSION, area_size=P.AREA_SIZE,
                                              capacity=P.ENTRY_CAPACITY, state=P.State.ACTIVE, count=3)))
    P.check_header(good, slot=0)
    for field, value in (("magic", 0), ("version", P.VERSION + 1), ("area_size", 4096), ("capacity", 1000),
                         ("state", 0),
                         ("count", P.ENTRY_CAPACITY + 1), ("slot", 5)):
        with pytest.raises(BatchRejected, match=field.split("_")[0] if field != "count" else "count"):
            P.check_header({**good, field: value}, slot=0)
