"""`pvgen bench rewrite`: rewrite time against GNU `as` time on the same file, and a large-file generator."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from pvgen.errors import EnvironmentMissing, PvgenError
from pvgen.rewrite.core import rewrite_text

# The body of one generated function: gcc -O2-like code; every fourth function does port I/O (3 sites),
# which gives about one site per 50 lines, the density of a Linux driver's assembly.
_BODY = """\t.p2align 4
\t.globl\tf{n}
\t.type\tf{n}, @function
f{n}:
.LFB{n}:
\t.cfi_startproc
\tendbr64
\tpushq\t%rbp
\t.cfi_def_cfa_offset 16
\t.cfi_offset 6, -16
\tmovq\t%rsp, %rbp
\tmovl\t%edi, -20(%rbp)
\tmovl\t-20(%rbp), %eax
\tleal\t1(%rax), %edx
\tmovzwl\t%di, %edx
\tinb\t%dx, %al
\tmovb\t%al, -1(%rbp)\t# tmp{n}
\tcmpl\t$10, %eax
\tjle\t.L{n}
\taddl\t$7, %eax
\toutb\t%al, $0x80
\timull\t%eax, %edx
\tmovq\tglobal_var(%rip), %rcx
\ttestq\t%rcx, %rcx
\tje\t.L{n}
\tmovl\t$256, %ecx
\tleaq\t(%rcx,%rdx,4), %rdi
\trep insw
.L{n}:
\tmovzbl\t-1(%rbp), %eax
\tcall\tf{m}
\txorl\t%edx, %edx
\tsall\t$3, %eax
\tpopq\t%rbp
\t.cfi_def_cfa 7, 8
\tret
\t.cfi_endproc
.LFE{n}:
\t.size\tf{n}, .-f{n}
"""

_PLAIN = (_BODY.replace("\tinb\t%dx, %al", "\tmovb\t%dl, %al").replace("\toutb\t%al, $0x80", "\tmovb\t%al, %dl")
          .replace("\trep insw", "\trep stosw"))


def generate(lines: int) -> str:
    """A valid x86-64 GNU as file of at least `lines` lines, shaped like compiler output."""
    head = "\t.file\t\"gen.c\"\n\t.text\n\t.comm\tglobal_var,8,8\n"
    per = _BODY.count("\n")
    n = max(1, (lines + per - 1) // per)
    parts = [head]
    parts += [(_BODY if i % 4 == 0 else _PLAIN).format(n=i, m=(i + 1) % n) for i in range(n)]
    parts.append('\t.ident\t"pvgen generated"\n\t.section\t.note.GNU-stack,"",@progbits\n')
    return "".join(parts)


def generate_bytes(size: int) -> str:
    """generate() sized in bytes (about 16.5 bytes per line)."""
    return generate(max(1, size * 10 // 165))


# Inputs that were quadratic once (docs/rewriter.md, linear time): each generator makes about `size` bytes.
PATHOLOGICAL = {
    # 10 000 lines of a bare `rep` took 110 s: each line re-lexed the growing unit it prefixes
    "bare-rep-lines": lambda size: "\trep\n" * (size // 5) + "\tinsb\n",
    # one line of 400 000 `nop;` took 126 s and 3 GB: newlines were counted from the line start per statement
    "one-line-of-nops": lambda size: "nop; " * (size // 5) + "inb %dx,%al\n",
    # `rep; rep; ...` on one line
    "one-line-of-reps": lambda size: "rep; " * (size // 5) + "insb\n",
    # one line of sites: every statement is a site (the rewrite's own work per site, not a scan)
    "one-line-of-sites": lambda size: "inb %dx,%al; " * (size // 13) + "\n",
    # a string left open: data to the end of the file, sites in it are not code
    "open-string": lambda size: '\t.ascii "left open\n' + generate_bytes(size).replace('"', "'"),
    # a comment left open
    "open-comment": lambda size: "/* left open\n" + generate_bytes(size),
    # compiler-shaped code (one site per 50 lines)
    "compiler-shaped": generate_bytes,
}


def bench_pathological(size: int, runs: int, workdir: str, only: list[str] | None = None) -> list[dict]:
    """bench_rewrite on each PATHOLOGICAL input of about `size` bytes (written to workdir, removed after)."""
    figs = []
    for name, make in PATHOLOGICAL.items():
        if only and name not in only:
            continue
        path = os.path.join(workdir, f"{name}.s")
        Path(path).write_text(make(size))
        try:
            # GNU as gives up on a string left open past its input buffer (an error, not data to the end)
            fig = bench_rewrite(path, runs=runs, process=False, as_may_fail=name == "open-string")
        finally:
            os.unlink(path)
        fig["input"] = name
        figs.append(fig)
    return figs


def _children_cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def _as_seconds(path: str, as_flags: list[str], may_fail: bool = False) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one `as` run (may_fail: an input `as` rejects, timed all the same)."""
    with tempfile.TemporaryDirectory() as tmp:
        c0 = _children_cpu()
        t0 = time.perf_counter()
        proc = subprocess.run(["as", *as_flags, path, "-o", os.path.join(tmp, "x.o")],
                              capture_output=True, text=True)
        dt = time.perf_counter() - t0
        cpu = _children_cpu() - c0
    if proc.returncode != 0 and not may_fail:
        first = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise PvgenError(f"{path}: GNU as failed: {first}")
    return dt, cpu


def rewrite_file(src: str, dst: str) -> None:
    """Read, rewrite, write: what a one-shot process (pvgen-as) does; used for the process timing."""
    data = Path(src).read_bytes().decode("utf-8", errors="surrogateescape")
    Path(dst).write_bytes(rewrite_text(data, src).text.encode("utf-8", errors="surrogateescape"))


def _process_seconds(path: str, out: str) -> float:
    import sys

    code = ("import sys; from pvgen.rewrite import rewrite_text; "
            "t = open(sys.argv[1], 'rb').read().decode('utf-8', 'surrogateescape'); "
            "open(sys.argv[2], 'wb').write(rewrite_text(t, sys.argv[1]).text.encode('utf-8', 'surrogateescape'))")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, path, out], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise PvgenError(f"{path}: rewrite process failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return dt


def bench_rewrite(path: str, runs: int = 5, as_flags: list[str] | None = None, process: bool = True,
                  as_may_fail: bool = False) -> dict:
    """Median rewrite and `as` seconds over `runs` runs (the rewrite includes reading and writing the file).

    Wall seconds and CPU seconds (user + system; less disturbed by other load on a shared machine) are both
    reported, the rewrite's from this process, `as`'s from its child rusage.
    `rewrite_seconds` is measured in this process; `rewrite_process_seconds` is a fresh Python process that
    imports pvgen and rewrites the file once (start-up included), as `pvgen-as` does per file (not measured with
    process=False)."""
    from shutil import which

    from pvgen.rewrite.commands import read_source

    if which("as") is None:
        raise EnvironmentMissing("GNU as", "apt-get install binutils")
    as_flags = as_flags or ["--64"]
    text = read_source(path)
    rw, asm, proc, rw_cpu, as_cpu = [], [], [], [], []
    result = None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.s"
        for _ in range(runs):
            c0, t0 = time.process_time(), time.perf_counter()
            result = rewrite_text(read_source(path), path)
            out.write_bytes(result.text.encode("utf-8", errors="surrogateescape"))
            rw.append(time.perf_counter() - t0)
            rw_cpu.append(time.process_time() - c0)
            wall, cpu = _as_seconds(path, as_flags, as_may_fail)
            asm.append(wall)
            as_cpu.append(cpu)
            if process:
                proc.append(_process_seconds(path, str(out)))
    assert result is not None
    r, a = statistics.median(rw), statistics.median(asm)
    p = statistics.median(proc) if proc else None
    return {
        "file": path,
        "lines": text.count("\n"),
        "bytes": len(text.encode("utf-8", errors="surrogateescape")),
        "sites": len(result.sites),
        "rewritten": len(result.rewritten),
        "runs": runs,
        "rewrite_seconds": r,
        "as_seconds": a,
        "ratio": r / a if a else None,
        "rewrite_cpu_seconds": statistics.median(rw_cpu),
        "as_cpu_seconds": statistics.median(as_cpu),
        "cpu_ratio": statistics.median(rw_cpu) / statistics.median(as_cpu) if statistics.median(as_cpu) else None,
        "rewrite_process_seconds": p,
        "process_ratio": p / a if a and p is not None else None,
        "goal_ratio": 0.5,
        "rewrite_seconds_all": rw,
        "as_seconds_all": asm,
        "rewrite_process_seconds_all": proc,
    }
