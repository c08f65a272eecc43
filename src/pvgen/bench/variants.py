"""The benchmark variants as data: which driver objects, which runtime back end, which monitor options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pvgen.errors import PvgenError
from pvgen.protocol import PortClass

Driver = Literal["linux", "pvideal"]
Objects = Literal["unmodified", "pvgen-rewritten", "hand-written"]
Runtime = Literal["none", "batch"]


@dataclass(frozen=True)
class Variant:
    name: str
    summary: str
    driver: Driver                    # which guest: the Linux driver environment, or the pv-ideal driver
    objects: Objects                  # the driver objects as Kbuild built them, or as pvgen rewrote them
    runtime: Runtime                  # the pvgen runtime back end linked with the rewritten objects
    coalesced_posted: bool = False    # KVM coalesced PIO on every port the device models declare POSTED
    pvbatch_classes: frozenset[PortClass] | None = None   # classes the monitor publishes; None: no pvbatch device
    irq_notify: bool = False          # interrupts a flush raises go back in the batch area (devices/pvirq.py)
    models: bool = False              # the devices' in-guest models (protocol v5, devices/pvmodels.py)
    posted_tx: bool = True            # NE2000: the guest completes a transmit start itself (a command rule)

    def monitor_options(self) -> dict:
        """What the monitor is asked for, as plain data (also recorded in the JSON report)."""
        return {"coalesced_posted": self.coalesced_posted,
                "pvbatch_classes": None if self.pvbatch_classes is None
                else sorted(c.name.lower() for c in self.pvbatch_classes),
                "irq_notify": self.irq_notify, "models": self.models, "posted_tx": self.models and self.posted_tx}


_BATCH_ONLY = frozenset({PortClass.STRICT, PortClass.POSTED, PortClass.DOORBELL})
_ALL = frozenset(PortClass)

VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("original", "unmodified Linux objects; every port access exits",
            "linux", "unmodified", "none"),
    Variant("coalesced", "unmodified Linux objects; KVM coalesced PIO on the posted ports",
            "linux", "unmodified", "none", coalesced_posted=True),
    Variant("generated-batch", "pvgen-rewritten objects; batch queue and flush triggers only (shadow/fifo off)",
            "linux", "pvgen-rewritten", "batch", pvbatch_classes=_BATCH_ONLY),
    Variant("generated-regs", "pvgen-rewritten objects; batching, in-guest shadow and fifo registers, interrupts "
            "raised by a flush returned in the batch area (no in-guest device models: protocol v4's reach)",
            "linux", "pvgen-rewritten", "batch", pvbatch_classes=_ALL, irq_notify=True),
    Variant("generated", "pvgen-rewritten objects; batching, in-guest registers and in-guest device models "
            "(transfer engines, command and interrupt rules, index files), interrupts returned in the area",
            "linux", "pvgen-rewritten", "batch", pvbatch_classes=_ALL, irq_notify=True, models=True),
    Variant("pv-ideal", "hand-written paravirtual ring driver and device; one doorbell per batch of requests",
            "pvideal", "hand-written", "none"),
    Variant("generated-txdoorbell", "generated, but the NE2000's transmit start stays a doorbell (the transmit "
            "completes at the device, in that exit): issue 14's posted-versus-doorbell comparison",
            "linux", "pvgen-rewritten", "batch", pvbatch_classes=_ALL, irq_notify=True, models=True,
            posted_tx=False),
)}

DEFAULT_ORDER = [n for n in VARIANTS if n != "generated-txdoorbell"]   # that one on request (--variants)


def select(spec: str | None) -> list[Variant]:
    """The variants named in a comma-separated list (the default set, in the canonical order, when spec is
    empty)."""
    if not spec:
        return [VARIANTS[n] for n in DEFAULT_ORDER]
    out = []
    for name in (s.strip() for s in spec.split(",")):
        if not name:
            continue
        if name not in VARIANTS:
            raise PvgenError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
        if VARIANTS[name] not in out:
            out.append(VARIANTS[name])
    if not out:
        raise PvgenError("no variant selected")
    return out
