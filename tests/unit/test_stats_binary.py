"""KVM binary statistics parsing (KVM_GET_STATS_FD layout, Documentation/virt/kvm/api.rst §4.134) and the tables."""

from __future__ import annotations

import io
import json
import os
import struct

import pytest

from pvgen.vmm import kvm, stats
from pvgen.vmm.stats import ExitReport, StatsFd, ordered_stats, render_table, write_json

NAME_SIZE = 48


def _blob(entries: list[tuple[str, int, list[int]]]) -> bytes:
    """A stats file: header, id, descriptors, data. entries: (name, flags, values)."""
    header_size = 24
    id_off = header_size
    desc_off = id_off + NAME_SIZE
    stride = 16 + NAME_SIZE
    data_off = desc_off + stride * len(entries)
    descs, data = b"", b""
    for name, flags, values in entries:
        descs += struct.pack("<IhHII", flags, 0, len(values), len(data), 0) + name.encode().ljust(NAME_SIZE, b"\0")
        data += struct.pack(f"<{len(values)}Q", *values)
    hdr = struct.pack("<6I", 0, NAME_SIZE, len(entries), id_off, desc_off, data_off)
    return hdr + b"vcpu-test".ljust(NAME_SIZE, b"\0") + descs + data


@pytest.fixture
def fake_stats(tmp_path, monkeypatch):
    path = tmp_path / "stats.bin"
    path.write_bytes(_blob([("exits", 0, [1234]), ("io_exits", 0, [1000]), ("halt_wait_hist", 0x100, [1, 2, 3]),
                            ("blocking", 1, [1]), ("irq_injections", 0, [7])]))

    def fake_ioctl(fd, request, arg=0, mutate=True):
        assert request == kvm.KVM_GET_STATS_FD
        return os.open(path, os.O_RDONLY)

    monkeypatch.setattr(kvm, "ioctl", fake_ioctl)
    return path


def test_parses_header_descriptors_and_data(fake_stats):
    s = StatsFd(-1)
    try:
        assert s.id == "vcpu-test"
        assert s.names() == ["exits", "io_exits", "blocking", "irq_injections"]   # histograms skipped
        assert s.snapshot() == {"exits": 1234, "io_exits": 1000, "blocking": 1, "irq_injections": 7}
        assert s.read("io_exits") == 1000
        with pytest.raises(KeyError):
            s.read("nope")
    finally:
        s.close()


def test_snapshot_follows_the_file(fake_stats):
    s = StatsFd(-1)
    blob = bytearray(fake_stats.read_bytes())
    data_off = struct.unpack_from("<6I", blob)[5]
    struct.pack_into("<Q", blob, data_off, 99)
    fake_stats.write_bytes(bytes(blob))
    try:
        assert s.snapshot()["exits"] == 99
    finally:
        s.close()


def test_delta_and_ordering():
    after = {"exits": 10, "io_exits": 4, "zzz": 3, "aaa": 0, "halt_exits": 1}
    before = {"exits": 4, "io_exits": 1, "zzz": 1, "aaa": 0, "halt_exits": 1}
    d = ExitReport.delta(after, before)
    assert d == {"exits": 6, "io_exits": 3, "zzz": 2, "aaa": 0, "halt_exits": 0}
    assert [k for k, _ in ordered_stats(d)] == ["exits", "io_exits", "halt_exits"]
    assert [k for k, _ in ordered_stats(d, full=True)] == ["exits", "io_exits", "halt_exits", "zzz"]


def test_table_and_json(tmp_path):
    from rich.console import Console

    rep = ExitReport({"exits": 200, "io_exits": 50}, {"IO": 150, "HLT": 50}, 0.5,
                     {"coalesced_entries": 3, "io_exits_by_port": {"out 0x510": 150}})
    buf = io.StringIO()
    Console(file=buf, width=120).print(render_table(rep, "T"))
    text = buf.getvalue()
    assert "io_exits" in text and "25.0%" in text and "75.0%" in text and "500.0 ms" in text
    assert "out 0x510" in text
    out = tmp_path / "r.json"
    write_json(str(out), rep.to_json())
    data = json.loads(out.read_text())
    assert data == {"kvm_stats": {"exits": 200, "io_exits": 50}, "kvm_run_exits": {"IO": 150, "HLT": 50},
                    "wall_s": 0.5, "coalesced_entries": 3, "io_exits_by_port": {"out 0x510": 150}}


def test_key_stats_are_the_issue_s_names():
    for name in ("exits", "io_exits", "mmio_exits", "halt_exits", "irq_exits", "insn_emulation", "irq_injections"):
        assert name in stats.KEY_STATS
