"""Issue 12's own reproduction: with a relative $PVGEN_CACHE the generated variant failed in Kbuild with a message
holding `[...]`, the report died on it as rich markup, and no JSON was written at all. Now the cache is made
absolute once, the variants run, and the JSON holds both."""

from __future__ import annotations

import json

import pytest

from tests.one_line import run_pvgen

pytestmark = pytest.mark.kvm


def test_issue_example_relative_cache(kvm, gcc, gnu_as, kernel_headers, linux_source_tarball, tmp_path):
    proc = run_pvgen("bench", "net", "--ops", "20", "--variants", "pv-ideal,generated", "--json", "r.json",
                     env={"PVGEN_CACHE": "relcache"}, cwd=tmp_path, timeout=600)
    assert "Traceback" not in proc.stderr, proc.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    for name in ("pv-ideal", "generated"):
        v = data["variants"][name]
        assert v["status"] == "ok" and v["verified"], (name, v["reason"])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "relcache" / "linux-env").is_dir()
    assert not any((tmp_path / "relcache" / "work").iterdir())     # the work directories are gone after the run
