"""Event time against the receiving clock: a record stamped far ahead (a host clock an hour
fast, a year-2100 typo) would open a future window every later record falls "late" into, and
one stamped long ago (``ts: 0``, 1970) says nothing about today's traffic. Both are refused as
dead letters with a reason of their own. The clock comes in as an argument: no I/O here.

>>> limits = EventTimeLimits(future_seconds=300.0, max_age_seconds=86_400.0)
>>> check_event_time(1_000_000.0, 1_000_000.0, limits) is None
True
>>> check_event_time(4_102_444_800.0, 1_000_000.0, limits).code
'future_timestamp'
>>> check_event_time(0.0, 1_000_000.0, limits).code
'too_old'
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors.anomaly import iso
from detectors.records import DecodeError

FUTURE = "future_timestamp"
TOO_OLD = "too_old"


@dataclass(frozen=True, slots=True)
class EventTimeLimits:
    future_seconds: float = 300.0  # tolerated lead of a sender's clock over ours
    max_age_seconds: float = 365 * 86_400.0  # the horizon: older is not today's traffic

    def __post_init__(self) -> None:
        if not self.future_seconds >= 0:
            raise ValueError(f"future_seconds must be >= 0, got {self.future_seconds}")
        if not self.max_age_seconds > 0:
            raise ValueError(f"max_age_seconds must be positive, got {self.max_age_seconds}")


class EventTimeError(DecodeError):
    """A record whose event time is out of bounds; ``code`` is its dead-letter reason."""

    def __init__(self, code: str, problem: str) -> None:
        super().__init__("ts", f"{code} ({problem})")
        self.code = code


def _when(ts: float) -> str:
    try:
        return iso(ts)
    except (OverflowError, ValueError, OSError):  # beyond what a date can say
        return f"{ts:g}"


def check_event_time(ts: float, now: float, limits: EventTimeLimits) -> EventTimeError | None:
    """The error for a record stamped ``ts`` received at ``now``, or None when it is in bounds."""
    if ts > now + limits.future_seconds:
        return EventTimeError(
            FUTURE,
            f"{_when(ts)} is {ts - now:,.0f} s ahead of the receiving clock {iso(now)}; "
            f"tolerated: {limits.future_seconds:,.0f} s",
        )
    if ts < now - limits.max_age_seconds:
        return EventTimeError(
            TOO_OLD,
            f"{_when(ts)} is {now - ts:,.0f} s older than the receiving clock {iso(now)}; "
            f"the horizon is {limits.max_age_seconds:,.0f} s",
        )
    return None
