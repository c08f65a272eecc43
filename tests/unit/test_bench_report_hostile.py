"""Results are never lost (issue 12): reasons with rich-markup look-alikes print as written, and the JSON (and
plot) are on disk before the table is printed, so a report that cannot be printed loses nothing."""

from __future__ import annotations

import errno
import io
import json

import pytest
from click.testing import CliRunner
from rich.console import Console

from pvgen.bench import report
from pvgen.bench.results import Phase, VariantResult

HOSTILE = ["make[2]: *** [/usr/src/linux-headers-6.1.0-57-common/Makefile:2065: relcache/x] Error 2",
           "[/bold] closing a tag never opened", "[bold red]not a style[/bold red]", "[link=file:///etc]x[/link]",
           "\\[escaped] and a lone [", "[/]"]


def hostile_results() -> dict[str, VariantResult]:
    ok = VariantResult("pv-ideal", "ok", "", [Phase("tx", 10, 11, 0, 0.01), Phase("rx", 10, 11, 0, 0.01)], True,
                       ["ok: frames verified"])
    failed = VariantResult("generated", "failed", HOSTILE[1], [Phase("tx", 10, 3, 0, 0.01)], False,
                           [f"FAIL: {h}" for h in HOSTILE])
    return {"pv-ideal": ok, "generated": failed,
            "original": VariantResult.unavailable("original", HOSTILE[0]),
            "coalesced": VariantResult.unavailable("coalesced", " ".join(HOSTILE))}


def test_hostile_reasons_print_as_written():
    buf = io.StringIO()
    report.print_report(hostile_results(), "net", Console(file=buf, width=400, color_system=None))
    text = buf.getvalue()
    for h in HOSTILE:
        assert h in text, h
    assert "failed generated: [/bold] closing a tag never opened" in text


@pytest.mark.parametrize("plot", [False, True])
def test_json_and_plot_are_written_before_the_table(tmp_path, monkeypatch, plot):
    from pvgen.bench import commands

    monkeypatch.setattr(commands, "run_bench", lambda *a, **k: hostile_results())

    def unprintable(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(commands, "print_report", unprintable)
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    args = ["bench", "net", "--json", str(out)] + (["--plot", str(png)] if plot else [])
    from pvgen.cli import cli

    res = CliRunner(mix_stderr=False).invoke(cli, args, obj={})
    assert res.exit_code == 1 and "No space left on device" in res.stderr
    data = json.loads(out.read_text())
    assert data["variants"]["pv-ideal"]["status"] == "ok"
    assert data["variants"]["generated"]["checks"] == [f"FAIL: {h}" for h in HOSTILE]
    assert data["variants"]["original"]["reason"] == HOSTILE[0]
    assert not plot or png.read_bytes()[:4] == b"\x89PNG"


def test_the_bench_table_with_hostile_reasons_through_the_command(tmp_path, monkeypatch):
    from pvgen.bench import commands
    from pvgen.cli import cli

    monkeypatch.setattr(commands, "run_bench", lambda *a, **k: hostile_results())
    res = CliRunner(mix_stderr=False).invoke(cli, ["bench", "net", "--json", str(tmp_path / "r.json")], obj={})
    assert res.exit_code == 1, res.stderr             # a variant failed: exit 1, after the whole report
    assert HOSTILE[0] in res.stdout and "Traceback" not in res.stderr
    assert json.loads((tmp_path / "r.json").read_text())["variants"]["generated"]["status"] == "failed"
