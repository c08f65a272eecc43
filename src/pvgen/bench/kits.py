"""Kits: how each kind of guest is built and attached; pv-ideal here, the Linux drivers in linuxkit.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pvgen.bench import workload as wl
from pvgen.bench.linuxkit import LinuxKit
from pvgen.bench.runner import DeviceSpec, GuestSpec, Kit, Unavailable
from pvgen.bench.variants import Variant
from pvgen.devices import pvring

def _guest_build():
    try:
        from pvgen.guest import build
    except ImportError as exc:
        raise Unavailable(f"guest harness: {exc}") from None
    return build


class PvIdealKit:
    """The hand-written PV driver (guest/pvideal/pvideal.c) linked with the harness, and the pvring device."""

    base = pvring.DEFAULT_BASE
    irq_line = 11

    def image(self) -> Path:
        build = _guest_build()
        obj = build.compile_source(wl.GUEST_DIR / "pvideal.c", list(build.CFLAGS), include_dirs=[wl.GUEST_DIR])
        digest = hashlib.sha256(Path(obj).read_bytes()).hexdigest()[:16]
        out = build.cache_dir() / f"pvideal-{digest}.elf"
        # the harness objects may have changed under the same workload object: link every time (cheap)
        return build.link_image([obj], out)

    def spec(self, variant: Variant, params: wl.Params, host) -> GuestSpec:
        image = self.image()
        if params.workload == "net":
            factory = lambda mem, irq: pvring.PvRing(mem, net=host.peer, irq=irq, mac=wl.GUEST_MAC)  # noqa: E731
        else:
            disk = host.ring_disk()
            factory = lambda mem, irq: pvring.PvRing(mem, disk=disk, irq=irq)  # noqa: E731
        cmd = params.cmdline() + f" pvring={self.base:#x}"
        if params.extra.get("pv_irq"):
            cmd += f" irq={self.irq_line}"
        return GuestSpec(image, cmd, [DeviceSpec(self.base, pvring.PORTS, factory, self.irq_line)])


KITS: dict[str, Kit] = {"pvideal": PvIdealKit(), "linux": LinuxKit()}
