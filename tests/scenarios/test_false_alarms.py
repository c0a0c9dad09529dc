"""No anomaly at all on stationary traffic: over two million events, across rates and window
sizes from 20 records a window (where the sample-size-aware thresholds are widest) to 60,000
(where the effect-size floors govern)."""

from __future__ import annotations

import pytest

from tests.scenarios.scoring import STATIONARY, Scoreboard, Setup

# (setup, seeds, events per seed)
PLAN: tuple[tuple[Setup, tuple[int, ...], int], ...] = (
    (Setup(rate=100, window_seconds=60, min_count=200), (21, 22), 300_000),  # the everyday case
    (Setup(rate=20, window_seconds=60, min_count=200), (23, 24), 200_000),
    # 100 records a period: every window carries over once to reach min_count
    (Setup(rate=20, window_seconds=5, min_count=200), (25, 26), 200_000),
    (Setup(rate=50, window_seconds=1, min_count=30), (27, 28), 200_000),
    (Setup(rate=20, window_seconds=1, min_count=10), (29,), 100_000),
    (Setup(rate=1000, window_seconds=60, min_count=200), (30,), 200_000),
)
RUNS = [(setup, seed, events) for setup, seeds, events in PLAN for seed in seeds]
REQUIRED_EVENTS = 2_000_000


def test_the_plan_covers_two_million_stationary_events() -> None:
    assert sum(events for _, _, events in RUNS) >= REQUIRED_EVENTS


@pytest.mark.parametrize(
    ("setup", "seed", "events"), RUNS, ids=[f"{s.id}-seed{seed}" for s, seed, _ in RUNS]
)
def test_stationary_traffic_raises_no_anomaly(
    scoreboard: Scoreboard, setup: Setup, seed: int, events: int
) -> None:
    run = scoreboard.run(STATIONARY, seed, events=events, setup=setup)
    assert run.windows > 0
    assert not run.false_alarms, run.describe(run.false_alarms)
