"""The probe on this machine's /dev/kvm: every `out` reaches the monitor; io_exits says whether KVM counted it."""

from __future__ import annotations

from pvgen.nested.probe import probe


def test_probe_here(kvm):
    res = probe(300)
    assert res["kvm_run_io"] == 300 and res["unexpected_io"] == 0
    assert res["hardware_exits"] == (res["io_exits"] == 300)
    assert res["io_exits"] in (0, 300)     # emulated (no VMX/SVM) or one hardware exit each
