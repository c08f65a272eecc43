"""Random lib8390 + ne2k-pci programs through the C runtime (host build) with the NE2000's in-guest models (protocol
v5: remote-DMA engine over the mirrored buffer memory, CR command rules, posted TXP, the interrupt rule) against the
device model: every value the guest is served equals what the device returns at that point of the access sequence
(the audit build's per-value check, and a twin device running the logged accesses at once), the device ends in the
state immediate execution of the same accesses leaves it in, the frames on the wire are the driver's in order and
the frames the driver receives are the injected ones.

The programs (`programs`) mix the driver's own paths (lib8390_mimic.py: transmits of 14..1514 bytes with random
payloads, receive bursts that wrap the 0x4C..0x80 ring several times, the interrupt handler) with accesses a driver
makes outside them, under its page lock (disable_irq): remote reads aborted before their count, reads past the
count, remote writes aborted or run past their count, a frame arriving while a remote-DMA engine is armed, a card
reset (a read of port 0x1F) followed by NS8390_init; with timer ticks and explicit flushes between, posted TXP on
and off, interrupt notification through the area on and off, and the models on and off (the same program both ways:
the models must cost fewer exits).
The tests at the end pin two faults these programs found: the FIFO prefetch of a remote read ran the device
ahead of the guest (CRDA showed it, a read of another size read past the prefetched values; now the unread values
go back to the device at the next flush and CRDA has no shadow while values are handed out), and the bench's
receive pacer injected frames inside a replay (audit mismatches; now it injects after the replay).
"""

from __future__ import annotations

import os
import sys
from collections import deque
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lib8390_mimic import (  # noqa: E402
    CMD, DATAPORT, EN0_ISR, EN0_RCNTHI, EN0_RCNTLO, EN0_RSARHI, EN0_RSARLO, EN1_PHYS, ENISR_RDC, NODMA, PAGE0,
    PAGE1, RREAD, RWRITE, RX_START, START, STOP_PG, TX_START, Lib8390,
)
from ne2k_models_harness import AREA, MAC, NIC, RuntimeIO, replay, results, state  # noqa: E402

from pvgen.bench.linuxkit import RxPacer  # noqa: E402
from pvgen.runtime import build as runtime_build  # noqa: E402
from tests.conftest import ON_CI  # noqa: E402

LONG = os.environ.get("PVGEN_HYPOTHESIS_PROFILE") == "long"
# Seeded on CI (the same programs every run), unseeded elsewhere (new programs every run).
SETTINGS = settings(max_examples=2000 if LONG else 200, deadline=None, derandomize=ON_CI,
                    database=None if ON_CI else settings.default.database,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])
NE_RESET = 0x1F
BROADCAST = b"\xff" * 6


# --- the runtime builds ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def libs(tmp_path_factory) -> dict[str, str]:
    """The host build with the interrupt simulation, plain and audit (-DPVIO_AUDIT: every value served without an
    exit is logged and the monitor checks it against the device at its position)."""
    d = tmp_path_factory.mktemp("ne2k-models")
    sim = ("-DPVIO_HOST_IRQ_SIM",)
    return {"plain": str(runtime_build.build("host", "batch", d / "plain.so", extra_cflags=sim)),
            "audit": str(runtime_build.build("host", "batch", d / "audit.so", extra_cflags=(*sim, "-DPVIO_AUDIT")))}


# --- the driver and the wire ------------------------------------------------------------------------------------------
class Wire:
    """The NIC's backend: every frame the model puts on the wire, in order."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, frame: bytes) -> None:
        self.frames.append(bytes(frame))


def pad(frame: bytes) -> bytes:
    return frame if len(frame) >= 60 else frame + bytes(60 - len(frame))


class Driver(Lib8390):
    """lib8390 with a record of the frames it accepted (as it pads them) and of those it started sending (a reset
    loses one waiting in the second TX slot: NS8390_init empties both), for the wire check."""

    def __init__(self, io, mac) -> None:
        super().__init__(io, mac)
        self.accepted: list[bytes] = []
        self.triggered: list[bytes] = []
        self._slots: dict[int, bytes] = {}

    def start_xmit(self, frame: bytes) -> bool:
        ok = super().start_xmit(frame)
        if ok:
            self.accepted.append(pad(frame))
        return ok

    def block_output(self, buf: bytes, start_page: int) -> None:
        self._slots[start_page] = bytes(buf)
        super().block_output(buf, start_page)

    def sending(self, length: int, start_page: int) -> None:
        self.triggered.append(self._slots[start_page][:length])


def payload(seed: int, n: int) -> bytes:
    return bytes((seed * 131 + k * 7 + (k >> 8) * 29) & 0xFF for k in range(n))


def frame_of(dest: bytes, seed: int, length: int) -> bytes:
    return (dest + bytes.fromhex("020000aabbcc") + payload(seed, max(length - 12, 0)))[:length]


def inject(io: RuntimeIO, frames: list[bytes], settle: bool = True) -> list[bytes]:
    """Frames from the wire between two accesses (the queue first: the device sees them after everything the driver
    did), as many of them as the ring takes; returns those."""
    if settle:
        io.settle()
    taken = []
    for f in frames:
        if not io.nic.rx_fits(len(f)):
            break
        assert io.nic.receive(f)
        taken.append(f)
    io.log.events.append(("inject", 0, 0, tuple(taken), None))
    io.mon.refresh()
    if io.pic.edges:
        io.pic.edges = 0
        io.fire()
    return taken


def data_reads(io: RuntimeIO, reads) -> None:
    """Data-port reads of sizes 'w' (inw), 'l' (inl), 'b' (inb), or ('s', n): an insl of n dwords."""
    for r in reads:
        if r == "w":
            io.inw(DATAPORT)
        elif r == "l":
            io.inl(DATAPORT)
        elif r == "b":
            io.inb(DATAPORT)
        else:
            io.insl(DATAPORT, r[1])


def remote_read(io: RuntimeIO, addr: int, count: int, reads, injected: list, frames=(), at: int = 0) -> None:
    """Under the page lock (disable_irq): a remote read of `count` bytes at `addr`, the data reads `reads` (fewer
    than the count holds: an abort; more: reads past the count), frames arriving after the `at`-th read (while the
    engine is armed), then the abort lib8390 writes before the next command, and the RDC acknowledge.  Behind
    queued writes that are not neutral the command is not the guest's to judge: the remote read then goes through
    the FIFO (prefetched values, given back at the next flush: PvBatch._fifo_giveback), as without the models."""
    io.irq_disable()
    io.outb(NODMA | PAGE0 | START, CMD)
    io.outb(count & 0xFF, EN0_RCNTLO)
    io.outb(count >> 8, EN0_RCNTHI)
    io.outb(addr & 0xFF, EN0_RSARLO)
    io.outb(addr >> 8, EN0_RSARHI)
    io.outb(RREAD | START, CMD)
    data_reads(io, reads[:at])
    if frames:
        injected += inject(io, list(frames))
    data_reads(io, reads[at:])
    io.outb(NODMA | PAGE0 | START, CMD)
    io.outb(ENISR_RDC, EN0_ISR)
    io.irq_enable()


def remote_write(io: RuntimeIO, drv: Driver, addr: int, count: int, writes, seed: int) -> None:
    """Under the page lock: a remote write of `count` bytes at `addr` in the TX buffers, the data writes `writes`
    ('w' outw, 'b' outb: a word in word mode, ('s', n) an outsl of n dwords: fewer bytes than the count, an abort;
    more, writes past the count), then the abort and the RDC acknowledge.  Only while no frame waits in a TX slot
    (one staged but not yet started would go out with these bytes)."""
    if drv.tx1 or drv.tx2:
        return
    io.settle()
    io.irq_disable()
    io.outb(NODMA | PAGE0 | START, CMD)
    io.outb(ENISR_RDC, EN0_ISR)
    io.outb(count & 0xFF, EN0_RCNTLO)
    io.outb(count >> 8, EN0_RCNTHI)
    io.outb(addr & 0xFF, EN0_RSARLO)
    io.outb(addr >> 8, EN0_RSARHI)
    io.outb(RWRITE | START, CMD)
    data = payload(seed, 4 * sum(w[1] if isinstance(w, tuple) else 1 for w in writes))
    k = 0
    for w in writes:
        if w == "w":
            io.outw(int.from_bytes(data[k:k + 2], "little"), DATAPORT)
        elif w == "b":
            io.outb(data[k], DATAPORT)
        else:
            io.outsl(DATAPORT, data[k:k + 4 * w[1]])
        k += 4 * w[1] if isinstance(w, tuple) else 2
    io.outb(NODMA | PAGE0 | START, CMD)
    io.outb(ENISR_RDC, EN0_ISR)
    io.irq_enable()


def card_reset(io: RuntimeIO, drv: Driver) -> None:
    """ne2k_pci_reset_8390 (read the reset port, write it back, wait for ISR.RST, acknowledge it), then
    NS8390_init, as ei_open does after a reset."""
    io.irq_disable()
    v = io.inb(NE_RESET)
    io.outb(v, NE_RESET)
    for _ in range(100):
        if io.inb(EN0_ISR) & 0x80:
            break
    else:
        raise AssertionError("the card did not reset")
    io.outb(0x80, EN0_ISR)
    drv.init()
    io.irq_enable()


# --- one run -------------------------------------------------------------------------------------------------------
def run(lib: str, program, *, models: bool, notify: bool, posted_tx: bool):
    io = RuntimeIO(lib, models=models, notify=notify, posted_tx=posted_tx)
    wire = Wire()
    io.nic.backend = wire
    drv = Driver(io, MAC)
    io.driver = drv
    drv.init()
    injected: list[bytes] = []
    for op in program:
        kind = op[0]
        if kind == "tx":
            drv.start_xmit(op[1])
        elif kind == "rx":
            injected += inject(io, list(op[1]))
        elif kind == "tick":
            io.tick()
        elif kind == "flush":
            io.flush()
        elif kind == "read":
            remote_read(io, op[1], op[2], op[3], injected)
        elif kind == "read_rx":
            remote_read(io, op[1], op[2], op[3], injected, op[4], op[5])
        elif kind == "write":
            remote_write(io, drv, *op[1:])
        elif kind == "reset":
            card_reset(io, drv)
        else:
            raise AssertionError(kind)
    io.tick()
    io.settle()
    assert not io.pending and not io.disabled
    io.finish()
    return io, drv, wire, injected


def nic_state(nic) -> dict:
    """The device's registers and memory (not posted_tx: the harness's twin is built with the default)."""
    return {k: v for k, v in state(nic).items() if k != "posted_tx"}


def check(io: RuntimeIO, drv: Driver, wire: Wire, injected: list[bytes]) -> None:
    st_ = io.stats()
    assert st_["rejected"] == 0, io.mon.stats.errors
    assert st_["mismatches"] == 0, st_["errors"]
    assert io.mon.audit.mismatches == 0, io.mon.audit.errors
    got, twin = replay(io.log)
    want = results(io.log)
    first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
    assert first is None and len(got) == len(want), f"read {first}: the guest was served {want[first]!r}, " \
                                                     f"the device returns {got[first]!r}"
    assert nic_state(twin) == nic_state(io.nic)
    assert twin.metrics["tx_frames"] == io.nic.metrics["tx_frames"] == len(wire.frames)
    assert wire.frames == drv.triggered
    if not any(ev[0] == "in" and ev[1] == NE_RESET for ev in io.log.events):
        assert drv.triggered == drv.accepted
    assert drv.rx_frames == [pad(f) for f in injected]
    assert drv.rx_errors == 0     # (tx_errors: a busy return, when the TX interrupt came at a later flush)


# --- the programs ---------------------------------------------------------------------------------------------------
seeds = st.integers(0, 0xFFFF)
tx_op = st.builds(lambda dest, seed, n: ("tx", frame_of(dest, seed, n)), st.sampled_from([BROADCAST, MAC]), seeds,
                  st.one_of(st.integers(14, 1514), st.integers(14, 80), st.integers(1490, 1514)))
rx_frame = st.builds(frame_of, st.sampled_from([MAC, BROADCAST]), seeds,
                     st.one_of(st.integers(14, 1514), st.integers(60, 70), st.integers(1400, 1514)))
rx_burst = st.lists(rx_frame, min_size=1, max_size=9)
# addresses in the TX buffers and the receive ring (near the PSTOP wrap too), and the PROM below the buffer memory
# (the engine leaves it to the FIFO)
dma_addr = st.one_of(st.integers(0, 0x40).map(lambda a: a & ~1),
                     st.integers(TX_START << 8, (STOP_PG << 8) - 2).map(lambda a: a & ~1),
                     st.integers((STOP_PG << 8) - 64, (STOP_PG << 8) - 2).map(lambda a: a & ~1),
                     st.integers(RX_START << 8, (RX_START << 8) + 64).map(lambda a: a & ~1))
read_one = st.one_of(st.just("w"), st.just("w"), st.just("l"), st.just("b"),
                     st.integers(1, 400).map(lambda n: ("s", n)))


@st.composite
def remote_read_op(draw):
    """A remote read of a random count, with data reads covering less than it (an abort), exactly it, or more
    (reads past the count); perhaps a burst of frames arriving after some of the reads."""
    count = draw(st.one_of(st.integers(1, 64), st.integers(1, 2048)))
    reads = draw(st.lists(read_one, max_size=8))
    if draw(st.booleans()):
        frames = draw(st.lists(rx_frame, min_size=1, max_size=4))
        return ("read_rx", draw(dma_addr), count, reads, frames, draw(st.integers(0, len(reads))))
    return ("read", draw(dma_addr), count, reads)


write_op = st.builds(lambda addr, count, writes, seed: ("write", addr, count, writes, seed),
                     st.integers(TX_START << 8, (RX_START << 8) - 2).map(lambda a: a & ~1),
                     st.one_of(st.integers(1, 64), st.integers(1, 1600)),
                     st.lists(st.one_of(st.just("w"), st.just("b"), st.integers(1, 300).map(lambda n: ("s", n))),
                              max_size=6), seeds)
rx_op = rx_burst.map(lambda fs: ("rx", fs))
op_st = st.one_of(tx_op, tx_op, tx_op, write_op, rx_op, rx_op, st.just(("tick",)), st.just(("flush",)),
                  remote_read_op(), remote_read_op(), st.just(("reset",)))
programs = st.lists(op_st, min_size=6, max_size=40)


# --- properties -----------------------------------------------------------------------------------------------------
@SETTINGS
@given(program=programs, notify=st.booleans(), posted_tx=st.booleans(), audit=st.booleans())
def test_lib8390_programs_are_served_what_the_device_returns(libs, program, notify, posted_tx, audit):
    """The program with the models (every read size, aborts, reads past the count) and without them: faithful
    both ways, and the models cost no more exits (the exits the test's own synchronisation makes aside)."""
    lib = libs["audit" if audit else "plain"]
    io, drv, wire, injected = run(lib, program, models=True, notify=notify, posted_tx=posted_tx)
    check(io, drv, wire, injected)
    h = io.rt.header(AREA)
    ms = io.mon.areas[0].models
    pages = sum(io.nic._pages(len(f)) for f in injected)
    event(f"ring wraps: {min(pages // (STOP_PG - RX_START), 3)}{'+' if pages >= 3 * (STOP_PG - RX_START) else ''}")
    event(f"guest-raised interrupts: {'yes' if h['irq_raised'] else 'no'}")
    event(f"engine: reads {'yes' if ms.stats.served_in else 'no'}, writes {'yes' if ms.stats.served_out else 'no'}")
    if audit and h["shadow_hits"] + h["fifo_hits"] + ms.stats.served_in:     # reads served (writes are not audited)
        assert io.mon.audit.served > 0
    with_models = io.rt.exits - io.forced
    io, drv, wire, injected = run(lib, program, models=False, notify=notify, posted_tx=posted_tx)
    check(io, drv, wire, injected)
    assert with_models <= io.rt.exits - io.forced


WRAP = [("rx", [frame_of(MAC, i, 1514)]) for i in range(40)]    # 40 frames of 6 pages: the ring wraps 4 times


@pytest.mark.parametrize("audit", [False, True], ids=["plain", "audit"])
@pytest.mark.parametrize("notify", [False, True], ids=["pic", "notify"])
def test_ring_wraps_and_transmits_cost_fewer_exits_with_models(libs, audit, notify):
    """The ring wraps four times, with transmits between: faithful both ways, and the models save exits."""
    program = [op for i, rx in enumerate(WRAP) for op in (rx, ("tx", frame_of(BROADCAST, i, 61 + 37 * i)))]
    exits = {}
    for models in (True, False):
        io, drv, wire, injected = run(libs["audit" if audit else "plain"], program, models=models, notify=notify,
                                      posted_tx=True)
        check(io, drv, wire, injected)
        assert len(injected) == 40 and len(wire.frames) == 40
        exits[models] = io.rt.exits
        if models:
            assert io.mon.areas[0].models.stats.served_in > 40 * 1500 // 4
    assert exits[True] < exits[False]


def test_an_aborted_remote_read_then_a_frame_then_a_reset(libs):
    """The mechanisms the random programs mix, once each in a fixed order: an engine armed and aborted after two
    reads, a frame arriving while one is armed, reads past the count, a reset in the middle."""
    program = [("tx", frame_of(MAC, 1, 100)), ("rx", [frame_of(MAC, 2, 300)]),
               ("read", RX_START << 8, 64, ["w", "w"]),
               ("read_rx", (STOP_PG << 8) - 8, 32, ["l", "w", ("s", 20)], [frame_of(BROADCAST, 3, 1514)], 1),
               ("read", TX_START << 8, 6, ["w", "w", "w", "w", "l"]), ("reset",),
               ("rx", [frame_of(MAC, 4, 70)] * 3), ("tx", frame_of(MAC, 5, 1514)), ("tick",)]
    for audit in ("plain", "audit"):
        check(*run(libs[audit], program, models=True, notify=True, posted_tx=True))
        check(*run(libs[audit], program, models=False, notify=True, posted_tx=True))


# --- found by these programs: the FIFO prefetch of a remote read runs the device ahead of the guest -----------------
# After a single data-port read that exits (an IN), the monitor refills the FIFO: Ne2000.fifo_read makes the next
# reads of that size at the device, CRDA and RBCR move past them, and the runtime serves the values only to reads
# of the same size.  Two things the guest can see then differ from immediate execution: CRDA0/CRDA1 (shadows the
# refresh publishes with the device's advanced address), and a data-port read of another size (an `inw` or `inb`
# after an `inl`, or an `insw`), which exits and reads the device at the prefetched position.  Without the models
# every remote read takes this path; with them, a remote read the engine leaves alone (the PROM below the buffer
# memory) does.  The lib8390 paths do not show it (a single `inl` of a 4-byte count, `insl` strings: an INS is
# never followed by a refill).  programs above leave the PROM out and make the models-off runs FIFO-safe.

def prefetch_then(lib: str, models: bool, addr: int, after, neutral: bool = True) -> tuple[list, list]:
    """A remote read of 32 bytes at addr (a transmitted frame put known bytes at 0x4000), one `inl`, then `after`
    (offset, size) reads: (guest, device) values.  `neutral` False: a page-1 write (PAR0, not neutral) is queued
    before the command, so the guest's command rule cannot arm the engine."""
    io = RuntimeIO(lib, models=models, notify=False, posted_tx=False)
    drv = Driver(io, MAC)
    io.driver = drv
    drv.init()
    drv.start_xmit(bytes(range(256)) * 2)
    io.settle()
    io.irq_disable()
    if not neutral:
        io.outb(NODMA | PAGE1 | START, CMD)
        io.outb(MAC[0], EN1_PHYS)
    n0 = len(results(io.log))
    io.outb(NODMA | PAGE0 | START, CMD)
    for off, v in ((EN0_RCNTLO, 32), (EN0_RCNTHI, 0), (EN0_RSARLO, addr & 0xFF), (EN0_RSARHI, addr >> 8)):
        io.outb(v, off)
    io.outb(RREAD | START, CMD)
    io.inl(DATAPORT)
    for off, size in after:
        {1: io.inb, 2: io.inw, 4: io.inl}[size](off)
    io.irq_enable()
    io.settle()
    io.finish()
    got, _ = replay(io.log)
    return results(io.log)[n0:], got[n0:]


PREFETCH_CASES = pytest.mark.parametrize("models,addr,neutral", [(False, 0x4000, True), (True, 0x0000, True),
                                                                 (True, 0x4000, False)],
                                         ids=["registers-buffer", "models-prom", "models-behind-a-page1-write"])
CRDA0, CRDA1 = 0x08, 0x09


@PREFETCH_CASES
def test_crda_after_one_data_read_is_the_next_address(libs, models, addr, neutral):
    guest, device = prefetch_then(libs["plain"], models, addr, [(CRDA0, 1), (CRDA1, 1)], neutral)
    assert guest == device


@PREFETCH_CASES
def test_a_data_read_of_another_size_after_one_data_read_reads_the_next_bytes(libs, models, addr, neutral):
    guest, device = prefetch_then(libs["plain"], models, addr, [(DATAPORT, 2), (DATAPORT, 1), (DATAPORT, 4)],
                                  neutral)
    assert guest == device


# --- the bench's receive pacer (bench/linuxkit.py) under the batch monitor: the NIC sits on the bus itself and the
# --- pacer hands it the next frames after the replay of a batch that acknowledged PRX (RxPacer.attach_to), as a frame
# --- arriving during that exit would.  (It used to wrap the NIC and inject inside the replay of the acknowledge:
# --- values the guest was served before the frame existed were then audited against the device after it.)

def paced(lib: str):
    """lib8390 receiving eight frames: the first injected at once, the next seven by the bench's pacer."""
    io = RuntimeIO(lib, models=True, notify=True)
    pacer = RxPacer(io.nic, deque(frame_of(MAC, i, 60 + 181 * i) for i in range(8)))
    pacer.attach_to(io.mon)
    drv = Driver(io, MAC)
    io.driver = drv
    drv.init()
    io.settle()
    pacer.enabled = True
    inject(io, [pacer.inbox.popleft()])
    for _ in range(16):
        io.tick()
    io.settle()
    io.finish()
    return io, drv, pacer


def test_frames_a_pacer_injects_after_a_replay_are_all_received(libs):
    io, drv, pacer = paced(libs["plain"])
    assert pacer.injected == 7 and len(drv.rx_frames) == 8
    assert io.stats()["mismatches"] == 0 and io.mon.stats.rejected == 0


def test_frames_a_pacer_injects_after_a_replay_are_not_audit_mismatches(libs):
    io, drv, pacer = paced(libs["audit"])
    assert len(drv.rx_frames) == 8
    assert io.mon.audit.mismatches == 0, io.mon.audit.errors[:2]
