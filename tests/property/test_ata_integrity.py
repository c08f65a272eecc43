"""ATA data integrity: random reads and writes through the register protocol against a reference image.

Every command goes through the task file, the command register, status polling and the data port (16- or 32-bit),
like libata-sff; the image file must equal the reference after close, and a monitor killed mid-run (SIGKILL)
must not lose a write whose completion the guest had seen.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvgen.devices import ata as A
from pvgen.devices.bus import PortBus
from pvgen.devices.diskimage import SECTOR_SIZE, DiskImage

PROFILE = os.environ.get("PVGEN_HYPOTHESIS_PROFILE", "default")
EXAMPLES = {"long": 1000}.get(PROFILE, 40)
DISK_SECTORS = 96

READS = [A.ATA_CMD_PIO_READ, A.ATA_CMD_PIO_READ_EXT, A.ATA_CMD_READ_MULTI, A.ATA_CMD_READ_MULTI_EXT]
WRITES = [A.ATA_CMD_PIO_WRITE, A.ATA_CMD_PIO_WRITE_EXT, A.ATA_CMD_WRITE_MULTI, A.ATA_CMD_WRITE_MULTI_EXT]
EXT = {A.ATA_CMD_PIO_READ_EXT, A.ATA_CMD_READ_MULTI_EXT, A.ATA_CMD_PIO_WRITE_EXT, A.ATA_CMD_WRITE_MULTI_EXT}


class Host:
    """A PIO host driver in the shape of libata-sff: tf_load, exec_command, poll status, data_xfer(32)."""

    def __init__(self, bus: PortBus):
        self.bus = bus

    def issue(self, cmd: int, lba: int, count: int) -> None:
        b = self.bus
        if cmd in EXT:
            b.write(0x1F2, 1, count >> 8 & 0xFF)
            b.write(0x1F3, 1, lba >> 24 & 0xFF)
            b.write(0x1F4, 1, 0)
            b.write(0x1F5, 1, 0)
        b.write(0x1F2, 1, count & 0xFF)
        b.write(0x1F3, 1, lba & 0xFF)
        b.write(0x1F4, 1, lba >> 8 & 0xFF)
        b.write(0x1F5, 1, lba >> 16 & 0xFF)
        b.write(0x1F6, 1, 0xE0 | (0 if cmd in EXT else lba >> 24 & 0x0F))
        b.write(0x1F7, 1, cmd)

    def read(self, cmd: int, lba: int, count: int, width: int) -> bytes | None:
        self.issue(cmd, lba, count)
        out = bytearray()
        while True:
            st_ = self.bus.read(0x1F7, 1)
            if st_ & A.ATA_ERR:
                return None
            if not st_ & A.ATA_DRQ:
                return bytes(out)
            for _ in range(self._block_bytes(cmd, count, len(out)) // width):
                out += self.bus.read(0x1F0, width).to_bytes(width, "little")

    def write(self, cmd: int, lba: int, data: bytes, width: int) -> bool:
        count = len(data) // SECTOR_SIZE
        self.issue(cmd, lba, count)
        pos = 0
        while True:
            st_ = self.bus.read(0x3F6, 1)
            if st_ & A.ATA_ERR:
                return False
            if not st_ & A.ATA_DRQ:
                return pos == len(data) and not self.bus.read(0x1F7, 1) & A.ATA_ERR
            n = self._block_bytes(cmd, count, pos)
            for i in range(pos, pos + n, width):
                self.bus.write(0x1F0, width, int.from_bytes(data[i:i + width], "little"))
            pos += n

    @staticmethod
    def _block_bytes(cmd: int, count: int, done: int) -> int:
        multi = cmd in (A.ATA_CMD_READ_MULTI, A.ATA_CMD_READ_MULTI_EXT, A.ATA_CMD_WRITE_MULTI,
                        A.ATA_CMD_WRITE_MULTI_EXT)
        per = (A.MAX_MULTIPLE if multi else 1) * SECTOR_SIZE
        return min(per, count * SECTOR_SIZE - done)


op = st.one_of(
    st.tuples(st.just("w"), st.sampled_from(WRITES), st.integers(0, DISK_SECTORS - 1), st.integers(1, 20),
              st.sampled_from([2, 4]), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("r"), st.sampled_from(READS), st.integers(0, DISK_SECTORS - 1), st.integers(1, 20),
              st.sampled_from([2, 4]), st.just(b"")),
    st.tuples(st.just("f"), st.sampled_from([A.ATA_CMD_FLUSH, A.ATA_CMD_FLUSH_EXT]), st.just(0), st.just(0),
              st.just(2), st.just(b"")),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=25))
def test_random_io_matches_reference_and_file_after_close(ops):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "disk.img"
        image = DiskImage(path, create_sectors=DISK_SECTORS)
        dev = A.AtaDisk(image)
        bus = PortBus()
        A.attach_primary(bus, dev)
        host = Host(bus)
        ref = bytearray(DISK_SECTORS * SECTOR_SIZE)
        differences = 0
        for kind, cmd, lba, count, width, seed in ops:
            end = lba + count
            if kind == "w":
                data = (seed * (count * SECTOR_SIZE // len(seed) + 1))[:count * SECTOR_SIZE]
                ok = host.write(cmd, lba, data, width)
                assert ok == (end <= DISK_SECTORS)
                if ok:
                    ref[lba * SECTOR_SIZE:end * SECTOR_SIZE] = data
            elif kind == "r":
                got = host.read(cmd, lba, count, width)
                if end > DISK_SECTORS:
                    assert got is None   # IDNF
                else:
                    differences += got != bytes(ref[lba * SECTOR_SIZE:end * SECTOR_SIZE])
            else:
                host.issue(cmd, 0, 0)
                assert bus.read(0x1F7, 1) == A.ATA_DRDY | A.ATA_DSC
        assert differences == 0
        image.close()
        assert path.read_bytes() == bytes(ref)


CHILD = textwrap.dedent("""
    import sys
    from pvgen.devices import ata as A
    from pvgen.devices.bus import PortBus
    from pvgen.devices.diskimage import DiskImage
    sys.path.insert(0, sys.argv[2])
    from test_ata_integrity import Host, pattern
    image = DiskImage(sys.argv[1])
    bus = PortBus()
    A.attach_primary(bus, A.AtaDisk(image))
    host = Host(bus)
    for i in range(image.sectors):
        assert host.write(A.ATA_CMD_PIO_WRITE, i, pattern(i), 2)
        print(i, flush=True)       # the guest has seen this write complete
    sys.stdin.read()               # wait to be killed; never closes or fsyncs the image
""")


def pattern(i: int) -> bytes:
    return (i.to_bytes(4, "little") + b"pvgen-ata") * 37 + bytes(512 - 13 * 37)


def test_killed_monitor_loses_no_completed_write(tmp_path):
    sectors = 4000
    path = tmp_path / "disk.img"
    DiskImage(path, create_sectors=sectors).close()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(Path(__file__).parent)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    completed = []
    try:
        for line in child.stdout:   # kill it while it is still writing
            completed.append(int(line))
            if len(completed) == 300:
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert len(completed) == 300
    data = path.read_bytes()
    lost = [i for i in completed if data[i * 512:(i + 1) * 512] != pattern(i)]
    assert lost == []
