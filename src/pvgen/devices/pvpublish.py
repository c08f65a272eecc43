"""pvpublish: what the monitor publishes in a batch area at registration, from the devices' declarations.

The class word of every port (classes, OWNED, read effect, slot), the slots (doorbell masks, shadows, BANK rules'
bank slots), the write-rule records and the read_neutral slots (docs/protocol.md, "Registration", "Neutral writes").
Derived, never trusted: a declaration the runtime could not honour safely is published on the strict side.
"""

from __future__ import annotations

from dataclasses import dataclass

from pvgen import protocol as P
from pvgen.devices import pvmodels
from pvgen.protocol import PortClass


@dataclass(frozen=True)
class Publication:
    """The class map of one bus (`publish`), as the area publishes it."""

    words: dict[int, int]              # port -> class word
    slots: list[tuple]                 # slot -> (port, doorbell mask), or (port, 0, bank) for a bank slot
    fifo_ports: frozenset[int]         # ports published FIFO
    read_neutral: list[int]            # slots whose read effect is neutral (the read_neutral bits)
    rules: bytes                       # the write_rules region


def device_write_rules(bus) -> dict[int, tuple[P.WriteRule, int]]:
    """port -> (rule, base of the device's range), from the devices' optional write_rules() (offset -> WriteRule)."""
    out: dict[int, tuple[P.WriteRule, int]] = {}
    for r in bus.ranges:
        get = getattr(r.device, "write_rules", None)
        if get is None:
            continue
        for off, rule in get().items():
            if 0 <= off < r.length and rule.op != P.Neutral.NONE:
                out[r.base + off] = (rule, r.base)
    return out


def device_doorbell_masks(bus) -> dict[int, int]:
    """port -> doorbell mask for every DOORBELL_IF port, from the devices' optional doorbell_masks() (offset ->
    mask); a DOORBELL_IF port without a mask is absent (the monitor publishes it as DOORBELL)."""
    out: dict[int, int] = {}
    for r in bus.ranges:
        get = getattr(r.device, "doorbell_masks", None)
        if get is None:
            continue
        for off, m in get().items():
            if 0 <= off < r.length and m & 0xFF:
                out[r.base + off] = m & 0xFF
    return out


def device_neutral_reads(bus) -> frozenset[int]:
    """Ports whose read side effect the device declares neutral for the shadows (it changes no shadowed register's
    readback, of this device or any other), from the devices' optional neutral_read_effects() (offsets)."""
    out: set[int] = set()
    for r in bus.ranges:
        get = getattr(r.device, "neutral_read_effects", None)
        if get is not None:
            out.update(r.base + off for off in get() if 0 <= off < r.length)
    return frozenset(out)


def publish(bus, monitor: object = None, models: bool = False) -> Publication:
    """The class map of `bus` but `monitor`'s own range (its control ports stay 0: strict, not owned).
    port -> class word, from the devices' declarations; every port a device owns is marked OWNED.  A slot
    goes to each SHADOW read (its shadow) and each DOORBELL_IF write (its doorbell mask and write rule); a
    POSTED port with a write rule becomes DOORBELL_IF with mask 0.  With `models` (protocol v5, in-guest device
    models: devices/pvmodels.py) the ports those models watch are DOORBELL_IF too (the runtime's slow path sees
    every write to them) and an engine's data port reads ENGINE instead of FIFO."""
    words: dict[int, int] = {}
    declared = bus.class_map()
    masks, rules = device_doorbell_masks(bus), device_write_rules(bus)
    model_writes, model_reads = pvmodels.plan_ports(bus, monitor) if models else (set(), set())
    neutral_reads, read_neutral = device_neutral_reads(bus), []
    slots: list[tuple[int, int]] = []
    deferred: list[tuple] = []
    fifo: set[int] = set()
    for r in bus.ranges:
        if r.device is monitor:
            continue
        # a device whose reads may be prefetched (FIFO): every posted write to it takes the slow path, where a
        # write while prefetched values are owed flushes (runtime pvio_fifo_owed, FIFO.kill)
        fifo_dev = hasattr(r.device, "fifo_read") and any(
            declared.get(p, (None,))[0] == PortClass.FIFO for p in range(r.base, r.base + r.length))
        for port in range(r.base, r.base + r.length):
            rc, wc = declared.get(port, (PortClass.STRICT, PortClass.STRICT))
            dev, off = r.device, port - r.base
            mask = masks.get(port, 0) if wc == PortClass.DOORBELL_IF else 0   # a mask needs DOORBELL_IF
            if wc == PortClass.POSTED and (port in rules or port in model_writes or fifo_dev):
                wc = PortClass.DOORBELL_IF        # the runtime's slow path sees it (a FIFO device's: FIFO.kill)
            elif wc == PortClass.DOORBELL_IF and not mask and port not in rules:
                wc = PortClass.DOORBELL           # declared, with neither mask nor rule: the safe side
            elif wc not in (PortClass.STRICT, PortClass.POSTED, PortClass.DOORBELL, PortClass.DOORBELL_IF):
                wc = PortClass.STRICT
            if rc == PortClass.FIFO and not hasattr(dev, "fifo_read"):
                rc = PortClass.STRICT          # no prefetch: every read is one in-order IN entry
            if rc == PortClass.FIFO and port in model_reads:
                rc = PortClass.ENGINE          # served by a transfer engine when one is active, else a FIFO
            shadow = rc == PortClass.SHADOW and hasattr(dev, "shadow_read")
            if rc == PortClass.SHADOW and not shadow or rc not in (PortClass.STRICT, PortClass.FIFO,
                                                                   PortClass.SHADOW, PortClass.ENGINE):
                rc = PortClass.STRICT
            slot, effect = 0, False
            if not shadow and wc == PortClass.DOORBELL_IF and (port in model_writes or fifo_dev) \
                    and port not in rules and not mask:
                deferred.append((port, rc, wc, mask))     # a slot only for the slow path: after the banks
                if rc in (PortClass.FIFO, PortClass.ENGINE):
                    fifo.add(port)
                continue
            if shadow or wc == PortClass.DOORBELL_IF:
                if len(slots) < P.SHADOW_SLOTS:
                    slot = len(slots)
                    slots.append((port, mask if wc == PortClass.DOORBELL_IF else 0))
                    if shadow:
                        probe = getattr(dev, "read_side_effects", None)
                        effect = True if probe is None else bool(probe(off))
                        if effect and port in neutral_reads:
                            read_neutral.append(slot)   # its IN_DISCARD keeps the shadows servable
                else:
                    rc = PortClass.STRICT if shadow else rc
                    wc = PortClass.DOORBELL if wc == PortClass.DOORBELL_IF else wc
            if not shadow and rc == PortClass.SHADOW:
                rc = PortClass.STRICT
            if rc in (PortClass.FIFO, PortClass.ENGINE):
                fifo.add(port)
            words[port] = P.class_word(rc, wc, owned=True, read_effect=effect, slot=slot)
        _add_banks(r, words, slots, rules)
        for port, rc, wc, mask in deferred:       # the BANK rule's bank slots follow its live slots directly
            slot = len(slots)
            if slot < P.SHADOW_SLOTS:
                slots.append((port, mask))
            else:
                slot, wc = 0, PortClass.DOORBELL
            words[port] = P.class_word(rc, wc, owned=True, slot=slot)
        deferred.clear()
    return Publication(words, slots, frozenset(fifo), read_neutral, _rule_records(words, slots, rules))


def _add_banks(r, words: dict[int, int], slots: list, rules: dict[int, tuple[P.WriteRule, int]]) -> None:
    """Slots for the banks of a BANK rule of this range (P.bank_slot: right after its live slots, which must be
    the device's next `banked` ports, all SHADOW, the last slots so far), filled through the device's
    `bank_shadow_read(bank, offset, size)`.  Without room or that method the rule is not published."""
    dev = r.device
    if not hasattr(dev, "bank_shadow_read"):
        return
    for port in range(r.base, r.base + r.length):
        rule = rules.get(port, (None,))[0]
        if rule is None or rule.op != P.Neutral.BANK or port not in words:
            continue
        own, n = P.split_class_word(words[port])[4], rule.banked & 0xFF
        live = [own + 1 + i for i in range(n)]
        ok = (n > 0 and rule.operand & 0xFF and own + 1 + n == len(slots) and port + n < r.base + r.length
              and P.bank_slot(own, n, P.bank_count(rule.operand), 0) <= P.SHADOW_SLOTS
              and all(slots[s][0] == port + 1 + i and P.split_class_word(words[port + 1 + i])[0] == PortClass.SHADOW
                      for i, s in enumerate(live)))
        if ok:
            for bank in range(P.bank_count(rule.operand)):
                slots.extend((port + 1 + i, 0, bank) for i in range(n))
        return


def _rule_records(words: dict[int, int], slots: list[tuple[int, int]],
                  rules: dict[int, tuple[P.WriteRule, int]]) -> bytes:
    """The write_rules region.  A rule is published only for a DOORBELL_IF port, with its condition's port a
    SHADOW of the same device, and (unless KEEP) its own port a SHADOW; else the write is simply posted."""
    out = bytearray(P.WRITE_RULE.size * P.SHADOW_SLOTS)
    for slot, (port, *bank) in enumerate(slots):
        if bank[1:] or port not in rules:
            continue
        rule, base = rules[port]
        own_rc, wc, _, _, _ = P.split_class_word(words[port])
        cond = words.get(base + rule.cond_offset, 0)
        cond_rc, _, _, _, cond_slot = P.split_class_word(cond)
        if wc != PortClass.DOORBELL_IF or (rule.cond_mask & 0xFF and cond_rc != PortClass.SHADOW):
            continue
        if rule.op != P.Neutral.KEEP and own_rc != PortClass.SHADOW:
            continue
        banked = rule.banked & 0xFF if rule.op == P.Neutral.BANK else 0
        if rule.op == P.Neutral.BANK:
            last = P.bank_slot(slot, banked, P.bank_count(rule.operand), 0) - 1
            if not banked or last >= len(slots) or len(slots[last]) < 3 or slots[last][0] != port + banked:
                continue            # no bank slots were allocated (_add_banks)
        P.WRITE_RULE.fmt.pack_into(out, slot * P.WRITE_RULE.size, int(rule.op), rule.operand & 0xFF,
                                   cond_slot if rule.cond_mask & 0xFF else 0, rule.cond_mask & 0xFF,
                                   rule.cond_want & 0xFF, rule.value_mask & 0xFF, rule.value_want & 0xFF,
                                   banked)
    return bytes(out)
