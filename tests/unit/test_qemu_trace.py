"""QEMU trace lines cut into phases at the guest's parallel-port marks; the newc archive's layout."""

from __future__ import annotations

import shutil
import subprocess

from pvgen.qemu.cpio import Cpio
from pvgen.qemu.trace import MARK_SESSION, MARK_TAG, MARK_VARIANT, NE2000, TraceCounter, phase_accesses


def _mark(val: int) -> list[str]:
    return [f"parallel_ioport_write write [SW] addr 0x00 val {MARK_TAG:#x}",
            f"parallel_ioport_write write [SW] addr 0x00 val {val:#x}"]


def test_marks_cut_segments_and_boot_noise_is_ignored():
    t = TraceCounter(NE2000)
    lines = ["ne2000_read read addr=0x10 val=0xffff",                # before the session: boot, not counted
             "parallel_ioport_write write [SW] addr 0x00 val 0xaa",   # firmware probing the port
             *_mark(MARK_SESSION), *_mark(MARK_VARIANT),
             *_mark(10), "ne2000_write write addr=0x10 val=0x1", "ne2000_write write addr=0x7 val=0x1",
             "ide_ioport_read IDE PIO rd @ 0x7",                      # another device: not counted
             *_mark(11), "ne2000_read read addr=0x7 val=0x0", *_mark(12)]
    for ln in lines:
        t.feed(ln + "\n")
    [segs] = t.variants()
    assert [s.mark for s in segs] == [10, 11, 12]
    assert phase_accesses(segs, 10, 11) == {"ne2000_write +0x10": 1, "ne2000_write +0x7": 1}
    assert sum(phase_accesses(segs, 10, 12).values()) == 3
    assert phase_accesses(segs, 11, 13) is None
    assert t.prx_acks == 1 and t.last_mark == 12


def test_cpio_newc_lists_with_the_host_cpio(tmp_path):
    c = Cpio()
    c.file("a/b/c.txt", b"hello")
    c.symlink("a/link", "b/c.txt")
    c.chardev("dev/console", 5, 1)
    (tmp_path / "x.cpio").write_bytes(c.data())
    assert len(c.data()) % 4 == 0
    if shutil.which("cpio"):
        got = subprocess.run(["cpio", "-it", "--quiet"], input=c.data(), capture_output=True, check=True)
        assert got.stdout.decode().split() == ["a", "a/b", "a/b/c.txt", "a/link", "dev", "dev/console"]
