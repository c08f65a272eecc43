"""hx_snprintf running in the guest against the host C library's snprintf (the reference), with hypothesis:
random formats (flags, width, precision for %s, length modifiers) and values; both outputs must be byte-equal."""

from __future__ import annotations

import ctypes
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

EXAMPLES = 3000 if os.environ.get("PVGEN_HYPOTHESIS_PROFILE") == "long" else 150

GUEST = r"""
#include "harness.h"
struct mailbox {
	char fmt[128];
	unsigned long args[4];
	char strs[4][64];
	int ret, stop;
	char out[512];
};
volatile struct mailbox mb;

int hx_main(void)
{
	for (;;) {
		hx_mark(9);
		if (mb.stop)
			return 0;
		mb.ret = hx_snprintf((char *)mb.out, sizeof(mb.out), (const char *)mb.fmt, mb.args[0], mb.args[1],
				     mb.args[2], mb.args[3]);
	}
}
"""
MB = struct.Struct("<128s4Q256sii512s")

INT_CONV = "diuxX"
LENGTHS = ["", "l", "ll", "z", "h", "hh"]


@st.composite
def spec(draw):
    conv = draw(st.sampled_from(list(INT_CONV) + ["c", "s", "%", "p"]))
    if conv == "%":
        return "%%", None
    flags = ""
    if draw(st.booleans()):
        flags += "-"
    if conv in INT_CONV and draw(st.booleans()):
        flags += "0"
    if conv in "xX" and draw(st.booleans()):
        flags += "#"
    width = draw(st.one_of(st.just(""), st.integers(1, 20).map(str)))
    prec = ""
    if conv == "s" and draw(st.booleans()):
        prec = "." + str(draw(st.integers(0, 10)))
    length = draw(st.sampled_from(LENGTHS)) if conv in INT_CONV else ""
    if conv == "s":
        value = ("s", draw(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20)))
    elif conv == "c":
        value = ("i", draw(st.integers(32, 126)))
    elif conv == "p":
        value = ("i", draw(st.integers(1, (1 << 64) - 1)))
    else:
        value = ("i", draw(st.integers(0, (1 << 64) - 1)))
    return f"%{flags}{width}{prec}{length}{conv}", value


@st.composite
def formats(draw):
    parts, values = [], []
    for _ in range(draw(st.integers(1, 4))):
        parts.append(draw(st.text(alphabet="ab :|[]", max_size=4)))
        text, value = draw(spec())
        parts.append(text)
        if value is not None:
            values.append(value)
        if len(values) == 4:
            break
    return "".join(parts), values


@pytest.fixture(scope="module")
def guest(tmp_path_factory):
    from pvgen.guest.build import build_guest
    from pvgen.vmm import layout
    from pvgen.vmm.machine import Machine

    d = tmp_path_factory.mktemp("printf")
    (d / "pf.c").write_text(GUEST)
    image = build_guest([d / "pf.c"], d / "pf.elf")
    m = Machine()
    m.pause_marks = {9}
    m.boot(image)
    assert m.run(timeout=30).stop == "paused"
    yield m, m.symbol_map["mb"], layout.virt_to_phys(m.symbol_map["mb"])
    m.mem.write(layout.virt_to_phys(m.symbol_map["mb"]) + 128 + 32 + 256 + 4, struct.pack("<i", 1))
    assert m.run(timeout=30).stop == "exit"
    m.close()


def test_hx_snprintf_matches_c_snprintf(kvm, guest):
    m, mb_va, mb_gpa = guest
    libc = ctypes.CDLL(None)

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(formats())
    def check(case):
        fmt, values = case
        args, cargs, strs = [0, 0, 0, 0], [], [b""] * 4
        for i, (kind, v) in enumerate(values):
            if kind == "s":
                strs[i] = v.encode()
                args[i] = mb_va + 128 + 32 + 64 * i
                cargs.append(ctypes.c_char_p(strs[i]))
            else:
                args[i] = v
                cargs.append(ctypes.c_uint64(v))
        m.mem.write(mb_gpa, MB.pack(fmt.encode(), *args, b"".join(s.ljust(64, b"\0") for s in strs), -1, 0, b""))
        res = m.run(timeout=10)
        assert res.stop == "paused", res.message
        _, *_, ret, _, out = MB.unpack(m.mem.read(mb_gpa, MB.size))
        ref = ctypes.create_string_buffer(512)
        want = libc.snprintf(ref, 512, fmt.encode(), *cargs)
        assert (ret, out[:min(ret, 511)]) == (want, ref.raw[:min(want, 511)]), fmt

    check()
