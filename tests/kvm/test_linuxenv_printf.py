"""The environment's printk formatter (the kernel's printf dialect) agrees with C printf, checked in the guest.

Hypothesis draws batches of (format, value) cases; one guest run formats a whole batch with lx_snprintf and prints
each result between markers. Profiles: "default" few batches; PVGEN_HYPOTHESIS_PROFILE=long many more.
"""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvgen.guest.linux import build as lxbuild
from pvgen.guest.linux import objects as elfobj

settings.register_profile("lxenv-default", max_examples=4, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.register_profile("lxenv-long", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
PROFILE = "lxenv-long" if os.environ.get("PVGEN_HYPOTHESIS_PROFILE") == "long" else "lxenv-default"

# length modifier -> (C type of the argument, bits, signed C cast of the value)
LENGTHS = {"hh": ("int", 8), "h": ("int", 16), "": ("int", 32), "l": ("long", 64), "ll": ("long long", 64),
           "z": ("unsigned long", 64)}


@st.composite
def int_case(draw):
    conv = draw(st.sampled_from("diuxXo"))
    length = draw(st.sampled_from(sorted(LENGTHS)))
    bits = LENGTHS[length][1]
    signed = conv in "di"
    if signed:
        value = draw(st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1))
    else:
        value = draw(st.integers(0, (1 << bits) - 1))
    flags = draw(st.sets(st.sampled_from("-0#+ " if signed else "-0#")).map(lambda s: "".join(sorted(s))))
    if signed:
        flags = flags.replace("#", "")
    if conv == "o":
        flags = flags.replace("#", "")          # Python spells the octal prefix 0o
    width = draw(st.one_of(st.just(""), st.integers(1, 24).map(str)))
    fmt = f"%{flags}{width}{length}{conv}"
    pyconv = "d" if conv in "iu" else conv
    expect = f"%{flags}{width}{pyconv}" % value
    if "#" in flags and value == 0:
        expect = f"%{flags.replace('#', '')}{width}{pyconv}" % 0   # C: "%#x" of 0 is "0"
    ctype = "unsigned " * (not signed and length in ("", "l", "ll", "hh", "h")) + LENGTHS[length][0]
    if length == "z":
        ctype = "unsigned long"
    return fmt, f"({ctype})0x{value & ((1 << 64) - 1):x}ULL", expect


@st.composite
def str_case(draw):
    s = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 .:-", max_size=20))
    left = draw(st.booleans())
    width = draw(st.one_of(st.just(""), st.integers(1, 24).map(str)))
    prec = draw(st.one_of(st.just(""), st.integers(0, 24).map(lambda p: f".{p}")))
    fmt = f"%{'-' if left else ''}{width}{prec}s"
    return fmt, '"' + s + '"', fmt % s


@st.composite
def mac_case(draw):
    mac = draw(st.binary(min_size=6, max_size=6))
    colons = draw(st.booleans())
    init = "(const unsigned char[]){" + ",".join(str(b) for b in mac) + "}"
    return ("%pM" if colons else "%pm"), init, (":" if colons else "").join(f"{b:02x}" for b in mac)


CASES = st.lists(st.one_of(int_case(), str_case(), mac_case()), min_size=1, max_size=40)


def guest_source(cases) -> str:
    lines = ["int lx_snprintf(char *buf, unsigned long n, const char *fmt, ...);",
             "int hx_printf(const char *fmt, ...);", "int hx_main(void);", "int hx_main(void)", "{",
             "\tstatic char buf[256];"]
    for i, (fmt, arg, _) in enumerate(cases):
        lines.append(f'\tlx_snprintf(buf, sizeof(buf), "{fmt}", {arg});')
        lines.append(f'\thx_printf("<{i}|%s|>\\n", buf);')
    lines += ["\treturn 0;", "}"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def env_objects(kernel_headers, linux_source_tarball):
    lb = lxbuild.build("net")
    return [o for o in lb.env if o.name in ("lx_printf.o", "lx_string.o", "lx_core.o")]


@settings(settings.get_profile(PROFILE))
@given(cases=CASES)
def test_lx_snprintf_matches_c_printf(kvm, env_objects, tmp_path_factory, cases):
    from pvgen.guest.build import CFLAGS, compile_source, link_image
    from pvgen.vmm.machine import Machine

    d = tmp_path_factory.mktemp("printf")
    src = d / "printf_cases.c"
    src.write_text(guest_source(cases))
    obj = compile_source(src, list(CFLAGS) + ["-Wno-format"], out_dir=d)
    # lx_core.o defines the thunks the Kbuild objects call; jiffies is the harness's tick counter.
    rel = elfobj.link_relocatable([obj, *env_objects], d / "printf.o", renames={"jiffies": "hx_jiffies"})
    image = link_image([rel], d / "printf.elf")
    with Machine(ram_mb=32) as m:
        m.boot(image, "")
        res = m.run(timeout=30)
    console = res.console.decode(errors="replace")
    assert res.stop == "exit" and res.code == 0, console
    got = dict((int(i), s) for i, s in re.findall(r"<(\d+)\|(.*?)\|>", console))
    for i, (fmt, arg, expect) in enumerate(cases):
        assert got.get(i) == expect, f"{fmt} of {arg}: got {got.get(i)!r}, expected {expect!r}"
