"""Site records and errors name the line as GNU as does: `# N "file"` markers, `.linefile`, `.loc`, else physical."""

from __future__ import annotations

import subprocess

import pytest

from pvgen.asm.linemap import LineMap
from pvgen.errors import AsmSyntaxError
from pvgen.rewrite import rewrite_text

# gcc -O2 -g -S of inline asm in a header, reduced: markers around each asm, `.loc` outside them
GCC = """\t.file\t"drv.c"
\t.text
\t.file 1 "drv.c"
\t.file 2 "inc/x86.h"
\t.loc 2 9 2 view .LVU4
#APP
# 9 "inc/x86.h" 1
\toutb %al,%dx
\tinb %dx,%al
# 0 "" 2
#NO_APP
\t.loc 1 2 30 is_stmt 1 view .LVU6
\tinsw
\tinb $0x60,%al
"""


def test_markers_then_loc_then_physical():
    r = rewrite_text(GCC, "/tmp/cc1.s")
    assert [(s.file, s.line, s.asm_line) for s in r.sites] == [
        ("inc/x86.h", 9, 8), ("inc/x86.h", 10, 9), ("drv.c", 2, 13), ("drv.c", 2, 14)]
    plain = rewrite_text("\t.text\n\tinb %dx,%al\n", "p.s")
    assert [(s.file, s.line) for s in plain.sites] == [("p.s", 2)]


def test_nested_cpp_markers_return_to_the_including_file():
    text = '# 1 "a.S"\n# 1 "io.h" 1\n\tinb %dx,%al\n# 3 "a.S" 2\n\n\toutb %al,%dx\n.linefile 40 "b.S"\n\thlt\n'
    lm = LineMap.of(text, "x.s")
    assert [lm.locate(n) for n in (3, 6, 8)] == [("io.h", 1), ("a.S", 4), ("b.S", 40)]


def test_errors_name_the_header_line_as_gnu_as_does(gnu_as, tmp_path):
    text = GCC.replace("\tinb %dx,%al\n", "\tinb %dx,%bl\n", 1)
    with pytest.raises(AsmSyntaxError) as exc:
        rewrite_text(text, "/tmp/cc1.s")
    assert (exc.value.path, exc.value.line) == ("inc/x86.h", 10)
    (tmp_path / "t.s").write_text(text)
    r = subprocess.run([gnu_as, "--64", "-o", "/dev/null", "t.s"], cwd=tmp_path, capture_output=True, text=True)
    assert "inc/x86.h:10: Error" in r.stderr
