"""The other end of QEMU's `-netdev socket,udp=…`: a UDP socket on 127.0.0.1 that records the guest's frames and
sends it the seed's frames, one at a time, paced by the NIC's own acknowledgements in QEMU's trace.

QEMU sends each frame the guest transmits as one datagram to the peer's port and takes each datagram it receives on
its own port as one frame. Per variant the guest transmits its OPS frames, then a READY frame (pvqwl.c); the peer
then sends the OPS receive frames, each after the previous one was acknowledged (the driver's ISR write of PRX, as
the bench's RxPacer does in our monitor) and the NIC has been idle for a moment, so each frame costs the driver one
interrupt whatever the timing of the host: the accesses per frame are the same from run to run."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

from pvgen.bench import workload as wl
from pvgen.qemu.trace import TraceCounter

READY_ETHERTYPE = 0x88B6
SETTLE_S = 0.004           # the NIC idle this long after an acknowledgement: the interrupt handler is done
FRAME_TIMEOUT_S = 60.0


def free_udp_ports(n: int) -> list[int]:
    """n distinct free UDP ports on 127.0.0.1 (bound and released: QEMU binds its own right after)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class NetPeer:
    """Records what the guest sends, per variant (cut at READY frames); sends `rx` frames after each READY."""

    rx: list[bytes]
    trace: TraceCounter
    port: int = 0              # ours (QEMU's udp=)
    qemu_port: int = 0         # QEMU's (localaddr=)
    sent: list[list[bytes]] = field(default_factory=lambda: [[]])   # per variant: the guest's workload frames
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.port:
            self.port, self.qemu_port = free_udp_ports(2)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pvgen-qemu-netpeer", daemon=True)

    def netdev(self, ident: str) -> str:
        return f"socket,id={ident},udp=127.0.0.1:{self.port},localaddr=127.0.0.1:{self.qemu_port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self._sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            etype = int.from_bytes(data[12:14], "big") if len(data) >= 14 else 0
            if etype == READY_ETHERTYPE:
                self._send_rx()
                self.sent.append([])
            elif etype == wl.ETHERTYPE:
                self.sent[-1].append(data)

    def _send_rx(self) -> None:
        """The receive frames once the guest marked the receive phase, each after the NIC acknowledged the previous
        one and went quiet."""
        base = self.trace.prx_acks
        for i, frame in enumerate(self.rx):
            deadline = time.monotonic() + FRAME_TIMEOUT_S
            while (self.trace.last_mark != wl.MARK_RX_START or self.trace.prx_acks < base + i
                   or self.trace.quiet_for() < SETTLE_S) and not self._stop.is_set():
                if time.monotonic() > deadline:
                    self.errors.append(f"receive frame {i}: the guest acknowledged {self.trace.prx_acks - base} "
                                       f"frames in {FRAME_TIMEOUT_S:.0f} s")
                    return
                time.sleep(0.001)
            self._sock.sendto(frame, ("127.0.0.1", self.qemu_port))
