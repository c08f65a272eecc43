"""The bzImage loader's data: the setup header read from Debian's kernel, the zero page, refused images."""

from __future__ import annotations

import struct

import pytest

from pvgen.errors import PvgenError
from pvgen.vmm import linuxboot as lb


@pytest.fixture
def debian_image(prerequisite):
    from pvgen.qemu.kernel import ensure_kernel

    try:
        return ensure_kernel().image
    except PvgenError as exc:
        prerequisite(False, f"Debian's kernel image ({exc})")


def test_parse_debian_bzimage(debian_image):
    img = lb.BzImage.parse(debian_image)
    assert img.version >= lb.MIN_VERSION
    assert len(img.setup) % 512 == 0 and len(img.setup) + len(img.kernel) == debian_image.stat().st_size
    assert img.init_size > len(img.kernel)        # it decompresses into more than it occupies


def test_zero_page(debian_image):
    img = lb.BzImage.parse(debian_image)
    zp = lb.zero_page(img, 256 << 20, 0x20000, (0x8000000, 0x123456))
    assert zp[lb.HEADER:lb.HEADER + 4] == b"HdrS" and zp[lb.TYPE_OF_LOADER] == 0xFF
    assert struct.unpack_from("<I", zp, lb.CMD_LINE_PTR)[0] == 0x20000
    assert struct.unpack_from("<II", zp, lb.RAMDISK_IMAGE) == (0x8000000, 0x123456)
    n = zp[lb.E820_ENTRIES]
    table = [lb.E820_ENTRY.unpack_from(zp, lb.E820_TABLE + i * lb.E820_ENTRY.size) for i in range(n)]
    assert sum(size for _, size, kind in table if kind == lb.E820_RAM) == (256 << 20) - (lb.KERNEL_GPA - lb.EBDA_START)
    assert all(a + s == b for (a, s, _), (b, _, _) in zip(table, table[1:]))     # contiguous, no overlap


def test_refuses_what_is_not_a_bzimage(tmp_path):
    bad = tmp_path / "vmlinux"
    bad.write_bytes(b"\x7fELF" + bytes(8192))
    with pytest.raises(PvgenError, match="not a bzImage"):
        lb.BzImage.parse(bad)
    with pytest.raises(PvgenError, match="cannot read"):
        lb.BzImage.parse(tmp_path / "missing")
