"""The disk image's lock (two monitors never share an image one writes) and the bench's `--image` rule (a missing
or empty file is created, a regular file at least the disk's size is taken, anything else refused in one line)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from pvgen.bench import workload as wl
from pvgen.bench.diskbench import DiskHost, open_image
from pvgen.devices.diskimage import DiskImage
from pvgen.errors import PvgenError

HOLDER = textwrap.dedent("""
    import sys
    from pvgen.devices.diskimage import DiskImage
    ro = sys.argv[2] == "ro"
    img = DiskImage(sys.argv[1], readonly=ro, create_sectors=None if ro else int(sys.argv[3]))
    print("locked", flush=True)
    sys.stdin.read()                 # hold it until killed
""")
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
CLI = [sys.executable, "-c", "from pvgen.cli import main; main()"]


@pytest.fixture
def holder(tmp_path):
    """Another process holding the image open (writable, or read-only with "ro"); killed with SIGKILL after."""
    procs = []

    def start(path, mode: str = "rw", sectors: int = 8) -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), mode, str(sectors)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=ENV)
        procs.append(p)
        assert p.stdout.readline().strip() == "locked"
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_second_writer_in_another_process_is_refused_until_the_first_dies(tmp_path, holder):
    path = tmp_path / "d.img"
    first = holder(path)
    with pytest.raises(PvgenError, match="in use by another process"):
        DiskImage(path)
    with pytest.raises(PvgenError, match="in use by another process"):
        DiskImage(path, readonly=True)           # nor read while another writes it
    first.send_signal(signal.SIGKILL)            # a killed monitor leaves no stale lock behind
    first.wait()
    DiskImage(path).close()


def test_readers_share_an_image_and_keep_a_writer_out(tmp_path, holder):
    path = tmp_path / "d.img"
    path.write_bytes(bytes(4096))
    holder(path, "ro")
    with DiskImage(path, readonly=True) as img:
        assert img.sectors == 8
    with pytest.raises(PvgenError, match="in use"):
        DiskImage(path)


@pytest.mark.parametrize("argv", [
    ["bench", "disk", "--ops", "4", "--variants", "pv-ideal", "--json", "{tmp}/r.json", "--image", "{img}"],
    ["linux", "run", "disk", "--image", "{img}"],
])
def test_a_second_monitor_on_a_locked_image_gets_one_line(tmp_path, holder, argv):
    """Two processes: one holds the image, the command in the other stops before running anything."""
    path = tmp_path / "d.img"
    holder(path, sectors=wl.DEFAULT_IMAGE // 512)          # sparse: a valid --image for the bench
    before = path.read_bytes()
    proc = subprocess.run(CLI + [a.format(tmp=tmp_path, img=path) for a in argv], capture_output=True, text=True,
                          env=ENV, timeout=120)
    assert one_line_error(proc) == (f"pvgen: disk image {path} is in use by another process, which holds a lock on "
                                    "it (two monitors must not share an image while one writes it)")
    assert path.read_bytes() == before and not (tmp_path / "r.json").exists()


def test_image_rule_creates_takes_or_refuses(tmp_path):
    size = 1 << 20
    missing = tmp_path / "new.img"
    with open_image(missing, size) as img:
        assert img.sectors * 512 == size and missing.stat().st_size == size
    empty = tmp_path / "empty.img"
    empty.touch()
    open_image(empty, size).close()
    assert empty.stat().st_size == size
    small = tmp_path / "small.img"
    small.write_bytes(bytes(size - 512))
    with pytest.raises(PvgenError, match=r"is 1048064 bytes, smaller than the 1 MiB disk"):
        open_image(small, size)
    assert small.stat().st_size == size - 512              # refused, not grown
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(PvgenError, match="not a regular file"):
        open_image(fifo, size)
    with pytest.raises(PvgenError, match="not a regular file"):
        DiskImage(fifo)                                  # the device itself refuses it too (and does not hang)
    with pytest.raises(PvgenError, match="not a regular file"):
        open_image(tmp_path, size)


def test_each_variant_starts_from_the_initial_image_and_the_file_keeps_the_last_final_image(tmp_path):
    size = 1 << 20
    path = tmp_path / "big.img"
    tail = b"\xa5" * 4096                                # past the disk: never touched
    path.write_bytes(bytes(size) + tail)
    img = open_image(path, size)
    assert img.sectors * 512 == size                      # the disk is the file's first `size` bytes
    first = DiskHost(3, 8, size=size, file=img)
    initial = first.final_image()
    assert initial == bytes(wl.initial_image(3, size))
    first.ata_backend().write(16, b"\x11" * 4096)         # what a variant writes...
    first.ring_disk().write(size - 4096, b"\x22" * 4096)
    assert first.final_image() != initial
    second = DiskHost(3, 8, size=size, file=img)          # ...the next one does not see
    assert second.final_image() == initial
    second.ring_disk().write(0, b"\x33" * 4096)
    img.close()
    data = path.read_bytes()
    assert data[:4096] == b"\x33" * 4096 and data[4096:size] == initial[4096:] and data[size:] == tail
