"""The disk workload's host side: the initial image, the reference model, and the check of every byte."""

from __future__ import annotations

import functools
import os
import stat
from dataclasses import dataclass, field

from pvgen.bench import workload as wl
from pvgen.bench.runner import GuestRun
from pvgen.devices.diskimage import SECTOR_SIZE, DiskBackend, DiskImage, MemoryDisk
from pvgen.errors import PvgenError


@functools.lru_cache(maxsize=2)
def _initial(seed: int, size: int) -> bytes:
    return bytes(wl.initial_image(seed, size))


@dataclass
class DiskHost:
    """One variant's disk with the seed's initial content: a fresh bytearray, or (`file`, `--image`) the image file
    reset to that content; after the run the image must equal the reference model byte for byte."""

    seed: int
    ops: int
    size: int = wl.DEFAULT_IMAGE
    workload: str = "disk"
    file: DiskImage | None = None
    image: bytearray | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.file is None:
            self.image = bytearray(_initial(self.seed, self.size))
        else:
            if self.file.sectors * SECTOR_SIZE != self.size:
                raise PvgenError(f"disk image {self.file.path} has {self.file.sectors} sectors, the disk needs "
                                 f"{self.size // SECTOR_SIZE}")
            self.file.write(0, _initial(self.seed, self.size))

    @property
    def blocks(self) -> int:
        return self.size // wl.BLOCK

    def ata_backend(self) -> DiskBackend:
        """The ATA model's storage: the image file, or the bytearray (in place, so verify() reads what it holds)."""
        return self.file if self.file is not None else MemoryDisk(self.size // SECTOR_SIZE, self.image)

    def ring_disk(self):
        """pv-ideal's storage, the same bytes as the ATA model's."""
        from pvgen.devices import pvring

        return pvring.BytesDisk(self.image) if self.file is None else pvring.SectorDisk(self.file)

    def final_image(self) -> bytes:
        return self.file.read(0, self.size // SECTOR_SIZE) if self.file is not None else bytes(self.image)

    def verify(self, run: GuestRun) -> list[str]:
        return verify_disk(self.seed, self.ops, _initial(self.seed, self.size), self.final_image(), run.console)


def open_image(path: str | os.PathLike, size: int = wl.DEFAULT_IMAGE) -> DiskImage:
    """`--image FILE`: the disk on a file, locked for the whole run (DiskImage).  The rule: a missing or empty
    file is created at the disk's size (sparse); a regular file of at least that size is taken, and its first
    `size` bytes are the disk (the rest is never touched); anything else is refused.  Each variant then starts
    from the seed's initial image written over those bytes (DiskHost), so after the run the file holds the final
    image of the last variant that ran."""
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise PvgenError(f"--image {p}: {e.strerror}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise PvgenError(f"--image {p} is not a regular file (a raw image file is needed; a missing one is created)")
    if st is not None and 0 < st.st_size < size:
        raise PvgenError(f"--image {p} is {st.st_size} bytes, smaller than the {size >> 20} MiB disk (give a "
                         f"missing or empty file, created at that size, or one of at least {size} bytes)")
    return DiskImage(p, create_sectors=size // SECTOR_SIZE, sectors=size // SECTOR_SIZE)


def verify_disk(seed: int, ops: int, initial: bytes, final: bytes, console: str) -> list[str]:
    """Replay the plan on the reference model; the guest's read CRC and the final image must both match it."""
    blocks = len(initial) // wl.BLOCK
    plan = wl.disk_plan(seed, ops, blocks)
    model = wl.DiskModel(bytearray(initial))
    model.replay(seed, plan)
    checks = []
    if len(final) != len(model.image):
        checks.append(f"FAIL: image is {len(final)} bytes, expected {len(model.image)}")
    elif final != model.image:
        bad = next(b for b in range(blocks) if final[b * wl.BLOCK:(b + 1) * wl.BLOCK]
                   != model.image[b * wl.BLOCK:(b + 1) * wl.BLOCK])
        checks.append(f"FAIL: image block {bad} differs from the reference model")
    else:
        checks.append(f"ok: image ({len(final) >> 20} MiB) equals the reference model after {model.writes} writes")
    try:
        res = wl.parse_result(console)
    except Exception as exc:  # noqa: BLE001 - a missing result line is a failed check
        return checks + [f"FAIL: {exc}"]
    got = (res.get("reads"), res.get("writes"), res.get("read_crc"))
    want = (model.reads, model.writes, model.read_crc)
    if got == want:
        checks.append(f"ok: {model.reads} reads ({model.reads * wl.BLOCK} bytes) match the model "
                      f"(crc {model.read_crc:#010x})")
    else:
        checks.append(f"FAIL: guest reads/writes/read_crc {got}, model {want}")
    if res.get("errors", 0):
        checks.append(f"FAIL: the guest counted {res['errors']} request errors")
    return checks
