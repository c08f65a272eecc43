"""The byte pre-scan and the ctypes decoder never change what the scanner finds: random code and real objects."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvgen.toolchain import capstone_c
from pvgen.toolchain.objscan import IO_OPCODE_BYTES, _disassemble, _Decoders, _kind, scan

IO_BYTES = sorted(set(range(0x6C, 0x70)) | set(range(0xE4, 0xE8)) | set(range(0xEC, 0xF0)) | {0xF4})
OTHER = [b for b in range(256) if b not in IO_BYTES]
# Prefixes that may precede an I/O opcode (legacy, REX): code made mostly of these and I/O opcodes stresses
# the claim that an I/O instruction needs its opcode byte inside the decoded range.
PREFIXES = [0x66, 0x67, 0xF2, 0xF3, 0x2E, 0x26, 0x64, 0x65, 0xF0, *range(0x40, 0x50)]


def io_of(decoders, data, syms, modes, prescan):
    return [(off, m, ops, bits) for off, m, ops, bits in _disassemble(decoders, data, syms, modes, 64, prescan)
            if _kind(m)]




@st.composite
def code(draw) -> bytes:
    """Bytes without I/O opcodes, with 0-2 of them (behind prefixes) inserted: most ranges hold none or one."""
    out = draw(st.lists(st.sampled_from(OTHER + PREFIXES * 4), max_size=250))
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(out)))
        insn = draw(st.lists(st.sampled_from(PREFIXES), max_size=3)) + [draw(st.sampled_from(IO_BYTES))]
        out[at:at] = insn
    return bytes(out)


@pytest.mark.parametrize("bits", [16, 32, 64])
def test_each_io_opcode_alone_is_found(bits):
    """Every opcode byte of the table, as the one I/O byte of its range, survives the pre-scan."""
    for op in IO_BYTES:
        data = bytes([0x90, 0x66, op, 0x00, 0xC3])
        found = io_of(_Decoders(binding=False), data, [], [(0, bits)], prescan=True)
        assert found and found == io_of(_Decoders(binding=True), data, [], [(0, bits)], prescan=False), hex(op)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=code(), cuts=st.lists(st.integers(0, 299), max_size=6),
       modes=st.lists(st.tuples(st.integers(0, 299), st.sampled_from([16, 32, 64])), max_size=3))
def test_prescan_never_skips_an_io_instruction(data, cuts, modes):
    syms = [(c, 1, f"f{c}") for c in cuts]
    full = io_of(_Decoders(binding=True), data, syms, modes, prescan=False)
    assert io_of(_Decoders(binding=False), data, syms, modes, prescan=True) == full
    if not IO_OPCODE_BYTES.search(data):
        assert full == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=400), bits=st.sampled_from([16, 32, 64]))
def test_ctypes_decoder_yields_what_the_binding_yields(data, bits):
    assert list(capstone_c.decoder(bits).disasm_lite(data, 0x1000)) == list(
        capstone_c.decoder(bits, binding=True).disasm_lite(data, 0x1000))


def test_the_ctypes_decoder_is_in_use():
    """The wheel's library is found, so pvgen-as does not pay for `import capstone`."""
    assert capstone_c._library() is not None
    assert isinstance(capstone_c.decoder(64), capstone_c.CDecoder)


def _real_objects(tmp_path: Path) -> list[Path]:
    from pvgen.toolchain.linuxsrc import cache_root

    found = sorted((cache_root() / "kbuild").glob("*/*/*.ko"))[:6]
    src = tmp_path / "io.c"
    src.write_text('static inline unsigned char inb(unsigned short p) { unsigned char v; '
                   '__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }\n'
                   'int f(int x) { return inb(0x60) + x * 7; }\nint g(void) { return inb(0x3f8) & 1; }\n')
    for bits in (64, 32):
        obj = tmp_path / f"io{bits}.o"
        subprocess.run(["gcc", f"-m{bits}", "-O2", "-c", str(src), "-o", str(obj)], check=True)
        found.append(obj)
    return found


def test_real_objects_give_the_same_hits_with_and_without_the_shortcuts(tmp_path, gcc):
    objs = _real_objects(tmp_path)
    total = 0
    for obj in objs:
        fast = scan(obj)
        assert fast == scan(obj, prescan=False, binding=True), obj
        total += len(fast)
    assert total >= 2  # the two small objects hold one `in` each at least
    if len(objs) == 2:
        pytest.skip("checked the small objects only: no Kbuild corpus module built yet (`pvgen kbuild`)")


def test_without_the_library_the_binding_decodes(monkeypatch, tmp_path, gcc):
    monkeypatch.setattr(capstone_c, "_lib", False)
    assert not isinstance(capstone_c.decoder(32), capstone_c.CDecoder)
    obj = _real_objects(tmp_path)[-1]
    monkeypatch.undo()
    slow = scan(obj)
    monkeypatch.setattr(capstone_c, "_lib", False)
    assert scan(obj) == slow and [h.kind for h in slow] == ["in", "in"]
