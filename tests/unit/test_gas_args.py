"""pvgen-as command-line handling: inputs, output, options with values, response files, real-as discovery."""

from __future__ import annotations

import os

from pvgen.toolchain.gas import STDIN, _split_response, expand_response_files, find_real_as, parse_command_line


def test_inputs_output_and_mode_from_a_gcc_command_line():
    inv = parse_command_line(["--64", "-o", "x.o", "-I", "inc", "--gdwarf-5", "a.s", "b.s"])
    assert [p for _, p in inv.inputs] == ["a.s", "b.s"]
    assert inv.output == "x.o"
    assert inv.mode == 64
    assert not inv.early_exit


def test_no_input_means_stdin_and_dash_names_it():
    assert [p for _, p in parse_command_line(["--32", "-o", "y.o"]).inputs] == [STDIN]
    inv = parse_command_line(["--32", "-ofoo.o", "-"])
    assert [p for _, p in inv.inputs] == [STDIN]
    assert inv.output == "foo.o" and inv.mode == 32
    assert [p for _, p in parse_command_line(["--"]).inputs] == [STDIN]


def test_values_of_options_are_not_inputs():
    argv = ["--defsym", "X=1", "--MD", "deps.d", "--debug-prefix-map", "a=b", "-march", "generic64",
            "-msyntax=intel", "-alh=list.txt", "--size-check=warning", "src.s"]
    assert [p for _, p in parse_command_line(argv).inputs] == ["src.s"]


def test_version_and_help_exit_early():
    assert parse_command_line(["--version"]).early_exit
    assert parse_command_line(["--help"]).early_exit


def test_response_files_expand_with_quotes_and_escapes(tmp_path):
    rsp = tmp_path / "args.rsp"
    rsp.write_text("-o 'out put.o'\n\"in put.s\" back\\ slash.s @" + str(tmp_path / "inner.rsp"))
    (tmp_path / "inner.rsp").write_text("--64")
    args = expand_response_files([f"@{rsp}"])
    assert args == ["-o", "out put.o", "in put.s", "back slash.s", "--64"]
    assert expand_response_files(["@/nonexistent/file"]) == ["@/nonexistent/file"]
    assert _split_response("  ") == []
    assert _split_response("''") == [""]


def test_real_as_skips_the_wrappers_own_directory(tmp_path, monkeypatch):
    wrapper_dir = tmp_path / "bdir"
    wrapper_dir.mkdir()
    (wrapper_dir / "as").symlink_to("/bin/true")
    other = tmp_path / "bin"
    other.mkdir()
    real = other / "as"
    real.write_text("#!/bin/sh\n")
    real.chmod(0o755)
    monkeypatch.delenv("PVGEN_REAL_AS", raising=False)
    monkeypatch.setenv("PATH", os.pathsep.join([str(wrapper_dir), str(other)]))
    assert find_real_as(str(wrapper_dir / "as")) == str(real)
    monkeypatch.setenv("PVGEN_REAL_AS", "/bin/true")          # an existing program: the override wins
    assert find_real_as(str(wrapper_dir / "as")) == "/bin/true"


def test_real_as_skips_links_to_pvgen_as(tmp_path, monkeypatch):
    d = tmp_path / "d"
    d.mkdir()
    script = tmp_path / "pvgen-as"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    (d / "as").symlink_to(script)
    monkeypatch.delenv("PVGEN_REAL_AS", raising=False)
    monkeypatch.setenv("PATH", str(d))
    assert find_real_as("/somewhere/else/as") == "/usr/bin/as"
