"""The pv-ideal ring device (devices/pvring.py): requests, completions, and a hostile guest that never crashes it."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings, strategies as st

from pvgen.devices import pvring as pr
from pvgen.errors import ProtocolError


class Ram:
    def __init__(self, size: int = 1 << 20):
        self.size, self.buf = size, bytearray(size)

    def read(self, gpa: int, n: int) -> bytes:
        if gpa < 0 or n < 0 or gpa + n > self.size:
            raise ProtocolError("outside")
        return bytes(self.buf[gpa:gpa + n])

    def write(self, gpa: int, data: bytes) -> None:
        if gpa < 0 or gpa + len(data) > self.size:
            raise ProtocolError("outside")
        self.buf[gpa:gpa + len(data)] = data


RING = 0x1000
BUFS = 0x10000


def setup(dev: pr.PvRing, q: int, size: int = 8, addr: int = RING) -> None:
    dev.io_write(pr.REG_QSEL, 4, q)
    dev.io_write(pr.REG_QADDR_LO, 4, addr)
    dev.io_write(pr.REG_QADDR_HI, 4, 0)
    dev.io_write(pr.REG_QSIZE, 4, size)


def post(ram: Ram, slot: int, addr: int, length: int, op: int, block: int = 0, ring: int = RING) -> None:
    ram.write(ring + 16 + slot * 32, pr.DESC.pack(addr, length, op, 0xFFFF, block, 0, 0))


def desc(ram: Ram, slot: int, ring: int = RING) -> tuple:
    return pr.DESC.unpack(ram.read(ring + 16 + slot * 32, 32))


def publish(ram: Ram, avail: int, flags: int = 0, ring: int = RING) -> None:
    ram.write(ring, struct.pack("<I", avail))
    ram.write(ring + 8, struct.pack("<I", flags))


def test_identity_registers():
    dev = pr.PvRing(Ram(), disk=pr.BytesDisk(bytearray(8 * 4096)), mac=bytes(range(1, 7)))
    assert dev.io_read(pr.REG_MAGIC, 4) == pr.MAGIC
    assert dev.io_read(pr.REG_BLOCKS, 4) == 8
    assert dev.io_read(pr.REG_MAC_LO, 4) == 0x04030201 and dev.io_read(pr.REG_MAC_HI, 4) == 0x0605
    assert dev.port_classes()[pr.REG_NOTIFY][1] == pr.PortClass.DOORBELL


def test_tx_batch_one_doorbell():
    ram, peer = Ram(), pr.ListPeer()
    dev = pr.PvRing(ram, net=peer)
    setup(dev, pr.Q_NET_TX)
    frames = [bytes([i]) * (60 + i) for i in range(5)]
    for i, f in enumerate(frames):
        ram.write(BUFS + i * 2048, f)
        post(ram, i, BUFS + i * 2048, len(f), pr.OP_NET_TX)
    publish(ram, 5)
    dev.io_write(pr.REG_NOTIFY, 4, pr.Q_NET_TX)
    assert peer.sent == frames and dev.notifies == 1
    assert struct.unpack("<I", ram.read(RING + 4, 4))[0] == 5
    assert all(desc(ram, i)[3] == pr.ST_OK for i in range(5))


def test_rx_fills_posted_buffers_and_waits_for_frames():
    ram, peer = Ram(), pr.ListPeer()
    irqs = []
    dev = pr.PvRing(ram, net=peer, irq=irqs.append)
    setup(dev, pr.Q_NET_RX)
    for i in range(4):
        post(ram, i, BUFS + i * 2048, 2048, pr.OP_NET_RX)
    publish(ram, 4, flags=pr.F_INTERRUPT)
    peer.inject([b"a" * 70, b"b" * 1514])
    dev.io_write(pr.REG_NOTIFY, 4, pr.Q_NET_RX)
    assert struct.unpack("<I", ram.read(RING + 4, 4))[0] == 2          # two frames, two buffers used
    assert desc(ram, 1)[5] == 1514 and ram.read(BUFS + 2048, 1514) == b"b" * 1514
    assert irqs[-1] is True and dev.io_read(pr.REG_ISR, 4) == 1 << pr.Q_NET_RX and irqs[-1] is False
    peer.inject([b"c" * 64])
    assert dev.rx_ready() == 1
    assert struct.unpack("<I", ram.read(RING + 4, 4))[0] == 3


def test_disk_write_then_read():
    ram, disk = Ram(), pr.BytesDisk(bytearray(16 * 4096))
    dev = pr.PvRing(ram, disk=disk)
    setup(dev, pr.Q_DISK)
    ram.write(BUFS, b"\x5a" * 8192)
    post(ram, 0, BUFS, 8192, pr.OP_DISK_WRITE, block=3)
    post(ram, 1, BUFS + 0x4000, 4096, pr.OP_DISK_READ, block=4)
    publish(ram, 2)
    dev.notify(pr.Q_DISK)
    assert disk.data[3 * 4096:5 * 4096] == b"\x5a" * 8192
    assert ram.read(BUFS + 0x4000, 4096) == b"\x5a" * 4096
    assert desc(ram, 1)[3] == pr.ST_OK and desc(ram, 1)[5] == 4096


@pytest.mark.parametrize("addr,length,op,block,status", [
    (BUFS, 4096, pr.OP_DISK_READ, 16, pr.ST_IOERR),          # past the end of the disk
    (BUFS, 100, pr.OP_DISK_READ, 0, pr.ST_IOERR),            # not a multiple of 4 KiB
    ((1 << 20) - 100, 4096, pr.OP_DISK_READ, 0, pr.ST_IOERR),  # buffer leaves guest RAM
    (BUFS, 4096, pr.OP_NET_TX, 0, pr.ST_UNSUPP),             # a net op on the disk queue
    (1 << 62, 4096, pr.OP_DISK_WRITE, 0, pr.ST_IOERR),
])
def test_bad_descriptors_complete_with_an_error(addr, length, op, block, status):
    ram = Ram()
    dev = pr.PvRing(ram, disk=pr.BytesDisk(bytearray(16 * 4096)))
    setup(dev, pr.Q_DISK)
    post(ram, 0, addr, length, op, block)
    publish(ram, 1)
    dev.notify(pr.Q_DISK)
    assert desc(ram, 0)[3] == status and dev.errors == 1


def test_bad_rings_are_refused():
    ram = Ram()
    dev = pr.PvRing(ram)
    setup(dev, pr.Q_DISK, size=6)                 # not a power of two
    setup(dev, pr.Q_NET_TX, size=8, addr=ram.size - 64)   # does not fit in RAM
    dev.notify(pr.Q_DISK)
    dev.notify(7)
    assert dev.errors == 4 and all(q.size == 0 for q in dev.queues)
    setup(dev, pr.Q_NET_TX)
    publish(ram, 100)                              # more than the ring holds
    dev.notify(pr.Q_NET_TX)
    assert dev.errors == 5
    dev.io_write(pr.REG_NOTIFY, 2, 0)              # wrong access size: counted, ignored
    assert dev.bad_access == 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 0x40), st.integers(0, 2**32 - 1)), max_size=30),
       st.binary(min_size=0, max_size=512))
def test_hostile_guest_never_raises(writes, junk):
    ram = Ram(1 << 16)
    ram.write(RING, junk)
    dev = pr.PvRing(ram, net=pr.ListPeer(), disk=pr.BytesDisk(bytearray(4 * 4096)))
    for kind, off, value in writes:
        if kind == 5:
            dev.io_read(off, 4)
        elif kind == 4:
            ram.write(RING + (off % 32) * 16, value.to_bytes(4, "little"))
        else:
            dev.io_write(off & ~3, 4, value if kind else value & 0xFFFF)
        for q in range(pr.NQUEUES):
            dev.notify(q)
