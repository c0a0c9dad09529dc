"""One forward connection's state and counters, and which deadline it missed, if any.

Pure bookkeeping, no sockets: the server (connectors.forward_server) reads and writes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from connectors.forward_decoder import FrameDecoder
from connectors.forward_limits import ForwardLimits


@dataclass(slots=True)
class ForwardStats:
    """Counters since start; `rejected` counts closed connections by reason, `bad_entries`
    the entries dead-lettered (or, without a bad-entry handler, logged) by reason."""

    connections_total: int = 0
    connections_open: int = 0
    messages: int = 0
    events: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    bad_entries: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1


@dataclass(eq=False, slots=True)
class Connection:
    task: asyncio.Task[None]
    decoder: FrameDecoder
    opened: float
    last_read: float
    frame_started: float | None = None  # first byte of the frame in progress
    authenticated: bool = True
    # True while a frame is in the handler or its ack is being written:
    # stop() lets that finish instead of cancelling it.
    busy: bool = False
    # Set by stop(): finish what the peer already sent, then close once it goes quiet.
    draining: bool = False
    stopping: bool = False


def overdue(conn: Connection, limits: ForwardLimits, now: float) -> tuple[str, str] | None:
    """The deadline `conn` missed at `now` (reason, detail), or None."""
    quiet = now - conn.last_read
    if not conn.authenticated and now - conn.opened > limits.read_timeout_seconds:
        reason, limit = "handshake_timeout", limits.read_timeout_seconds
    elif conn.frame_started is not None and quiet > limits.read_timeout_seconds:
        reason, limit = "read_timeout", limits.read_timeout_seconds
    elif conn.frame_started is not None and (
        now - conn.frame_started > limits.frame_deadline_seconds
    ):
        reason, limit = "frame_deadline", limits.frame_deadline_seconds
    elif conn.frame_started is None and quiet > limits.idle_timeout_seconds:
        reason, limit = "idle_timeout", limits.idle_timeout_seconds
    else:
        return None
    return reason, f"{limit:g} s passed; {conn.decoder.pending_bytes} bytes of a frame pending"
