"""How long integration tests wait, and how: always for progress (a log line, a counter, an
offset, a document), never for a fixed time, with bounds generous enough for a busy machine.

A bound is only ever reached by a failing test, so it costs a passing one nothing; the bounds
in the tests were measured on a quiet machine, and one whose other core runs a CPU-bound job
needs about three times as long. ``LOGDRIFT_TEST_PATIENCE`` scales them all (a slower CI box:
raise it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

PATIENCE = float(os.environ.get("LOGDRIFT_TEST_PATIENCE", "3"))


def bound(seconds: float) -> float:
    """A wait measured on a quiet machine, stretched for a busy one."""
    return seconds * PATIENCE


def wait_until(
    condition: Callable[[], object], timeout: float, what: str, step: float = 0.5
) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``bound(timeout)``."""
    deadline = time.monotonic() + bound(timeout)
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {bound(timeout):.0f} s waiting for {what}")
        time.sleep(step)
