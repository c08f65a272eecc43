"""The benchmark workloads as data: deterministic frames and disk requests that guest and host both derive from a seed.

The guest side is src/pvgen/guest/pvideal/workload.h (same generator, same order); docs/bench.md states the
contract every workload (pv-ideal and the Linux driver workloads) follows: the command line, the mark ids and the
PVGEN-RESULT console line that the host checks against this module.
"""

from __future__ import annotations

import random
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from pvgen.errors import PvgenError

GUEST_DIR = Path(__file__).resolve().parents[1] / "guest" / "pvideal"   # workload.h, pvideal.c, pvio_boot.c
M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
INDEX_MUL = 0xD1B54A32D192ED03

# Stream tags (ASCII, so a hexdump of a seed state is readable).
TAG_TX = 0x5458        # "TX"
TAG_RX = 0x5258        # "RX"
TAG_LBA = 0x4C42       # "LB"
TAG_DATA = 0x4454      # "DT"

# hx_mark ids bracketing the measured phases (the monitor snapshots KVM statistics at each).
MARK_TX_START, MARK_TX_END = 10, 11
MARK_RX_START, MARK_RX_END = 12, 13
MARK_PROBE_START, MARK_PROBE_END = 14, 15   # the Linux net workload's PCI probe: one operation, not in the total
MARK_DISK_START, MARK_DISK_END = 20, 21
MARK_DISK_Q1, MARK_DISK_Q2, MARK_DISK_Q3 = 22, 23, 24   # the first request of quarters 1, 2, 3 (disk_quarter_start)
PHASE_MARKS = {"probe": (MARK_PROBE_START, MARK_PROBE_END),
               "tx": (MARK_TX_START, MARK_TX_END), "rx": (MARK_RX_START, MARK_RX_END),
               "disk": (MARK_DISK_START, MARK_DISK_END),
               "seq-write": (MARK_DISK_START, MARK_DISK_Q1), "seq-read": (MARK_DISK_Q1, MARK_DISK_Q2),
               "rand-write": (MARK_DISK_Q2, MARK_DISK_Q3), "rand-read": (MARK_DISK_Q3, MARK_DISK_END)}
# phases that add up others (the disk's writes and reads, each two quarters)
PHASE_SUMS = {"write": ("seq-write", "rand-write"), "read": ("seq-read", "rand-read")}
# phases of a one-time step that only some guests have (the Linux drivers' PCI probe; pv-ideal finds its ring
# device at a fixed port): measured as one operation where both marks were recorded, absent elsewhere, and kept out
# of "total" (a sum of per-frame work)
SETUP_PHASES = frozenset({"probe"})

FRAME_MIN, FRAME_MAX = 60, 1514
ETHERTYPE = 0x88B5                      # IEEE 802 local experimental ethertype
BROADCAST = b"\xff" * 6
GUEST_MAC = bytes.fromhex("020000000001")   # source of transmitted frames
PEER_MAC = bytes.fromhex("020000000002")    # source of injected (received) frames
BLOCK = 4096
DEFAULT_IMAGE = 64 << 20


def stream_init(seed: int, tag: int, index: int) -> int:
    """Initial splitmix64 state of the stream (seed, tag, index)."""
    return (seed ^ (tag << 32) ^ (index * INDEX_MUL)) & M64


def splitmix64(state: int) -> tuple[int, int]:
    """One splitmix64 step: (new state, output)."""
    state = (state + GOLDEN) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def stream_bytes(state: int, n: int) -> tuple[int, bytes]:
    """n bytes of the stream: each output word is stored little-endian, the last one truncated."""
    words = []
    for _ in range((n + 7) // 8):
        state, out = splitmix64(state)
        words.append(out)
    data = b"".join(w.to_bytes(8, "little") for w in words)
    return state, data[:n]


def frame(seed: int, tag: int, index: int) -> bytes:
    """Frame `index` of a TX (tag TAG_TX) or RX (TAG_RX) sequence: broadcast, fixed source, random length/payload."""
    s = stream_init(seed, tag, index)
    s, r = splitmix64(s)
    length = FRAME_MIN + r % (FRAME_MAX - FRAME_MIN + 1)
    src = GUEST_MAC if tag == TAG_TX else PEER_MAC
    _, payload = stream_bytes(s, length - 14)
    return BROADCAST + src + ETHERTYPE.to_bytes(2, "big") + payload


def frames_crc(frames: list[bytes]) -> int:
    """The chained CRC-32 (zlib) over each frame's 32-bit little-endian length followed by its bytes."""
    crc = 0
    for f in frames:
        crc = zlib.crc32(len(f).to_bytes(4, "little"), crc)
        crc = zlib.crc32(f, crc)
    return crc


@dataclass(frozen=True)
class DiskOp:
    index: int
    write: bool
    block: int           # 4 KiB block number (LBA = block * 8)


def disk_quarter_start(q: int, ops: int) -> int:
    """The first request of quarter q (0..4): the smallest i with (4 * i) // ops >= q (workload.h)."""
    return (q * ops + 3) // 4


def disk_plan(seed: int, ops: int, blocks: int) -> list[DiskOp]:
    """The request sequence: four quarters — sequential write, sequential read (reads the written blocks back),
    random write, random read. Op i is in quarter (4 * i) // ops."""
    plan = []
    for i in range(ops):
        q = (4 * i) // ops
        if q in (0, 1):
            block = (i - (q * ops + 3) // 4) % blocks
        else:
            _, r = splitmix64(stream_init(seed, TAG_LBA, i))
            block = r % blocks
        plan.append(DiskOp(i, q in (0, 2), block))
    return plan


def write_data(seed: int, index: int) -> bytes:
    """The 4 KiB written by disk op `index`."""
    return stream_bytes(stream_init(seed, TAG_DATA, index), BLOCK)[1]


def initial_image(seed: int, size: int = DEFAULT_IMAGE) -> bytearray:
    """The disk image's content before the run (host side only; the guest never needs to know it)."""
    return bytearray(random.Random(seed).randbytes(size))


@dataclass
class DiskModel:
    """The reference model of the disk: replays the plan over the initial image."""

    image: bytearray
    read_crc: int = 0
    reads: int = 0
    writes: int = 0

    def replay(self, seed: int, plan: list[DiskOp]) -> None:
        for op in plan:
            off = op.block * BLOCK
            if op.write:
                self.image[off:off + BLOCK] = write_data(seed, op.index)
                self.writes += 1
            else:
                self.read_crc = zlib.crc32(self.image[off:off + BLOCK], self.read_crc)
                self.reads += 1


@dataclass
class Params:
    """The workload parameters the host passes in the guest's command line (hx_cmdline())."""

    workload: str            # "net" or "disk"
    ops: int
    seed: int = 1
    batch: int = 1           # pv-ideal: requests per doorbell
    blocks: int = DEFAULT_IMAGE // BLOCK
    extra: dict[str, str] = field(default_factory=dict)

    def cmdline(self) -> str:
        parts = [f"wl={self.workload}", f"ops={self.ops}", f"seed={self.seed}", f"batch={self.batch}",
                 f"blocks={self.blocks}"]
        parts += [f"{k}={v}" for k, v in self.extra.items() if k.isalpha()]   # kit options carry a "_"
        return " ".join(parts)


_RESULT = re.compile(r"PVGEN-RESULT((?:\s+\w+=\S+)+)")


def parse_result(console: str) -> dict[str, int]:
    """The key=value pairs of the last PVGEN-RESULT line the guest printed (values are decimal or 0x hex)."""
    found = _RESULT.findall(console)
    if not found:
        raise PvgenError("the guest printed no PVGEN-RESULT line")
    out: dict[str, int] = {}
    for kv in found[-1].split():
        k, v = kv.split("=", 1)
        try:
            out[k] = int(v, 0)
        except ValueError:
            raise PvgenError(f"bad PVGEN-RESULT value {kv!r}") from None
    return out
