"""pvgen-as's slow path stays cheap: no capstone binding, no pyelftools, no tempfile unless a tagged copy is needed."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from pvgen.toolchain import gas
rc = gas.run(["--64", "--quiet", "-o", sys.argv[2], sys.argv[1]])
heavy = sorted(m for m in ("capstone", "elftools", "tempfile") if m in sys.modules)
print(rc, ",".join(heavy))
"""


def test_a_rewritten_file_is_checked_without_the_heavy_imports(tmp_path, gnu_as):
    src = tmp_path / "d.s"
    # one site and a byte that decodes as `in` only inside a data section: the object check decodes .text
    src.write_text("\t.text\n\t.globl f\n\t.type f,@function\nf:\n\tinb %dx, %al\n\tmovl $0xec, %eax\n\tret\n"
                   "\t.size f,.-f\n\t.data\n\t.byte 0xec\n")
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(src), str(tmp_path / "d.o")], capture_output=True,
                         text=True, check=True)
    rc, heavy = out.stdout.split("\n")[0].split(" ")
    assert rc == "0" and (tmp_path / "d.o").exists()
    assert heavy == "", f"pvgen-as imported {heavy} on its slow path"
