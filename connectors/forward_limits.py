"""What one forward connection may cost: deadlines and byte bounds, with their defaults.

Held apart from the server so the settings, the docs and the tests read one list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.forward import DEFAULT_BATCH_EVENTS


@dataclass(frozen=True, slots=True)
class ForwardLimits:
    """Deadlines (seconds) and bounds for every connection of a ForwardServer.

    - idle: a connection with no frame in progress is closed after this long without a byte
      (fluent-logger reconnects on its next emit);
    - read: inside a frame (or the handshake), the next bytes must come within this long;
    - frame: a frame must be complete this long after its first byte, however fast its
      bytes trickle in;
    - max_buffered_bytes: the bytes of incomplete frames held across all connections; the
      connection that passes it is closed;
    - batch_events: entries decoded and handed on per turn of the event loop.
    """

    idle_timeout_seconds: float = 300.0
    read_timeout_seconds: float = 30.0
    frame_deadline_seconds: float = 60.0
    max_buffered_bytes: int = 64 * 1024 * 1024
    batch_events: int = field(default=DEFAULT_BATCH_EVENTS)

    def __post_init__(self) -> None:
        for name in (
            "idle_timeout_seconds",
            "read_timeout_seconds",
            "frame_deadline_seconds",
            "max_buffered_bytes",
            "batch_events",
        ):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
