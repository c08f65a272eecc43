"""The real libata + ata_piix (accessor calls redirected into the module's rewritten lib/iomap.c), original and
generated, in Debian's kernel on QEMU's PIIX IDE in PIO mode: one boot, each variant on a disk of its own."""

from __future__ import annotations

import json

from click.testing import CliRunner

from pvgen.cli import cli


def test_qemu_disk_original_and_generated(qemu_ready, tmp_path):
    out = tmp_path / "disk.json"
    res = CliRunner().invoke(cli, ["qemu", "disk", "--ops", "4", "--seed", "3", "--json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    orig, gen = data["variants"]["original"], data["variants"]["generated"]
    for v in (orig, gen):
        assert v["verified"] and v["status"] == "ok", v["checks"]
        assert any(c.startswith("ok: image") for c in v["checks"])
        # a 4 KiB PIO request moves at least 1024 words of 32 bits through the data port
        assert v["phases"]["disk"]["exits_per_op"] >= 1024
    for ph in ("disk", "seq-write", "seq-read", "rand-write", "rand-read"):
        assert orig["phases"][ph]["breakdown"] == gen["phases"][ph]["breakdown"]
