"""Which deadline a forward connection missed: idle, read, partial frame, handshake."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from connectors.forward_connection import Connection, overdue
from connectors.forward_decoder import FrameDecoder
from connectors.forward_limits import ForwardLimits

LIMITS = ForwardLimits(idle_timeout_seconds=300, read_timeout_seconds=30, frame_deadline_seconds=60)


def connection(**state: Any) -> Connection:
    conn = Connection(cast(asyncio.Task[None], None), FrameDecoder(), opened=0.0, last_read=0.0)
    for name, value in state.items():
        setattr(conn, name, value)
    return conn


def test_an_idle_connection_may_stay_until_the_idle_timeout() -> None:
    assert overdue(connection(), LIMITS, 299.0) is None
    missed = overdue(connection(), LIMITS, 301.0)
    assert missed is not None and missed[0] == "idle_timeout"


def test_inside_a_frame_the_next_bytes_are_due_within_the_read_timeout() -> None:
    conn = connection(frame_started=0.0)
    assert overdue(conn, LIMITS, 29.0) is None
    assert overdue(conn, LIMITS, 31.0) == (
        "read_timeout",
        "30 s passed; 0 bytes of a frame pending",
    )


def test_a_frame_trickling_in_is_cut_at_the_frame_deadline() -> None:
    conn = connection(frame_started=0.0, last_read=60.5)  # a byte just came
    missed = overdue(conn, LIMITS, 61.0)
    assert missed is not None and missed[0] == "frame_deadline"


def test_the_handshake_is_due_within_the_read_timeout() -> None:
    conn = connection(authenticated=False, last_read=29.0)
    missed = overdue(conn, LIMITS, 31.0)
    assert missed is not None and missed[0] == "handshake_timeout"


@pytest.mark.parametrize(
    "name",
    [
        "idle_timeout_seconds",
        "read_timeout_seconds",
        "frame_deadline_seconds",
        "max_buffered_bytes",
        "batch_events",
    ],
)
def test_limits_must_be_positive_and_the_error_names_the_limit(name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be positive"):
        ForwardLimits(**{name: 0})
