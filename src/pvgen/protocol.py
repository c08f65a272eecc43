"""The pvgen batch protocol: the single source of truth shared by the guest runtime and the monitor.

This first version declares only the port classes; the batch page layout is added by the runtime work
(issue 3) and the C header is generated from this module.
"""

from __future__ import annotations

import enum


class PortClass(enum.IntEnum):
    """How the guest runtime may treat one direction (read or write) of one port (DESIGN.md, batch protocol)."""

    STRICT = 0    # flush the queue, then execute the real instruction (every unknown port)
    POSTED = 1    # write: may wait in the queue
    DOORBELL = 2  # write: queued, then the whole queue is flushed in one exit
    SHADOW = 3    # read: served from the shadow area that the monitor keeps current
    FIFO = 4      # read: served from the input queue; an empty queue is refilled in one exit
