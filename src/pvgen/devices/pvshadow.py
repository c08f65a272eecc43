"""pvshadow: the monitor's shadow refresh, the values it publishes for SHADOW reads (docs/protocol.md, "The flush" 5).

A batch area's shadow slots are grouped by device (`layout`); `refresh` rewrites the groups that may have changed,
each with the cheapest path that stays exact: one `shadow_block` call per run of registers (bulk), one bound byte
read per slot packed with one precompiled struct (fast), or every access size of every slot (generic, and the only
path of a full refresh, which decides what the faster paths may do until the next one).
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field
from typing import Callable

from pvgen import protocol as P
from pvgen.errors import PvgenError
from pvgen.protocol import PortClass

_SHADOW_PACK = P.SHADOW.fmt.pack
_SHADOW_VAL = P.SHADOW.field("val")[0]     # the low byte of val[0] (size 1) in a little-endian shadow record
_SIZE_SLOTS = tuple((i, size, (1 << (8 * size)) - 1) for i, size in enumerate(P.SIZES))


@dataclass
class Shadow:
    port: int
    device: object | None    # None: a slot holding only a doorbell mask (its shadow stays invalid)
    offset: int
    length: int       # of the device's range, so a wide read never leaves it
    sizes: tuple = ()  # (index, size, mask) of the access sizes that had a value at the last full refresh


class BankView:
    """A bank slot's reader: `shadow_read` of one bank of a device's BANK rule (not the current one)."""

    __slots__ = ("device", "bank", "shadow_read")

    def __init__(self, device: object, bank: int):
        self.device, self.bank = device, bank
        self.shadow_read = functools.partial(device.bank_shadow_read, bank)  # type: ignore[attr-defined]


@dataclass
class Group:
    """The contiguous slots of one device, refreshed together."""

    device: object
    first: int                     # slot of shadows[0]
    shadows: list[Shadow]
    synchronous: bool              # the device's shadows change only through its accesses (or PvBatch.refresh())
    byte_offsets: list[int] | None = None   # fast partial refresh (plan_group): one byte read per shadow
    args: list[int] = field(default_factory=list)
    pack: object = None
    read: object = None
    arg_index: list[int] = field(default_factory=list)
    # bulk partial refresh (plan_blocks), for a device with shadow_block(bank, first, count): the byte value of
    # every slot is the concatenation of one block per run (bytes: a run of slots without a value, published 0)
    runs: list | None = None
    template: bytes = b""           # the group's records with every value 0 (valid bits as the fast path sets them)
    block: object = None
    plan_key: tuple | None = None   # the sizes the plan was made for: an unchanged full refresh keeps it
    full_sizes: tuple = _SIZE_SLOTS  # what a full refresh asks: the sizes the device declares (shadow_sizes), or all


def layout(bus, slots: list[tuple], words: dict[int, int],
           owner: Callable[[int], tuple[object, int] | None]) -> tuple[list[Shadow], list[Group]]:
    """The shadows of the published `slots` (slot -> (port, doorbell mask[, bank])) and their groups by device;
    a slot whose port is not a SHADOW read holds only a doorbell mask.  `owner(port)` is (device, offset)."""
    shadows: list[Shadow] = []
    groups: list[Group] = []
    for i, (port, _, *bank) in enumerate(slots):
        dev, off = owner(port)  # type: ignore[misc]
        rng = next(r for r in bus.ranges if r.device is dev and r.base <= port < r.base + r.length)
        is_shadow = P.split_class_word(words[port])[0] == PortClass.SHADOW
        sh = Shadow(port, (BankView(dev, bank[0]) if bank else dev) if is_shadow else None, off, rng.length)
        shadows.append(sh)
        if not groups or groups[-1].device is not dev:
            declared = getattr(dev, "shadow_sizes", None)   # optional: shadow_read gives None for other sizes
            groups.append(Group(dev, i, [], bool(getattr(dev, "synchronous_shadows", False)),
                                full_sizes=tuple(t for t in _SIZE_SLOTS if declared is None or t[1] in declared)))
        groups[-1].shadows.append(sh)
    return shadows, groups


def refresh(groups: list[Group], touched: set | None, write: Callable[[int, bytes], None], gpa: int, stats,
            every: bool = False) -> None:
    """Rewrite the shadows (area at `gpa`, through `write(gpa, data)`) of the devices whose ids are in `touched`
    and of every device whose shadows are not synchronous; all of them when touched is None (the generic path,
    which also decides what the fast paths may do) or when `every` (every group, by its fast path: after an
    asynchronous event, between two full refreshes).  Always written: the guest updates the shadows of neutral
    writes.  Each group written counts in `stats.shadow_writes`."""
    full = touched is None
    for g in groups:
        if not full and not every and g.synchronous and id(g.device) not in touched:   # type: ignore[operator]
            continue
        data = None
        if not full and g.byte_offsets is not None:
            data = block_group(g) if g.runs is not None else None
            if data is None:
                data = byte_group(g)
        if data is None:
            data = b"".join([shadow_bytes(s, full, g.full_sizes) for s in g.shadows])
            if full:
                plan_group(g)
        write(gpa + P.OFF_SHADOWS + g.first * P.SHADOW.size, data)
        stats.shadow_writes += 1


def plan_group(g: Group) -> None:
    """After a full refresh: a group whose every shadow had a byte value only gets the fast partial path."""
    key = tuple(s.sizes for s in g.shadows)
    if key == g.plan_key:
        return
    g.plan_key = key
    # A slot with no value at all (an unpublished bank) stays invalid without a read.
    live = [s for s in g.shadows if s.sizes]
    # A slot without a device holds only a doorbell mask (its record stays invalid, like a slot with no value).
    if live and all(s.sizes in ((), _SIZE_SLOTS[:1]) and (s.device is not None or not s.sizes) for s in g.shadows):
        g.byte_offsets = [s.offset for s in live]
        g.args = [x for s in g.shadows for x in (s.port, 1 if s.sizes else 0, 0, 0, 0, 0)]
        g.pack = struct.Struct("<" + "HBBIII" * len(g.shadows)).pack
        # bound once: no proxy lookups (a bank slot reads through its BankView)
        g.read = [s.device.shadow_read for s in live]   # type: ignore[union-attr]
        g.arg_index = [3 + 6 * i for i, s in enumerate(g.shadows) if s.sizes]
        plan_blocks(g)
    else:
        g.byte_offsets, g.runs = None, None


def plan_blocks(g: Group) -> None:
    """For a device with `shadow_block`: the group's slots as runs of consecutive offsets of one bank (a
    BankView's, or None: the live registers) read with one call each, and runs of slots with no value."""
    if getattr(g.device, "shadow_block", None) is None:
        g.runs = None
        return
    runs: list = []
    for s in g.shadows:
        if not s.sizes:
            if runs and isinstance(runs[-1], bytes):
                runs[-1] += bytes(1)
            else:
                runs.append(bytes(1))
            continue
        bank = s.device.bank if isinstance(s.device, BankView) else None
        last = runs[-1] if runs else None
        if isinstance(last, list) and last[0] == bank and last[1] + last[2] == s.offset:
            last[2] += 1
        else:
            runs.append([bank, s.offset, 1])
    g.runs = [r if isinstance(r, bytes) else tuple(r) for r in runs]
    g.block = g.device.shadow_block  # type: ignore[attr-defined]   # bound once, as g.read
    blank = list(g.args)
    for k in g.arg_index:
        blank[k] = 0
    g.template = g.pack(*blank)  # type: ignore[operator]


def block_group(g: Group) -> bytearray | None:
    """The group's records from one shadow_block call per run; None when a block has no value (the per-register
    path then decides, slot by slot)."""
    block = g.block
    parts = []
    try:
        for r in g.runs:  # type: ignore[union-attr]
            if r.__class__ is bytes:
                parts.append(r)
                continue
            b = block(*r)  # type: ignore[operator]
            if b is None:
                return None
            parts.append(b)
        out = bytearray(g.template)
        out[_SHADOW_VAL::P.SHADOW.size] = b"".join(parts)   # ValueError: a block of the wrong size
    except (PvgenError, ValueError, TypeError):
        return None
    return out


def byte_group(g: Group) -> bytes | None:
    """The group's records from one byte read per shadow; None when a read has no value (the generic path)."""
    args = g.args
    try:
        for read, off, k in zip(g.read, g.byte_offsets, g.arg_index):  # type: ignore[arg-type]
            v = read(off, 1)
            if v is None:
                return None
            args[k] = v & 0xFF
    except PvgenError:
        return None
    return g.pack(*args)  # type: ignore[operator]


def shadow_bytes(s: Shadow, full: bool, full_sizes: tuple = _SIZE_SLOTS) -> bytes:
    """One shadow record.  A full refresh asks every access size (that the device's optional `shadow_sizes`
    does not rule out); a partial one only the sizes that had a value at the last full refresh (a size left
    out is marked invalid: the guest reads it with an exit)."""
    if s.device is None:
        return _SHADOW_PACK(s.port, 0, 0, 0, 0, 0)
    valid, vals = 0, [0, 0, 0]
    sizes = full_sizes if full else s.sizes
    found = []
    for i, size, mask in sizes:
        if s.offset + size > s.length:
            continue
        try:
            v = s.device.shadow_read(s.offset, size)  # type: ignore[attr-defined]
        except PvgenError:
            continue
        if v is not None:
            valid |= 1 << i
            vals[i] = v & mask
            found.append((i, size, mask))
    if full:
        s.sizes = tuple(found)
    return _SHADOW_PACK(s.port, valid, 0, *vals)
