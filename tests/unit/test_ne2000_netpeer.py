"""Packet backends: the built-in peer records transmitted frames to pcap and injects frames; TAP opens or says why."""

from __future__ import annotations

import struct

import pytest

from pvgen.devices import ne2000 as N
from pvgen.devices.netpeer import PeerBackend, TapBackend, read_pcap
from pvgen.errors import EnvironmentMissing

MAC = bytes.fromhex("525400abcdef")


def started(peer: PeerBackend) -> N.Ne2000:
    nic = N.Ne2000(mac=MAC, backend=peer)
    peer.attach(nic.receive)
    for off, v in [(N.CR, 0x21), (N.DCR, 0x49), (N.PSTART, 0x4C), (N.PSTOP, 0x80), (N.BNRY, 0x4B),
                   (N.TPSR, 0x40), (N.RCR, 0x04), (N.TCR, 0), (N.CR, 0x61), (N.CURR, 0x4C)]:
        nic.io_write(off, 1, v)
    for i, b in enumerate(MAC):
        nic.io_write(N.PAR0 + i, 1, b)
    nic.io_write(N.CR, 1, 0x22)
    return nic


def transmit(nic: N.Ne2000, frame: bytes) -> None:
    nic.mem[0x4000:0x4000 + len(frame)] = frame
    for off, v in [(N.TBCR0, len(frame) & 0xFF), (N.TBCR1, len(frame) >> 8), (N.TPSR, 0x40), (N.CR, 0x26)]:
        nic.io_write(off, 1, v)


def test_every_transmitted_frame_is_in_the_pcap(tmp_path):
    path = tmp_path / "tx.pcap"
    peer = PeerBackend(pcap_path=path)
    nic = started(peer)
    frames = [bytes([i]) * (60 + i) for i in range(5)]
    for f in frames:
        transmit(nic, f)
    assert read_pcap(path) == frames           # readable while the monitor still runs (flushed per frame)
    peer.close()
    raw = path.read_bytes()
    magic, major, minor, _, _, snap, link = struct.unpack_from("<IHHiIII", raw)
    assert (magic, major, minor, link) == (0xA1B2C3D4, 2, 4, 1)
    assert read_pcap(path) == frames == peer.sent


def test_loopback_frames_do_not_reach_the_wire(tmp_path):
    peer = PeerBackend()
    nic = started(peer)
    nic.io_write(N.TCR, 1, 0x02)
    transmit(nic, bytes(60))
    assert peer.sent == [] and nic.isr & N.ISR_PTX and nic.metrics["tx_loopback"] == 1


def test_inject_queue_and_poll(tmp_path):
    peer = PeerBackend(rx_pcap_path=tmp_path / "rx.pcap")
    frame = MAC + bytes(60)
    assert not peer.inject(frame)              # no NIC attached yet: held
    nic = started(peer)
    assert peer.poll() == 1 and nic.isr & N.ISR_PRX
    peer.queue(b"\xff" * 6 + bytes(60))
    assert peer.poll() == 1
    assert read_pcap(tmp_path / "rx.pcap") == [frame]
    peer.close()


def test_echo_responder_through_on_send():
    peer = PeerBackend()
    nic = started(peer)
    peer.on_send = lambda f: peer.queue(f[6:12] + f[0:6] + f[12:])   # swap source and destination
    transmit(nic, bytes.fromhex("020000000001") + MAC + bytes(50))
    assert peer.poll() == 1                    # the echo is addressed to the NIC
    transmit(nic, bytes.fromhex("020000000001") + bytes.fromhex("020000000002") + bytes(50))
    assert peer.poll() == 0                    # addressed to another station: filtered


def test_tap_opens_or_reports_what_is_missing():
    try:
        tap = TapBackend("pvgentest0")
    except EnvironmentMissing as e:
        assert "/dev/net/tun" in str(e) or "CAP_NET_ADMIN" in str(e)
        return
    try:
        assert tap.fileno() >= 0 and tap.poll() == 0
    finally:
        tap.close()


def test_bad_pcap_is_rejected(tmp_path):
    p = tmp_path / "x.pcap"
    p.write_bytes(b"\0" * 24)
    with pytest.raises(ValueError):
        read_pcap(p)
