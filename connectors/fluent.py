"""The sending side of the forward protocol: a thin wrapper around fluent-logger.

Holds `FluentClient`, which emits records with nanosecond EventTime through the
real `fluent.sender.FluentSender` and turns its silent failures into exceptions.
It is synchronous and blocking, like the sender it wraps: from asyncio code,
call it through `asyncio.to_thread`.
"""

from __future__ import annotations

import logging
import math
from types import TracebackType
from typing import Any

from fluent.sender import EventTime, FluentSender

logger = logging.getLogger(__name__)

# fluent-logger keeps unsent bytes and retries them with the next emit; past
# this size it drops them (and tells our overflow handler).
SENDER_BUFFER_BYTES = 1024 * 1024
_MAX_EVENT_SECONDS = 2**32  # EventTime packs seconds as uint32


class FluentClient:
    """Emits records as `<tag_prefix>.<label>` over the forward protocol (Message mode).

    fluent-logger sends Message mode without `option.chunk`, so there is no ack:
    a successful `emit` means the bytes were written to the socket. A failed
    emit raises ConnectionError but its record stays buffered (up to
    SENDER_BUFFER_BYTES) and goes out with the next successful emit or `close`,
    so do not re-emit it: that would send it twice.
    """

    def __init__(
        self, host: str, port: int, tag_prefix: str = "logdrift", timeout: float = 3.0
    ) -> None:
        self._sender = FluentSender(
            tag_prefix,
            host=host,
            port=port,
            timeout=timeout,
            bufmax=SENDER_BUFFER_BYTES,
            nanosecond_precision=True,
            buffer_overflow_handler=self._on_overflow,
            # By default a record msgpack cannot pack is replaced by an error
            # record with a traceback and sent anyway; raise instead.
            forward_packet_error=False,
        )

    def emit(self, label: str, record: dict[str, Any], time: float) -> None:
        """Send one record stamped `time` (seconds since the epoch).

        Raises ValueError for a time EventTime cannot hold, TypeError for a
        record msgpack cannot pack, ConnectionError when sending fails.
        """
        event_time = _event_time(time)
        # last_error is thread-local and sticky: clear it so only this emit's counts.
        self._sender.clear_last_error()
        if self._sender.emit_with_time(label, event_time, record):
            return
        error = self._sender.last_error
        self._sender.clear_last_error()
        if error is None:  # the sender returns False without an error once closed
            raise ConnectionError("FluentClient is closed")
        raise ConnectionError(
            f"fluent-logger could not send to {self._sender.host}:{self._sender.port}: {error}"
        ) from error

    def close(self) -> None:
        """Flush what is buffered (best effort) and close the socket."""
        self._sender.close()

    def __enter__(self) -> FluentClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @staticmethod
    def _on_overflow(pending: bytes) -> None:
        logger.warning("fluent: dropped %d buffered bytes the server never took", len(pending))


def _event_time(time: float) -> EventTime:
    """Exact nanoseconds from a float: fluent-logger's own float path truncates."""
    if not (math.isfinite(time) and 0 <= time < _MAX_EVENT_SECONDS):
        raise ValueError(f"time must be finite and in [0, 2**32) seconds, got {time!r}")
    seconds = math.floor(time)
    # time - seconds is exact in binary; rounding (not truncating) then gives the
    # nanosecond whose nearest float is `time` again on the receiving side.
    nanos = round((time - seconds) * 10**9)
    if nanos == 10**9:
        seconds, nanos = seconds + 1, 0
    if seconds >= _MAX_EVENT_SECONDS:
        raise ValueError(f"time must be in [0, 2**32) seconds, got {time!r}")
    return EventTime(seconds, nanos)
