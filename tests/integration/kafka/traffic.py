"""Serving traffic for the worker tests: synthetic CTR records with event times RATE per
second, injected changes, and a tail far in the future that closes the last real window."""

from __future__ import annotations

import math
from typing import Any

from detectors.anomaly import Anomaly, iso
from streams.simulation.traffic import Injection, serving_records
from tests.integration.kafka.conftest import RATE, START, WINDOW_SECONDS, epoch

TAIL = 400


def rows_with_tail(
    n: int, injections: list[Injection], seed: int = 5
) -> tuple[list[dict[str, Any]], float]:
    """n records, then TAIL more ten windows later; returns them and the tail's first ts."""
    rows = list(serving_records(n + TAIL, rate=RATE, start=START, injections=injections, seed=seed))
    last = epoch(rows[n - 1])
    tail_start = (math.floor(last / WINDOW_SECONDS) + 10) * WINDOW_SECONDS
    for i, row in enumerate(rows[n:]):
        row["ts"] = iso(tail_start + i / RATE)
    return rows, tail_start


def before(anomalies: list[Anomaly], tail_start: float) -> set[str]:
    """Ids of anomalies about the real records (the tail only closes their last window)."""
    return {a.id for a in anomalies if a.timestamp < tail_start}


def delay(anomalies: list[Anomaly], feature: str, change_at: int) -> int:
    """Events from the change to the first change-detector alarm on ``feature``."""
    fired = [
        round((a.timestamp - START) * RATE) - change_at
        for a in anomalies
        if a.feature == feature
        and a.detector in ("page_hinkley", "adwin")
        and round((a.timestamp - START) * RATE) >= change_at
    ]
    assert fired, f"no change alarm on {feature}"
    return min(fired)
