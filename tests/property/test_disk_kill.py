"""kill -9 of the file-backed disk path: the durability promise of docs/devices.md ("Disk backends and durability").

A child process runs libata's polled WRITE MULTIPLE requests (wl_disk.c's sequence) through the C runtime (host
build), the batch monitor with the in-guest models, and AtaDisk on a DiskImage, with a FLUSH CACHE every
FLUSH_EVERY writes; after each request it appends to a log what the guest observed: "A i e" when write i completed
(its last Status read shows DRDY|DSC, neither BSY, DRQ nor ERR; e = exits so far), "F n" when a FLUSH CACHE issued
after n writes completed.  The log is written with os.write: it is in the page cache, which outlives a killed
process (this is a process kill, not a host crash, so no fsync is needed for either file).  The parent kills the
child with SIGKILL at a random moment and checks the image file:
- it equals the reference model after n writes, every earlier write whole and no later one, for some n with
  lower <= n <= acknowledged + 1 (a write may have completed before its log line);
- the block of write n may be caught mid-write: each of its sectors then holds its old or its new content, and
  the new ones are a prefix (nothing torn);
- lower is the promise: with the write cache off (write-through) every acknowledged write; with it on (write-back:
  a completion means "staged in the area") every write acknowledged before the last completed FLUSH CACHE.
The exits per request in the log show which path ran (write-back: most requests complete without an exit).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pvgen import protocol as P
from pvgen.devices import ata as A
from pvgen.devices.bus import PortBus
from pvgen.devices.diskimage import SECTOR_SIZE, DiskImage

CMD, CTL = A.ATA_PRIMARY_CMD, A.ATA_PRIMARY_CTL
STATUS, ALT, DATA = CMD + A.ATA_REG_STATUS, CTL + A.ATA_REG_ALTSTATUS, CMD + A.ATA_REG_DATA
BLOCK, BLOCKS = 4096, 64                 # a small disk: blocks are written again and again (order shows)
SPB = BLOCK // SECTOR_SIZE
RAM, AREA, BUF = 2 << 20, 0x10000, 0x80000
FLUSH_EVERY = 20
DONE = A.ATA_DRDY | A.ATA_DSC


def block_of(seed: int, i: int) -> int:
    return random.Random(seed * 1_000_003 + i).randrange(BLOCKS)


def data_of(seed: int, i: int) -> bytes:
    return random.Random(seed ^ (i + 1) << 32).randbytes(BLOCK)


def initial(seed: int) -> bytes:
    return random.Random(seed).randbytes(BLOCKS * BLOCK)


# --- the child: the guest and the monitor in one process ----------------------------------------------------------
def child(lib: str, image: str, log: str, write_cache: bool, seed: int) -> None:
    from pvgen.devices.pvbatch import PvBatch
    from pvgen.runtime.hostlib import HostMemory, HostOp, HostRuntime, Hop, Strict

    disk = A.AtaDisk(DiskImage(image))
    bus = PortBus()
    A.attach_primary(bus, disk)
    mem = HostMemory(RAM)
    bus.register(P.CTRL_BASE, P.CTRL_LEN, PvBatch(bus, mem, models=True))
    rt = HostRuntime(lib, mem, lambda port, value: bus.write(port, 4, value),
                     Strict(lambda p, s: bus.read(p, s), lambda p, s, v: bus.write(p, s, v)))
    rt.lib.pvio_fini()
    assert rt.init(AREA) == 0
    out = lambda port, v: HostOp(Hop.OUT, port, 1, v, 0)     # noqa: E731
    inb = lambda port: HostOp(Hop.IN, port, 1, 0, 0)          # noqa: E731

    def command(tf: list[tuple[int, int]], cmd: int, data: bool = False) -> list[int]:
        """ata_sff_tf_load + ata_sff_exec_command + ata_sff_busy_wait (+ one DRQ block and its busy wait)."""
        ops = [out(CMD + off, v) for off, v in tf] + [inb(STATUS), out(STATUS, cmd), inb(ALT), inb(STATUS)]
        if data:
            ops += [HostOp(Hop.OUTS, DATA, 2, BLOCK // 2, mem.base + BUF), inb(STATUS)]
        return rt.run(ops)

    def expect(got: int, want: int, what: str) -> None:
        if got != want:
            sys.exit(f"{what}: status {got:#04x}, expected {want:#04x}")

    rt.run([out(CTL, A.ATA_NIEN | 0x08)])
    expect(command([(2, SPB), (6, 0xA0)], A.ATA_CMD_SET_MULTI)[-1], DONE, "SET MULTIPLE")
    if not write_cache:
        expect(command([(1, A.SETFEATURES_WC_OFF), (6, 0xA0)], A.ATA_CMD_SET_FEATURES)[-1], DONE, "SET FEATURES")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    print("ready", flush=True)
    i = 0
    while True:
        lba = block_of(seed, i) * SPB
        mem.write(BUF, data_of(seed, i))
        tf = [(1, 0), (2, SPB), (3, lba & 0xFF), (4, lba >> 8 & 0xFF), (5, lba >> 16 & 0xFF), (6, A.ATA_LBA)]
        res = command(tf, A.ATA_CMD_WRITE_MULTI, data=True)
        expect(res[-3], DONE | A.ATA_DRQ, f"write {i} DRQ")
        expect(res[-1], DONE, f"write {i}")
        os.write(fd, f"A {i} {rt.exits}\n".encode())
        i += 1
        if i % FLUSH_EVERY == 0:
            expect(command([(6, 0xA0)], A.ATA_CMD_FLUSH)[-1], DONE, "FLUSH CACHE")
            os.write(fd, f"F {i}\n".encode())


# --- the parent: kill it, then hold the file to the promise ---------------------------------------------------------
@pytest.fixture(scope="module")
def host_runtime(tmp_path_factory, gcc) -> str:
    from pvgen.runtime.build import build

    return str(build("host", "batch", tmp_path_factory.mktemp("rt") / "pvio_host.so"))


def prefix_states(seed: int, image: bytes, upto: int) -> list[int]:
    """Every n <= upto such that the image is the model after n writes, write n possibly caught mid-write (a prefix
    of its sectors new, the rest old)."""
    model = bytearray(initial(seed))
    found = []
    for n in range(upto + 1):
        b = block_of(seed, n)
        lo, hi = b * BLOCK, (b + 1) * BLOCK
        if image[:lo] == model[:lo] and image[hi:] == model[hi:]:
            new, cur = data_of(seed, n), image[lo:hi]
            states = [cur[s:s + SECTOR_SIZE] == new[s:s + SECTOR_SIZE] if cur[s:s + SECTOR_SIZE] !=
                      model[lo + s:lo + s + SECTOR_SIZE] else None for s in range(0, BLOCK, SECTOR_SIZE)]
            torn_sector = any(s is False for s in states)       # neither old nor new
            new_after_old = any(states[k] and states[k - 1] is None for k in range(1, SPB))
            if not torn_sector and not new_after_old:
                found.append(n)
        model[lo:hi] = data_of(seed, n)
    return found


@pytest.mark.parametrize("write_cache", [False, True], ids=["write-through", "write-back"])
def test_killed_monitor_keeps_the_durability_promise(tmp_path, host_runtime, write_cache):
    rng = random.Random()
    seed, delay = rng.randrange(1 << 32), rng.uniform(0.3, 1.5)
    image, log = tmp_path / "disk.img", tmp_path / "acks.log"
    image.write_bytes(initial(seed))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.Popen([sys.executable, __file__, host_runtime, str(image), str(log), str(int(write_cache)),
                             str(seed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    why = f"seed {seed}, killed {delay:.2f} s after the first request"
    assert proc.returncode == -signal.SIGKILL, (why, proc.stderr.read())
    acks, flushed, exits = -1, 0, 0
    for line in log.read_text().splitlines():
        kind, *nums = line.split()
        if kind == "A":
            acks, exits = int(nums[0]), int(nums[1])
        else:
            flushed = int(nums[0])
    assert acks >= 2 * FLUSH_EVERY, f"{why}: only {acks + 1} writes before the kill: not a test"
    acknowledged = acks + 1
    # which path ran: write-back completes most writes in the guest (an exit per staged-buffer refill and per
    # flush); write-through exits at least for every command
    per_write = exits / acknowledged
    assert (per_write < 0.5) if write_cache else (per_write >= 1), f"{why}: {per_write:.2f} exits per write"
    lower = flushed if write_cache else acknowledged
    found = prefix_states(seed, image.read_bytes(), acknowledged + 1)
    assert found, f"{why}: the image is no prefix of the writes (nor one torn at a sector boundary)"
    assert any(lower <= n <= acknowledged + 1 for n in found), \
        f"{why}: the image holds the first {found} writes; {acknowledged} were acknowledged, {flushed} flushed"
    with DiskImage(image):            # the killed monitor's lock went with it
        pass


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1", int(sys.argv[5]))
