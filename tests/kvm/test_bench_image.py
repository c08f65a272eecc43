"""`--image FILE`: the disk bench and `pvgen linux run disk` on a file-backed DiskImage, every byte verified against
the reference model, every variant from the same initial image, the file left with the last variant's image."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pvgen.bench import workload as wl
from pvgen.bench.commands import run_bench
from pvgen.cli import cli

pytestmark = pytest.mark.kvm


def model_image(seed: int, ops: int) -> bytes:
    model = wl.DiskModel(wl.initial_image(seed))
    model.replay(seed, wl.disk_plan(seed, ops, wl.DEFAULT_IMAGE // wl.BLOCK))
    return bytes(model.image)


def test_bench_disk_on_an_image_file(kvm, kernel_headers, linux_source_tarball, tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(b"\xee" * (wl.DEFAULT_IMAGE + 512))      # larger than the disk: the tail is not touched
    res = run_bench("disk", 8, "generated,original,pv-ideal", seed=5, pv_batch=1, image=str(path))
    for r in res.values():
        assert r.status == "ok" and r.verified, (r.variant, r.reason, r.checks)
        assert any("equals the reference model" in c for c in r.checks)
    data = path.read_bytes()
    assert data[:wl.DEFAULT_IMAGE] == model_image(5, 8) and data[wl.DEFAULT_IMAGE:] == b"\xee" * 512


def test_linux_run_disk_on_an_image_file(kvm, kernel_headers, linux_source_tarball, tmp_path):
    path = tmp_path / "new.img"                               # missing: created at the disk's size
    out = CliRunner().invoke(cli, ["linux", "run", "disk", "--variant", "generated", "--ops", "8", "--seed", "3",
                                   "--image", str(path)], obj={})
    assert out.exit_code == 0, out.output
    assert "ok: image (64 MiB) equals the reference model after 4 writes" in out.output
    assert path.read_bytes() == model_image(3, 8)
