"""Disk image backend: capacity, write-through, sync policies, read-only images, errors as one-line PvgenErrors."""

from __future__ import annotations

import pytest

from pvgen.devices import ata as A
from pvgen.devices.bus import PortBus
from pvgen.devices.diskimage import DiskImage
from pvgen.errors import EnvironmentMissing, PvgenError


def test_capacity_is_whole_sectors_and_writes_reach_the_file_before_close(tmp_path):
    p = tmp_path / "d.img"
    p.write_bytes(bytes(512 * 10 + 100))                  # a partial last sector is not addressable
    img = DiskImage(p)
    assert img.sectors == 10
    img.write(3, b"\xab" * 1024)
    assert p.read_bytes()[3 * 512:5 * 512] == b"\xab" * 1024   # written through, no close needed
    assert img.read(9, 1) == bytes(512)
    img.flush()
    assert img.flushes == 1
    img.close()
    img.close()                                           # idempotent


def test_sync_always_and_bad_policy(tmp_path):
    img = DiskImage(tmp_path / "s.img", sync="always", create_sectors=4)
    img.write(0, b"x" * 512)
    img.close()
    assert (tmp_path / "s.img").read_bytes()[:512] == b"x" * 512
    with pytest.raises(PvgenError, match="sync policy"):
        DiskImage(tmp_path / "s.img", sync="sometimes")


def test_missing_image_is_environment_missing(tmp_path):
    with pytest.raises(EnvironmentMissing, match="cannot open"):
        DiskImage(tmp_path / "nope.img")


def test_readonly_image_aborts_guest_writes(tmp_path):
    p = tmp_path / "ro.img"
    p.write_bytes(b"\x11" * 512 * 8)
    img = DiskImage(p, readonly=True)
    dev = A.AtaDisk(img)
    bus = PortBus()
    A.attach_primary(bus, dev)
    bus.write(0x1F2, 1, 1)
    bus.write(0x1F6, 1, 0xE0)
    bus.write(0x1F7, 1, A.ATA_CMD_PIO_WRITE)
    assert bus.read(0x1F7, 1) & A.ATA_ERR and bus.read(0x1F1, 1) == A.ATA_ABORTED
    assert dev.metrics["write_to_readonly"] == 1
    bus.write(0x1F7, 1, A.ATA_CMD_PIO_READ)
    assert bus.read(0x1F0, 2) == 0x1111
    img.close()
    assert p.read_bytes() == b"\x11" * 512 * 8


class FailingDisk:
    sectors = 16

    def read(self, lba, count):
        raise OSError(5, "EIO")

    def write(self, lba, data):
        raise OSError(28, "ENOSPC")

    def flush(self):
        raise OSError(5, "EIO")

    def close(self):
        pass


def test_backend_errors_abort_the_command_never_raise():
    dev = A.AtaDisk(FailingDisk())
    bus = PortBus()
    A.attach_primary(bus, dev)
    for cmd in (A.ATA_CMD_PIO_READ, A.ATA_CMD_FLUSH):
        bus.write(0x1F2, 1, 1)
        bus.write(0x1F6, 1, 0xE0)
        bus.write(0x1F7, 1, cmd)
        assert bus.read(0x1F7, 1) & A.ATA_ERR
    bus.write(0x1F7, 1, A.ATA_CMD_PIO_WRITE)
    for _ in range(256):
        bus.write(0x1F0, 2, 0)
    assert bus.read(0x1F7, 1) & A.ATA_ERR and dev.metrics["backend_error"] == 3
