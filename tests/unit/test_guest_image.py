"""Guest images the monitor refuses up front, with one line (issue 12): a relocatable .o, an entry point outside the
loaded segments, a truncated copy, something that is not ELF. No /dev/kvm needed: the check comes first."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from pvgen.vmm.guestimage import GuestImageError, read_image
from tests.one_line import assert_one_line, run_pvgen

RAM = 128 << 20
E_ENTRY, E_SHOFF, E_SHNUM = 24, 40, 60      # offsets in the ELF-64 header


@pytest.fixture(scope="module")
def image(tmp_path_factory, gcc) -> Path:
    from pvgen.guest.build import build_guest

    d = tmp_path_factory.mktemp("img")
    (d / "g.c").write_text('#include "harness.h"\nint hx_main(void) { hx_printf("hi\\n"); return 0; }\n')
    return build_guest([d / "g.c"], d / "g.elf")


def _variant(image: Path, tmp_path: Path, name: str, edit) -> Path:
    raw = bytearray(image.read_bytes())
    raw = edit(raw) or raw
    out = tmp_path / name
    out.write_bytes(bytes(raw))
    return out


def test_the_good_image_loads(image):
    img = read_image(image, RAM)
    assert img.entry == img.symbols["_start"] and len(img.segments) >= 2 and "hx_main" in img.symbols


def test_relocatable_object(gcc):
    from pvgen.guest.build import harness_objects

    with pytest.raises(GuestImageError, match=r"relocatable object \(ET_REL\), not a linked guest image"):
        read_image(harness_objects()[0], RAM)


def test_entry_point_outside_the_segments(image, tmp_path):
    bad = _variant(image, tmp_path, "entry.elf", lambda b: struct.pack_into("<Q", b, E_ENTRY, 0xffffffff80f00000))
    with pytest.raises(GuestImageError, match=r"entry point 0xffffffff80f00000 is not inside an executable loaded"):
        read_image(bad, RAM)


def test_entry_point_in_data(image, tmp_path):
    data = next(s for s in read_image(image, RAM).segments if not s.flags & 1)
    bad = _variant(image, tmp_path, "data.elf", lambda b: struct.pack_into("<Q", b, E_ENTRY, data.vaddr))
    with pytest.raises(GuestImageError, match="not inside an executable loaded segment"):
        read_image(bad, RAM)


@pytest.mark.parametrize("keep", [4, 40, 64, 100, 0.5, -1])
def test_truncated_copies(image, tmp_path, keep):
    size = image.stat().st_size
    n = int(size * keep) if isinstance(keep, float) else (size + keep if keep < 0 else keep)
    bad = _variant(image, tmp_path, "cut.elf", lambda b: b[:n])
    with pytest.raises(GuestImageError, match=r"truncated: .*(end of the file|shorter than an ELF header)"):
        read_image(bad, RAM)


def test_truncated_segment_without_section_headers(image, tmp_path):
    def strip(b):
        struct.pack_into("<Q", b, E_SHOFF, 0)
        struct.pack_into("<H", b, E_SHNUM, 0)
        return b[:0x1100]
    bad = _variant(image, tmp_path, "noshdr.elf", strip)
    with pytest.raises(GuestImageError, match=r"truncated: segment 0 .* past the end of the file"):
        read_image(bad, RAM)


@pytest.mark.parametrize("content, problem", [(b"", "the file is empty"), (b"hello\n", "not an ELF file"),
                                              (b"\x7fELF\x01\x01\x01" + bytes(60), "not a 64-bit")])
def test_not_an_x86_64_elf(tmp_path, content, problem):
    p = tmp_path / "x.elf"
    p.write_bytes(content)
    with pytest.raises(GuestImageError, match=problem):
        read_image(p, RAM)


def test_pie_executable():
    true = shutil.which("true")
    if true is None or Path(true).read_bytes()[16] != 3:
        pytest.skip("no ET_DYN `true` on this system")
    with pytest.raises(GuestImageError, match=r"ET_DYN"):
        read_image(Path(true), RAM)


def test_image_larger_than_ram(image):
    with pytest.raises(GuestImageError, match="outside guest RAM"):
        read_image(image, (1 << 20) + 0x1000)


def test_run_refuses_with_one_line(image, tmp_path, gcc):
    from pvgen.guest.build import harness_objects

    cut = _variant(image, tmp_path, "cut.elf", lambda b: b[:200])
    for path, needle in ((harness_objects()[0], "ET_REL"), (cut, "truncated")):
        assert_one_line(run_pvgen("run", str(path)), str(path), needle)
