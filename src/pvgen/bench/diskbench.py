"""The disk workload's host side: the initial image, the reference model, and the check of every byte."""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pvgen.bench import workload as wl
from pvgen.bench.runner import GuestRun


@functools.lru_cache(maxsize=2)
def _initial(seed: int, size: int) -> bytes:
    return bytes(wl.initial_image(seed, size))


@dataclass
class DiskHost:
    """One variant's disk: a fresh image with the seed's initial content (as a bytearray and, for models that need a
    file, as an image file); after the run the image must equal the reference model byte for byte."""

    seed: int
    ops: int
    size: int = wl.DEFAULT_IMAGE
    workload: str = "disk"
    image: bytearray = field(init=False)
    path: Path | None = None

    def __post_init__(self) -> None:
        self.image = bytearray(_initial(self.seed, self.size))

    @property
    def blocks(self) -> int:
        return self.size // wl.BLOCK

    def image_file(self, directory: str | None = None) -> Path:
        """Write the initial image to a file (for device models backed by a file); verify() then reads it back."""
        fd, name = tempfile.mkstemp(prefix="pvgen-disk-", suffix=".img", dir=directory)
        with os.fdopen(fd, "wb") as f:
            f.write(self.image)
        self.path = Path(name)
        return self.path

    def final_image(self) -> bytes:
        if self.path is not None:
            data = self.path.read_bytes()
            self.path.unlink(missing_ok=True)
            return data
        return bytes(self.image)

    def verify(self, run: GuestRun) -> list[str]:
        return verify_disk(self.seed, self.ops, _initial(self.seed, self.size), self.final_image(), run.console)


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
