"""Clear errors when /dev/kvm is missing or not writable, or a capability or ioctl fails (no KVM needed)."""

from __future__ import annotations

import errno
import os

import pytest

from pvgen.errors import EnvironmentMissing, KvmError
from pvgen.vmm import kvm


def test_missing_dev_kvm(monkeypatch):
    def no_kvm(path, flags, *a):
        raise FileNotFoundError(errno.ENOENT, "nope", path)

    monkeypatch.setattr(os, "open", no_kvm)
    with pytest.raises(EnvironmentMissing, match="/dev/kvm is missing"):
        kvm.open_kvm()


def test_unwritable_dev_kvm(monkeypatch):
    def denied(path, flags, *a):
        raise PermissionError(errno.EACCES, "denied", path)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(EnvironmentMissing, match="kvm' group"):
        kvm.open_kvm()


def test_absent_capability_is_named(monkeypatch):
    monkeypatch.setattr(kvm.fcntl, "ioctl", lambda fd, req, arg=0, *a: 0)
    with pytest.raises(KvmError, match="KVM_CAP_COALESCED_PIO is absent"):
        kvm.require_cap(3, kvm.KVM_CAP_COALESCED_PIO, "KVM_CAP_COALESCED_PIO")


def test_failing_ioctl_names_itself_and_errno(monkeypatch):
    def fail(fd, req, arg=0, *a):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(kvm.fcntl, "ioctl", fail)
    with pytest.raises(KvmError, match=r"KVM_SET_SREGS failed: Invalid argument \(errno 22\)") as info:
        kvm.ioctl(3, kvm.KVM_SET_SREGS, kvm.kvm_sregs())
    assert info.value.ioctl == "KVM_SET_SREGS" and info.value.errno == errno.EINVAL


def test_ioctl_numbers_match_linux_kvm_h():
    # Values from linux/kvm.h as compiled on x86-64 (_IO/_IOR/_IOW encodings).
    assert kvm.KVM_RUN == 0xAE80
    assert kvm.KVM_CREATE_VM == 0xAE01
    assert kvm.KVM_SET_USER_MEMORY_REGION == 0x4020AE46
    assert kvm.KVM_GET_REGS == 0x8090AE81
    assert kvm.KVM_SET_SREGS == 0x4138AE84
    assert kvm.KVM_IRQ_LINE == 0x4008AE61
    assert kvm.KVM_CREATE_PIT2 == 0x4040AE77
    assert kvm.KVM_REGISTER_COALESCED_MMIO == 0x4010AE67
    assert kvm.KVM_SET_CPUID2 == 0x4008AE90
    assert kvm.KVM_GET_STATS_FD == 0xAECE
