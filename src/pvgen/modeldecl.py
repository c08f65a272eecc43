"""What a device model declares so the guest runtime can run part of it in the guest (protocol v5).

A device never sees the area: it declares its in-guest models in its own terms (register offsets, values, its own
state), the monitor (devices/pvmodels.py) turns them into the records of protocol.py that the runtime (models.c)
executes generically, and the monitor replays and checks what the runtime did.  docs/protocol.md, "In-guest device
models", explains each mechanism and why it is exact; these are the optional device methods:

    latches() -> {offset: value}          write-only registers whose last written byte the guest tracks (a latch is
                                          published only for a port the runtime's slow path sees); a key that is
                                          not an int is a latch with no port, which only command rules set
    dynamic_command_rules = True          command_rules() depends on the device's state: published again at every
                                          refresh of the device (command_rule_capacity records are kept for it)
    command_rules() -> [CommandRule]      command writes the guest may apply itself
    engines() -> [EngineDecl]             transfer engines on data ports (static)
    engine_state(i) -> EngineNow | None   engine i now (None: not published until the next flush)
    engine_position(i) -> (state, addr, count) | None   optional, cheap: where the device's transfer is (the
                                          monitor checks every served run against it; default: engine_state)
    mirror_take_dirty(i) -> (lo, hi)|None device memory of DMA engine i changed since the last call (device addresses)
    mirror_bytes(i, lo, hi) -> bytes      that memory
    engine_write(i, offset, size, data)   optional: the replay of writes the guest's engine i took (else write_many)
    irq_rules() -> [IrqRule]              interrupt lines the guest may compute
    irq_rule_state(i) -> (line, level) | None
    index_files() -> [IndexFile]          index/data register files
    index_entries(i) -> {key: value}      side-effect-free data values now (the monitor publishes at most 256)
    index_latch(i) -> int | None          the device's current index (None: unknown)
"""

from __future__ import annotations

from dataclasses import dataclass

from pvgen.protocol import EngineKind, EngineState


@dataclass(frozen=True)
class Reg:
    """A register as the guest reads it: `offset` in the range of `device` (None: the declaring device)."""

    offset: int
    device: object | None = None


@dataclass(frozen=True)
class Cond:
    """A condition the runtime checks: on a byte shadow (`shadow`), on a latch (`latch`), or a latch pair's value
    in a range (`range`: `reg` low byte, `reg2` high byte or None)."""

    kind: str
    reg: Reg
    x: int = 0
    y: int = 0
    reg2: Reg | None = None

    @classmethod
    def shadow(cls, offset: int, mask: int, want: int, device: object | None = None) -> "Cond":
        return cls("shadow", Reg(offset, device), mask, want)

    @classmethod
    def latch(cls, offset: int, mask: int, want: int) -> "Cond":
        return cls("latch", Reg(offset), mask, want)

    @classmethod
    def range(cls, lo: int, hi: int | None, minimum: int, maximum: int) -> "Cond":
        return cls("range", Reg(lo), minimum, maximum, None if hi is None else Reg(hi))


@dataclass(frozen=True)
class Effect:
    """A byte shadow update: value = (value & and_mask) | or_bits."""

    reg: Reg
    and_mask: int
    or_bits: int

    @classmethod
    def set(cls, offset: int, value: int, device: object | None = None) -> "Effect":
        return cls(Reg(offset, device), 0, value & 0xFF)

    @classmethod
    def set_bits(cls, offset: int, bits: int, device: object | None = None) -> "Effect":
        return cls(Reg(offset, device), 0xFF, bits & 0xFF)


@dataclass(frozen=True)
class CommandRule:
    """A byte write to `offset` with (value & value_mask) == value_want, while every condition holds, that the guest
    applies itself: its own shadow becomes ((value & own_mask) | (old & ~own_mask)) & own_and, the effects apply,
    and `engine` (an index into engines()) is armed for `engine_state`.  `needs_irq_rules`: publish it only when the
    device's interrupt rules are published (its effects raise an interrupt the guest must then compute)."""

    offset: int
    value_mask: int
    value_want: int
    conds: tuple[Cond, ...] = ()
    own_mask: int = 0xFF
    own_and: int = 0xFF
    effects: tuple[Effect, ...] = ()
    engine: int | None = None
    engine_state: EngineState = EngineState.IDLE
    needs_irq_rules: bool = False
    wide: "Wide | None" = None          # a condition on up to four registers read as one value
    window_count: int = 0               # arming a WINDOW engine: bytes (times count_reg's value when given) ...
    count_reg: int | None = None
    window_offset: int = 0              # ... over its memory at this offset (the engine's mem_len covers it)
    stage: bool = False                 # ... staging the writes it takes (its memory is reused by the next one)
    sets_latch: tuple[object, int] | None = None   # (latch key, value) this write sets


@dataclass(frozen=True)
class Wide:
    """(registers[0] | registers[1] << 8 | ...) & mask within [lo, hi]: up to four byte registers read as one
    little-endian value (an ATA LBA28 with the device register's bits)."""

    regs: tuple[int, ...]
    mask: int
    lo: int
    hi: int


@dataclass(frozen=True)
class EngineDecl:
    """A transfer engine on the data port at `data_offset` (docs/protocol.md, "Transfer engines").

    WINDOW: the monitor arms it at a flush with the data of a transfer block (engine_state gives the bytes);
    DMA: the guest arms it with a command rule over a mirror of device memory [mem_base, mem_base + mem_len) that
    the monitor keeps current; the address and byte count come from latches, the address counts up through
    `addr_mask` and wraps from wrap_at to wrap_to (the wrap latches, shifted left by `wrap_shift`)."""

    data_offset: int
    kind: EngineKind
    units: tuple[int, int, int]          # bytes one access of size 1, 2, 4 moves (0: the access exits)
    mem_len: int                         # engine memory it needs (a mirror's size, or the largest window)
    mem_base: int = 0
    addr_mask: int = 0xFFFFFFFF
    saturate: bool = False               # an access moving more than is left ends the transfer (else it exits)
    cmd_offset: int | None = None        # DMA: every other write to it stops the engine
    addr_latches: tuple[int, int] | None = None
    count_latches: tuple[int, int] | None = None
    wrap_latches: tuple[int, int] | None = None   # (to, at)
    wrap_shift: int = 0
    dep_latches: tuple[int, ...] = ()    # a write to one of these while the engine serves stops it
    addr_regs: tuple[int | None, int | None] = (None, None)   # registers showing the address (low, high byte)
    done: tuple[Effect, ...] = ()        # the completion state (count reaches 0)
    serve_cond: Cond | None = None       # must hold for every served access
    done_cond: Cond | None = None        # must hold for the access that completes


@dataclass(frozen=True)
class EngineNow:
    """An engine's state after a flush: what the device's transfer is now.  A WINDOW carries its `data` (the whole
    transfer block from `addr` on: the runtime serves addr .. addr + count) and may override the completion."""

    state: EngineState
    addr: int = 0
    count: int = 0
    wrap_to: int = 0
    wrap_at: int = 0
    data: bytes = b""
    done: tuple[Effect, ...] | None = None
    extra: tuple[tuple[int, bytes], ...] = ()   # more windows' data for command rules: (offset in memory, bytes)


@dataclass(frozen=True)
class IrqRule:
    """The device's interrupt output as (status register & mask latch & mask) != 0, computable while `cond`
    holds (docs/protocol.md, "Interrupt rules")."""

    status: int
    mask_latch: int
    mask: int
    cond: Cond


@dataclass(frozen=True)
class IndexFile:
    """An index/data register file: a write of `index_size` bytes to `index_offset` selects what the data ports
    `data_offset .. + data_len` read; entries are keyed by index & key_mask, byte lane = data port - data_offset.
    Only naturally aligned data reads are served (a misaligned one goes to the device)."""

    index_offset: int
    index_size: int
    data_offset: int
    data_len: int
    key_mask: int
