"""Each runtime thunk alone under unicorn: exactly the original instruction's effect, for both DF and counts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "differential"))
import pvio_gen as G  # noqa: E402
import pvio_oracle as O  # noqa: E402

DF, CF_ZF_SF_OF = 0x400, 0x8C1
RETURN_THUNK = "\t.globl __x86_return_thunk\n__x86_return_thunk:\n\tret\n"
# Builds of the thunks: the plain one, and the Linux-kernel one (return thunk, no cld in in/out/hlt thunks).
BUILDS = {"plain": (), "kernel": ("-DPVIO_KERNEL", "-DPVIO_RETHUNK")}


def _one_per_thunk(bits: int) -> list[G.Site]:
    seen: dict[str, G.Site] = {}
    for s in G.site_spellings(bits):
        if "(" not in s.text and ";" not in s.text:
            seen.setdefault(s.thunk, s)
    return list(seen.values())


CASES = [(bits, s) for bits in (64, 32, 16) for s in _one_per_thunk(bits)]


def test_every_abi_name_is_covered() -> None:
    names = {(b, s.thunk) for b, s in CASES}
    assert len(names) == 3 * 25  # in/out x b/w/l x dx/imm, [rep] ins/outs x b/w/l, hlt; per mode


def _reg(bits: int, name: str) -> str:
    return ("r" if bits == 64 else "e") + name


# The kernel build exists for 64 and 32 bits only (no 16-bit code in a Linux module).
BUILD_CASES = [(bits, s, build) for build in sorted(BUILDS) for bits, s in CASES if bits != 16 or build == "plain"]


@pytest.mark.parametrize("bits,site,build", BUILD_CASES, ids=[f"{b}-{s.thunk}-{k}" for b, s, k in BUILD_CASES])
def test_thunk_matches_instruction(bits: int, site: G.Site, build: str) -> None:
    mode = O.MODES[bits]
    if site.port_form == "imm":
        site = G.Site(site.text.replace("PORT", "0xf1"), site.kind, site.width, "imm", site.rep, 0xF1)
    lines = [(site.text, site)]
    runtime = O.build_runtime(mode, extra=BUILDS[build])
    img = O.link_pair(mode, G.render(lines, bits, False), G.render(lines, bits, True), runtime, RETURN_THUNK)
    sym = img.symbols
    size = G.WIDTHS.get(site.width, 0)
    # The kernel build relies on DF=0 at in/out/hlt calls (the kernel ABI); string thunks must take both.
    dfs = (0, DF) if build == "plain" or site.kind in ("ins", "outs") else (0,)
    counts = (0, 1, 3) if site.rep else (2,)
    for df in dfs:
        for count in counts:
            for arith in (0, CF_ZF_SF_OF):
                m = O.Machine.make(mode, seed=count * 7 + df + arith, eflags=0x202 | df | arith,
                                   regs={_reg(bits, "cx"): (0xABCD0000 if bits == 16 else 0) | count,
                                         _reg(bits, "dx"): 0x5A5A01F0})      # the port is %dx only
                a = O.run(mode, img, sym["orig_start"], sym["orig_end"], m)
                b = O.run(mode, img, sym["rw_start"], sym["rw_end"], m)
                where = f"{site.text} DF={df >> 10} count={count} flags={arith:#x}"
                assert O.differences(a, b, sym["orig_end"], sym["rw_end"]) == [], where
                _expected_effect(bits, site, size, m, b, df, count, where)


def _expected_effect(bits: int, site: G.Site, size: int, m: O.Machine, out: O.Outcome, df: int, count: int,
                     where: str) -> None:
    """The effect written down from the SDM, not taken from the emulator's run of the original."""
    changed = {}
    acc = _reg(bits, "ax")
    mask = (1 << (8 * size)) - 1 if size else 0
    assert out.eflags == m.eflags & O.EFLAGS_MASK, where
    if site.kind == "in":
        (ev,) = out.trace
        assert ev[:3] == ("in", site.port if site.port_form == "imm" else 0x1F0, size), where
        keep = 0 if (size == 4) else m.regs[acc] & ~mask      # inl clears the upper half of %rax
        changed[acc] = keep | ev[3]
    elif site.kind == "out":
        assert out.trace == [("out", site.port if site.port_form == "imm" else 0x1F0, size, m.regs[acc] & mask)], where
    elif site.kind == "hlt":
        assert out.trace == [("hlt",)], where
    else:
        n = count if site.rep else 1
        ptr = _reg(bits, "di" if site.kind == "ins" else "si")
        step = -size if df else size
        # 16-bit code addresses with %di/%si and counts with %cx: only the low halves change, modulo 64 KiB.
        amask = 0xFFFF if bits == 16 else (1 << bits) - 1
        keep = m.regs[ptr] & ~amask
        addrs = [(m.regs[ptr] + i * step) & amask for i in range(n)]
        changed[ptr] = keep | ((m.regs[ptr] + n * step) & amask)
        if site.rep:
            changed[_reg(bits, "cx")] = m.regs[_reg(bits, "cx")] & ~amask
        assert [e[:3] for e in out.trace] == [("in" if site.kind == "ins" else "out", 0x1F0, size)] * n, where
        mem = [int.from_bytes(out.data[a - out.data_base:a - out.data_base + size], "little") for a in addrs]
        assert mem == [e[3] for e in out.trace], where
    for r, v in m.regs.items():
        assert out.regs[r] == changed.get(r, v), f"{where}: {r} {out.regs[r]:#x}, expected {changed.get(r, v):#x}"
