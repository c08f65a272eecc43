"""The real ne2k-pci + 8390, original and pvgen-generated, in Debian's kernel on QEMU's ne2k_pci: one boot."""

from __future__ import annotations

import json

from click.testing import CliRunner

from pvgen.cli import cli

OPS = 6


def test_qemu_net_original_and_generated(qemu_ready, tmp_path):
    out = tmp_path / "net.json"
    res = CliRunner().invoke(cli, ["qemu", "net", "--ops", str(OPS), "--seed", "7", "--json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    orig, gen = data["variants"]["original"], data["variants"]["generated"]
    for v in (orig, gen):
        assert v["verified"] and v["status"] == "ok", v["checks"]
        assert any("transmitted frames" in c and c.startswith("ok") for c in v["checks"])
        assert any("received frames" in c and c.startswith("ok") for c in v["checks"])
        assert set(v["phases"]) == {"probe", "tx", "rx", "total"}
        for ph in ("tx", "rx"):
            # a frame is at least 60 bytes: 15 32-bit data-port accesses, plus the registers around them
            assert v["phases"][ph]["exits_per_op"] > 15
    for ph in ("probe", "tx", "rx"):   # the direct runtime is transparent: the same accesses, register by register
        assert orig["phases"][ph]["breakdown"] == gen["phases"][ph]["breakdown"]
    assert data["qemu"]["accel"] in ("tcg", "kvm")
