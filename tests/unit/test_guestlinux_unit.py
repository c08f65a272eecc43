"""`pvgen bench net --guest linux` without a kernel: the pvio.ko build pieces, the /init script, the host checks."""

from __future__ import annotations

import subprocess
from fnmatch import fnmatchcase

import pytest
from click.testing import CliRunner

from pvgen.bench import workload as wl
from pvgen.bench.guestlinux import KERNEL_MARK, LinuxGuestHost, init_script
from pvgen.bench.runner import GuestRun
from pvgen.cli import cli
from pvgen.runtime.build import RUNTIME_DIR, build, exports_header, thunk_symbols
from pvgen.toolchain import kbuild, pviomod


def test_exports_are_every_thunk_the_batch_runtime_defines(tmp_path, gcc):
    """pvio.ko exports every thunk the linux-module runtime object defines (built by `pvgen runtime build`)."""
    obj = build("linux-module", "batch", tmp_path / "rt.o")
    out = subprocess.run(["nm", "-g", "--defined-only", str(obj)], capture_output=True, text=True, check=True).stdout
    defined = {ln.split()[-1] for ln in out.splitlines() if ln.split()[-1].startswith("__pvio_")}
    assert set(thunk_symbols()) == defined and len(defined) >= 25
    assert exports_header().count("PVIO_EXPORT(") == len(defined)


def test_rewriter_thunk_names_are_exported():
    from pvgen.asm.sites import IoInstr

    names = {IoInstr(op, w, form, None).thunk("code64") for op in ("in", "out") for w in (1, 2, 4)
             for form in ("dx", "imm")}
    names |= {IoInstr(op, w, None, None, rep).thunk("code64") for op in ("ins", "outs") for w in (1, 2, 4)
              for rep in (False, True)}
    assert names <= set(thunk_symbols())


def test_batch_kbuild_has_pvio_module_and_no_runtime_in_the_drivers(tmp_path):
    target = kbuild.TARGETS["ne2k-pci"]
    text = kbuild.kbuild_text(target, kbuild.BATCH, tmp_path)
    assert "obj-m += pvio.o" in text and "8390-y := 8390-drv.o\n" in text
    assert "-pvio-direct" not in text
    for obj in text.split("pvio-y := ", 1)[1].splitlines()[0].split():
        assert fnmatchcase(obj, kbuild.RUNTIME_EXCLUDE), obj      # assembled as they are, not rewritten
    assert set(pviomod.files(RUNTIME_DIR)) >= {"pvio-pvio-main.c", "pvio-pvio-thunks.S", pviomod.EXPORTS_HEADER}


def test_init_script_loads_runtime_first_and_marks_the_probe():
    s = init_script(["8390.ko", "ne2k-pci.ko"], 7, 16, batching=True)
    assert s.index("pvio.ko") < s.index(f"pvqwl mark {wl.MARK_PROBE_START}") < s.index("8390.ko") \
        < s.index("ne2k-pci.ko") < s.index(f"pvqwl mark {wl.MARK_PROBE_END}") < s.index("pvqwl net eth0 7 16")
    assert "PVQWL_MARK=hx" in s and "pvio.ko" not in init_script(["8390.ko"], 1, 1, batching=False)


def _run(console: str, pvbatch: dict | None = None) -> GuestRun:
    return GuestRun(0, console, [], {"pvbatch": pvbatch} if pvbatch else {})


def _result_line(host: LinuxGuestHost) -> str:
    return (f"PVGEN-RESULT tx={host.ops} rx={host.ops} rx_bytes={sum(map(len, host.rx))} "
            f"rx_crc=0x{wl.frames_crc(host.rx):08x} errors=0\n")


def test_host_compares_workload_frames_and_counts_the_kernels_own():
    host = LinuxGuestHost(3, 4)
    foreign = bytes(12) + b"\x86\xdd" + bytes(46)
    for i in range(4):
        host.peer.send(wl.frame(3, wl.TAG_TX, i))
        host.peer.send(foreign)
    checks = host.verify(_run(_result_line(host)))
    assert all(c.startswith("ok") for c in checks), checks
    assert any("4 frames of its own" in c for c in checks)
    host.peer.sent[2] = host.peer.sent[2][:-1] + b"\x00"      # a corrupted workload frame
    assert any(c.startswith("FAIL") for c in host.verify(_run(_result_line(host))))


@pytest.mark.parametrize("pvbatch, console, ok", [
    ({"registrations": 1}, "PVGEN-PVIO pvio: batching on 1 CPU\n", True),
    ({"registrations": 0}, "PVGEN-PVIO pvio: batching on 0 CPU\n", False),
    (None, "", False),
])
def test_batching_variant_must_register(pvbatch, console, ok):
    host = LinuxGuestHost(1, 2, batching=True)
    for i in range(2):
        host.peer.send(wl.frame(1, wl.TAG_TX, i))
    checks = host.verify(_run(console + _result_line(host), pvbatch))
    assert all(c.startswith("ok") for c in checks) is ok, checks


def test_error_line_fails():
    host = LinuxGuestHost(1, 1)
    host.peer.send(wl.frame(1, wl.TAG_TX, 0))
    checks = host.verify(_run("PVGEN-ERROR insmod\n" + _result_line(host)))
    assert any(c == "FAIL: guest: PVGEN-ERROR insmod" for c in checks)


def test_cli_refuses_disk_in_linux_guest():
    res = CliRunner().invoke(cli, ["bench", "disk", "--guest", "linux", "--ops", "4", "--json", "/tmp/x.json"])
    assert res.exit_code != 0 and "net workload only" in res.output


@pytest.mark.parametrize("line, fails", [
    ("ne2k-pci 0000:00:03.0 eth0: timeout waiting for Tx RDC.", True),      # lib8390's remote-DMA timeout: a reset
    ("NETDEV WATCHDOG: eth0 (ne2k-pci): transmit queue 0 timed out", True),
    ("eth0: RealTek RTL-8029 found at 0xc000, IRQ 11, 52:54:00:12:34:56.", False),
])
def test_kernel_driver_complaints_fail(line, fails):
    host = LinuxGuestHost(1, 1)
    host.peer.send(wl.frame(1, wl.TAG_TX, 0))
    checks = host.verify(_run(f"{KERNEL_MARK}[   12.5] {line}\n" + _result_line(host)))
    assert any(c.startswith("FAIL: kernel:") for c in checks) is fails, checks
