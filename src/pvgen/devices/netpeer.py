"""Packet backends for the NE2000: a built-in peer that records transmitted frames to pcap and injects frames,
and an optional TAP device.

A backend has `send(frame)` (the NIC transmitted a frame) and delivers received frames by calling the receiver
it was attached to (`attach(receiver)`, normally `Ne2000.receive`), from the monitor's thread only.
"""

from __future__ import annotations

import collections
import os
import struct
import time
from typing import Callable, Protocol

from pvgen.errors import EnvironmentMissing

PCAP_MAGIC = 0xA1B2C3D4
PCAP_VERSION = (2, 4)
LINKTYPE_ETHERNET = 1
PCAP_SNAPLEN = 65535

Receiver = Callable[[bytes], bool]


class PacketBackend(Protocol):
    def send(self, frame: bytes) -> None: ...

    def attach(self, receiver: Receiver) -> None: ...

    def close(self) -> None: ...


class PcapWriter:
    """A classic libpcap file (microsecond timestamps, Ethernet link type), flushed after every record."""

    def __init__(self, path: str | os.PathLike):
        self.file = open(path, "wb")
        self.file.write(struct.pack("<IHHiIII", PCAP_MAGIC, *PCAP_VERSION, 0, 0, PCAP_SNAPLEN, LINKTYPE_ETHERNET))
        self.file.flush()

    def write(self, frame: bytes, when: float | None = None) -> None:
        t = time.time() if when is None else when
        sec, usec = int(t), int((t - int(t)) * 1e6)
        data = frame[:PCAP_SNAPLEN]
        self.file.write(struct.pack("<IIII", sec, usec, len(data), len(frame)) + data)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def read_pcap(path: str | os.PathLike) -> list[bytes]:
    """The frames of a pcap file written by PcapWriter (or any little-endian microsecond pcap)."""
    with open(path, "rb") as f:
        raw = f.read()
    magic, _vmaj, _vmin, _tz, _sig, _snap, _link = struct.unpack_from("<IHHiIII", raw, 0)
    if magic != PCAP_MAGIC:
        raise ValueError(f"{path}: not a little-endian pcap file (magic {magic:#x})")
    frames, pos = [], 24
    while pos + 16 <= len(raw):
        _sec, _usec, incl, _orig = struct.unpack_from("<IIII", raw, pos)
        frames.append(raw[pos + 16:pos + 16 + incl])
        pos += 16 + incl
    return frames


class PeerBackend:
    """The monitor's built-in network peer: records every transmitted frame (in memory and optionally to a pcap
    file) and injects frames into the NIC. Frames injected before a receiver is attached, or refused by it, wait
    in `pending` until `poll()`."""

    def __init__(self, pcap_path: str | os.PathLike | None = None, rx_pcap_path: str | os.PathLike | None = None):
        self.sent: list[bytes] = []
        self.pending: collections.deque[bytes] = collections.deque()
        self.receiver: Receiver | None = None
        self.pcap = PcapWriter(pcap_path) if pcap_path is not None else None
        self.rx_pcap = PcapWriter(rx_pcap_path) if rx_pcap_path is not None else None
        self.on_send: Callable[[bytes], None] | None = None   # e.g. an echo responder in a test

    def attach(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def send(self, frame: bytes) -> None:
        self.sent.append(bytes(frame))
        if self.pcap is not None:
            self.pcap.write(frame)
        if self.on_send is not None:
            self.on_send(bytes(frame))

    def inject(self, frame: bytes) -> bool:
        """Offer frame to the NIC now; True if it took it (a refused frame is dropped, as on a wire)."""
        if self.rx_pcap is not None:
            self.rx_pcap.write(frame)
        if self.receiver is None:
            self.pending.append(bytes(frame))
            return False
        return bool(self.receiver(bytes(frame)))

    def queue(self, frame: bytes) -> None:
        """Hold frame until the next poll() (the monitor delivers between vCPU runs)."""
        self.pending.append(bytes(frame))

    def poll(self) -> int:
        """Deliver the held frames; returns how many the NIC accepted."""
        n = 0
        while self.pending and self.receiver is not None:
            n += bool(self.receiver(self.pending.popleft()))
        return n

    def close(self) -> None:
        for w in (self.pcap, self.rx_pcap):
            if w is not None:
                w.close()


# linux/if_tun.h
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


class TapBackend:
    """A Linux TAP interface: transmitted frames are written to it, frames read from it go to the NIC.
    The monitor includes fileno() in its poll set and calls poll() when it is readable."""

    def __init__(self, ifname: str = "pvgen0"):
        import fcntl

        try:
            self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError as e:
            raise EnvironmentMissing("/dev/net/tun", f"cannot open it ({e.strerror}); load the tun module") from None
        try:
            fcntl.ioctl(self.fd, TUNSETIFF, struct.pack("16sH", ifname.encode(), IFF_TAP | IFF_NO_PI))
        except OSError as e:
            os.close(self.fd)
            raise EnvironmentMissing(f"TAP interface {ifname}",
                                     f"TUNSETIFF failed ({e.strerror}); run with CAP_NET_ADMIN") from None
        self.ifname = ifname
        self.receiver: Receiver | None = None

    def fileno(self) -> int:
        return self.fd

    def attach(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def send(self, frame: bytes) -> None:
        try:
            os.write(self.fd, frame)
        except OSError:
            pass   # interface down or queue full: the frame is lost, as on a wire

    def poll(self) -> int:
        n = 0
        while True:
            try:
                frame = os.read(self.fd, 65536)
            except BlockingIOError:
                return n
            except OSError:
                return n
            if not frame:
                return n
            if self.receiver is not None:
                n += bool(self.receiver(frame))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
