"""The workload generator: the guest's C header (guest/pvideal/workload.h) and bench/workload.py agree bit for bit."""

from __future__ import annotations

import subprocess
import zlib

import pytest

from pvgen.bench import workload as wl

HEADER_DIR = wl.GUEST_DIR

PROG = r"""
#include <stdio.h>
#include "workload.h"
int main(int argc, char **argv) {
    (void)argc; (void)argv;
    static wl_u8 buf[4096];
    const char *cmd = "wl=disk ops=77 seed=0x1234abcd batch=4";
    printf("param %llu %llu %llu %llu %d %d\n", wl_param(cmd, "ops", 0), wl_param(cmd, "seed", 0),
           wl_param(cmd, "batch", 0), wl_param(cmd, "missing", 99), wl_is(cmd, "disk"), wl_is(cmd, "net"));
    wl_u32 crc = 0;
    for (int i = 0; i < 40; i++) {
        unsigned len = wl_frame(7, i % 2 ? WL_TAG_RX : WL_TAG_TX, i, buf);
        printf("frame %d %u %08x\n", i, len, wl_crc32(0, buf, len));
        crc = wl_frame_crc(crc, buf, len);
    }
    printf("chain %08x\n", crc);
    for (int i = 0; i < 77; i++)
        printf("disk %d %d %llu\n", i, wl_disk_is_write(i, 77), wl_disk_block(0x1234abcd, i, 77, 16384));
    wl_write_data(0x1234abcd, 5, buf);
    printf("data %08x\n", wl_crc32(0, buf, 4096));
    return 0;
}
"""


@pytest.fixture(scope="module")
def c_output(gcc, tmp_path_factory) -> list[str]:
    d = tmp_path_factory.mktemp("wl")
    (d / "t.c").write_text(PROG)
    subprocess.run([gcc, "-O2", "-Wall", "-Werror", f"-I{HEADER_DIR}", str(d / "t.c"), "-o", str(d / "t")],
                   check=True)
    return subprocess.run([str(d / "t")], check=True, capture_output=True, text=True).stdout.splitlines()


def test_params_parse_like_the_python_side(c_output):
    assert c_output[0] == "param 77 305441741 4 99 1 0"
    p = wl.Params("disk", 77, seed=0x1234ABCD, batch=4)
    assert "wl=disk" in p.cmdline() and "ops=77" in p.cmdline()


def test_frames_equal(c_output):
    lines = [l for l in c_output if l.startswith("frame")]
    frames = []
    for i, line in enumerate(lines):
        f = wl.frame(7, wl.TAG_RX if i % 2 else wl.TAG_TX, i)
        frames.append(f)
        assert line == f"frame {i} {len(f)} {zlib.crc32(f):08x}"
        assert wl.FRAME_MIN <= len(f) <= wl.FRAME_MAX
        assert f[:6] == wl.BROADCAST and f[12:14] == b"\x88\xb5"
    chain = next(l for l in c_output if l.startswith("chain"))
    assert chain == f"chain {wl.frames_crc(frames):08x}"


def test_disk_plan_equal(c_output):
    plan = wl.disk_plan(0x1234ABCD, 77, 16384)
    lines = [l for l in c_output if l.startswith("disk")]
    assert lines == [f"disk {op.index} {int(op.write)} {op.block}" for op in plan]
    data = next(l for l in c_output if l.startswith("data"))
    assert data == f"data {zlib.crc32(wl.write_data(0x1234ABCD, 5)):08x}"


def test_disk_plan_shape():
    plan = wl.disk_plan(3, 100, 16384)
    kinds = [op.write for op in plan]
    assert kinds == [True] * 25 + [False] * 25 + [True] * 25 + [False] * 25
    assert [op.block for op in plan[:25]] == list(range(25)) == [op.block for op in plan[25:50]]


def test_model_replay_reads_back_writes():
    seed, ops = 5, 8
    img = wl.initial_image(seed, 1 << 20)
    model = wl.DiskModel(bytearray(img))
    plan = wl.disk_plan(seed, ops, len(img) // wl.BLOCK)
    model.replay(seed, plan)
    # the sequential reads (quarter 1) read back the sequential writes (quarter 0)
    expect = 0
    for op in plan:
        if not op.write:
            if op.index < ops // 2:
                expect = zlib.crc32(wl.write_data(seed, op.index - ops // 4), expect)
            else:
                expect = zlib.crc32(model.image[op.block * 4096:(op.block + 1) * 4096], expect)
    assert model.reads == 4 and model.writes == 4
    assert model.read_crc == expect


def test_parse_result():
    text = "boot\nPVGEN-RESULT tx=3 rx=2 rx_crc=0x0000abcd\nbye\n"
    assert wl.parse_result(text) == {"tx": 3, "rx": 2, "rx_crc": 0xABCD}
    with pytest.raises(wl.PvgenError):
        wl.parse_result("no result here")
