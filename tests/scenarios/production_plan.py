"""What the production-shaped suite runs: one table of stationary streams, one of changes, one
of self-check windows. The tests and ``python -m tests.scenarios.production --table`` read the
same plan, so the table in docs/scenarios.md is the suite's own measurement.

Sized by the engine's speed on these records (about 23,000 events/s on one core, records made
on the fly included): ten million stationary events take about seven minutes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tests.scenarios.production import CHANGES, SERVING_START, Stream
from tests.scenarios.production_runs import Setup

HOUR = 3_600.0
SERVING_TRAINING = (1001, 28, 10.0)  # seed, days, seconds a row: 241,920 rows
SELF_CHECK_TRAINING = (1002, 28, 30.0)  # 80,640 rows, checked against its own baseline
# Diagnostic only: LOGDRIFT_SCENARIOS_TRAINING_1E300=0 leaves the one 1e300 out of both
# training files (the -1e12 values stay), to measure the rest when a 1e300 breaks the baseline.
TRAINING_1E300 = os.environ.get("LOGDRIFT_SCENARIOS_TRAINING_1E300", "1") != "0"
SELF_CHECK_WINDOWS = {  # label -> window seconds, in the training file's own event time
    "1 minute": 60.0,
    "10 minutes": 600.0,
    "1 hour": HOUR,
    "1 day": 24 * HOUR,
    "1 week": 7 * 24 * HOUR,
}


@dataclass(frozen=True, slots=True)
class StationaryKind:
    """Streams with nothing changed: an arrival process, a rate, a window, seeds."""

    name: str
    arrival: str
    rate: float
    setup: Setup
    seeds: tuple[int, ...]
    events: int

    def streams(self) -> list[Stream]:
        # Each seed starts at another hour of the day, so the daily cycle is met at every phase.
        return [
            Stream(s, self.events, self.rate, self.arrival, SERVING_START + (s % 24) * HOUR)
            for s in self.seeds
        ]


STATIONARY = (
    StationaryKind("500/s steady, 60 s", "steady", 500, Setup(60), (21, 22, 23), 1_200_000),
    StationaryKind("500/s bursty, 60 s", "bursty", 500, Setup(60), (31, 32, 33), 1_200_000),
    StationaryKind("2000/s bursty, 10 s", "bursty", 2000, Setup(10), (41,), 1_000_000),
    StationaryKind("500/s steady, 1 s (carried)", "steady", 500, Setup(1), (51,), 800_000),
    StationaryKind("50/s steady, 10 min", "steady", 50, Setup(600), (61,), 600_000),
    StationaryKind("5/s bursty, 1 h", "bursty", 5, Setup(3600), (71,), 400_000),
)
REQUIRED_STATIONARY_EVENTS = 10_000_000

# Every change at record 15,000 (30 s in, mid-window), runs of 60,000 records at 500/s.
CHANGE_AT, CHANGE_EVENTS = 15_000, 60_000
CHANGE_SEEDS = (101, 102, 103)
IID_SHIFT_SEEDS = (101, 102, 103, 104, 105)  # the 500-event budget is a median over these
IID_SHIFT_BUDGET = 500  # events


def change_seeds(change: str) -> tuple[int, ...]:
    return IID_SHIFT_SEEDS if change == "iid_mean_shift" else CHANGE_SEEDS


def change_stream(change: str, seed: int) -> Stream:
    start = SERVING_START + (seed % 24) * HOUR
    return Stream(seed, CHANGE_EVENTS, 500, "steady", start, change, CHANGE_AT)


CHANGE_RUNS = [(c, s) for c in CHANGES for s in change_seeds(c)]
