"""Does this /dev/kvm count exits in hardware? A real-mode guest does N `out`s and halts; KVM's own statistics say.

On a KVM with VMX/SVM each `out` is one hardware exit: `io_exits` (KVM_GET_STATS_FD) equals N exactly and equals
the KVM_EXIT_IO returns the monitor sees. On a KVM without them (this machine's host) the instructions are
emulated and `io_exits` stays 0. `python -m pvgen.nested.probe [N]` prints one JSON line; `pvgen nested --probe N`
runs it one level down."""

from __future__ import annotations

import json
import os
import sys

from pvgen.errors import PvgenError
from pvgen.vmm import kvm
from pvgen.vmm.memory import GuestMemory
from pvgen.vmm.stats import StatsFd
from pvgen.vmm.vcpu import Vcpu

CODE_GPA = 0x1000
PORT = 0x510
MAX_OUTS = 0xFFFF     # the count lives in CX


def probe_code(outs: int) -> bytes:
    """16-bit code: mov cx, N; mov dx, PORT; 1: out dx, al; loop 1b; hlt."""
    return (b"\xb9" + outs.to_bytes(2, "little") + b"\xba" + PORT.to_bytes(2, "little")
            + b"\xee\xe2\xfd\xf4")


def probe(outs: int = 1000) -> dict:
    """Run the probe guest; returns its counts (io_exits from KVM's statistics, KVM_EXIT_IO returns we saw)."""
    if not 1 <= outs <= MAX_OUTS:
        raise PvgenError(f"probe: outs must be 1..{MAX_OUTS}, got {outs}")
    fds: list[int] = []
    kvm_fd = kvm.open_kvm()
    fds.append(kvm_fd)
    try:
        vm_fd = kvm.ioctl(kvm_fd, kvm.KVM_CREATE_VM, 0)
        fds.append(vm_fd)
        mem = GuestMemory(2 << 20)
        mem.register(vm_fd)
        mem.write(CODE_GPA, probe_code(outs))
        vcpu = Vcpu(vm_fd, kvm.ioctl(kvm_fd, kvm.KVM_GET_VCPU_MMAP_SIZE))
        sregs = vcpu.get_sregs()
        sregs.cs.base, sregs.cs.selector = 0, 0
        vcpu.set_sregs(sregs)
        regs = kvm.kvm_regs(rip=CODE_GPA, rflags=0x2)
        vcpu.set_regs(regs)
        stats = StatsFd(vcpu.fd)
        before = stats.snapshot()
        io_returns, wrong = 0, 0
        while True:
            reason = vcpu.run_once()
            if reason == kvm.KVM_EXIT_IO:
                direction, size, port, count, _ = vcpu.io_exit()
                io_returns += count
                wrong += not (direction == 1 and size == 1 and port == PORT)
            elif reason == kvm.KVM_EXIT_HLT:
                break
            elif reason != 10:   # KVM_EXIT_INTR: a host signal, enter again
                raise PvgenError(f"probe: unexpected exit {kvm.EXIT_REASONS.get(reason, reason)}")
        after = stats.snapshot()
        stats.close()
        vcpu.close()
        mem.close()
    finally:
        for fd in reversed(fds):
            os.close(fd)
    delta = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    return {"schema": "pvgen-kvm-probe/1", "outs": outs, "kvm_run_io": io_returns, "unexpected_io": wrong,
            "io_exits": delta.get("io_exits", 0), "exits": delta.get("exits", 0),
            "hardware_exits": delta.get("io_exits", 0) == outs, "stats": delta}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    try:
        outs = int(args[0]) if args else 1000
        print(json.dumps(probe(outs)))
    except ValueError:
        print(f"pvgen probe: expected a number of outs, got {args[0]!r}", file=sys.stderr)
        sys.exit(2)
    except PvgenError as exc:
        print(f"pvgen probe: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
