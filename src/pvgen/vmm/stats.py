"""Exit accounting: KVM's binary statistics (KVM_GET_STATS_FD) read by name, KVM_RUN returns by exit reason, tables."""

from __future__ import annotations

import ctypes
import json
import os
import struct
from dataclasses import dataclass, field

from pvgen.vmm import kvm

# The statistics every report shows first, in this order (others follow alphabetically in the full table).
KEY_STATS = ("exits", "io_exits", "mmio_exits", "halt_exits", "irq_exits", "insn_emulation",
             "irq_injections", "irq_window_exits", "nmi_window_exits", "request_irq_exits",
             "signal_exits", "halt_wakeup", "pf_taken")

_DESC = struct.Struct("<IhHII")   # flags, exponent, size, offset, bucket_size (then name[name_size])
KVM_STATS_TYPE_MASK = 0xF
KVM_STATS_TYPE_CUMULATIVE, KVM_STATS_TYPE_INSTANT, KVM_STATS_TYPE_PEAK = 0, 1, 2


@dataclass(frozen=True)
class StatDesc:
    name: str
    offset: int     # byte offset of the first u64 inside the data block
    size: int       # number of u64 values (1 for scalars; histograms are skipped)
    kind: int


class StatsFd:
    """One KVM binary-statistics file descriptor (vCPU or VM). Parsed once; snapshot() is one pread."""

    def __init__(self, owner_fd: int):
        self.fd = kvm.ioctl(owner_fd, kvm.KVM_GET_STATS_FD)
        hdr = kvm.kvm_stats_header.from_buffer_copy(os.pread(self.fd, ctypes.sizeof(kvm.kvm_stats_header), 0))
        self.id = os.pread(self.fd, hdr.name_size, hdr.id_offset).split(b"\0", 1)[0].decode()
        stride = _DESC.size + hdr.name_size
        raw = os.pread(self.fd, stride * hdr.num_desc, hdr.desc_offset)
        descs = []
        end = 0
        for i in range(hdr.num_desc):
            flags, _exp, size, offset, _bucket = _DESC.unpack_from(raw, i * stride)
            name = raw[i * stride + _DESC.size:(i + 1) * stride].split(b"\0", 1)[0].decode()
            descs.append(StatDesc(name, offset, size, flags & KVM_STATS_TYPE_MASK))
            end = max(end, offset + 8 * size)
        self.descs = descs
        self.scalars = [d for d in descs if d.size == 1]
        self.data_offset = hdr.data_offset
        self.data_size = end
        self._fmt = struct.Struct(f"<{end // 8}Q")

    def names(self) -> list[str]:
        return [d.name for d in self.scalars]

    def snapshot(self) -> dict[str, int]:
        """Every scalar statistic by name, read in one pread."""
        values = self._fmt.unpack(os.pread(self.fd, self.data_size, self.data_offset))
        return {d.name: values[d.offset // 8] for d in self.scalars}

    def read(self, name: str) -> int:
        for d in self.scalars:
            if d.name == name:
                return int.from_bytes(os.pread(self.fd, 8, self.data_offset + d.offset), "little")
        raise KeyError(name)

    def close(self) -> None:
        os.close(self.fd)


@dataclass
class ExitReport:
    """A phase of a run: KVM statistics deltas and KVM_RUN returns by exit reason, plus wall time."""

    stats: dict[str, int] = field(default_factory=dict)
    run_exits: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    extra: dict = field(default_factory=dict)

    @staticmethod
    def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
        return {k: v - before.get(k, 0) for k, v in after.items()}

    def to_json(self) -> dict:
        return {"kvm_stats": dict(self.stats), "kvm_run_exits": dict(self.run_exits),
                "wall_s": self.wall_s, **self.extra}


def ordered_stats(stats: dict[str, int], full: bool = False) -> list[tuple[str, int]]:
    """KEY_STATS first in their order; with full, every other non-zero statistic after them."""
    out = [(k, stats[k]) for k in KEY_STATS if k in stats]
    if full:
        out += sorted((k, v) for k, v in stats.items() if k not in KEY_STATS and v)
    return out


def render_table(report: ExitReport, title: str = "KVM exits", full: bool = False):
    """A rich table like `perf kvm stat`: KVM statistics, then KVM_RUN returns by reason with their share."""
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    t.add_column("source")
    t.add_column("event")
    t.add_column("count", justify="right")
    t.add_column("share", justify="right")
    t.add_column("per sec", justify="right")
    exits = max(report.stats.get("exits", 0), 1)
    secs = report.wall_s or 0.0
    for name, value in ordered_stats(report.stats, full):
        share = f"{100.0 * value / exits:.1f}%" if name.endswith("_exits") or name == "exits" else ""
        rate = f"{value / secs:,.0f}" if secs > 0 else ""
        t.add_row("kvm stats", name, f"{value:,}", share, rate)
    runs = sum(report.run_exits.values()) or 1
    for reason, value in sorted(report.run_exits.items(), key=lambda kv: -kv[1]):
        rate = f"{value / secs:,.0f}" if secs > 0 else ""
        t.add_row("KVM_RUN", reason, f"{value:,}", f"{100.0 * value / runs:.1f}%", rate)
    ports = report.extra.get("io_exits_by_port") or {}
    for name, value in sorted(ports.items(), key=lambda kv: -kv[1])[:8]:
        t.add_row("KVM_EXIT_IO", name, f"{value:,}", f"{100.0 * value / runs:.1f}%", "")
    t.add_row("", "wall time", f"{secs * 1e3:,.1f} ms", "", "")
    return t


def print_table(report: ExitReport, title: str = "KVM exits", full: bool = False, file=None) -> None:
    import sys

    from rich.console import Console

    stream = file or sys.stderr
    width = None if getattr(stream, "isatty", lambda: False)() else 120
    Console(file=stream, width=width).print(render_table(report, title, full))


def write_json(path: str, payload: dict) -> None:
    from pvgen.outputs import write_output

    write_output(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
