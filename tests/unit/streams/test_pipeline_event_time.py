"""The embedded Pipeline checks event time against the receiving clock (issue 14 rows 6, 7): a
record stamped in 2100 is dead-lettered as future_timestamp instead of opening a window every
later record falls late into, so a surge after it is caught while running; ``ts: 0`` is too_old."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.forward import ForwardEvent
from connectors.store import AnomalyStore
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions
from detectors.event_time import EventTimeLimits
from detectors.records import FieldMapping
from streams.embedded.runner import Pipeline
from streams.simulation.traffic import Injection, serving_records
from tests.unit.detectors.conftest import traffic_baseline

T0 = 1_795_860_000.0
RATE = 50.0
N = 12_000
SURGE_AT = 6_000
YEAR_2100 = 4_102_444_800.0
NOW = T0 + N / RATE + 1.0  # the receiving clock: just after the last record's event time


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return traffic_baseline()


def events(raws: list[dict[str, Any]]) -> list[ForwardEvent]:
    return [ForwardEvent("serving", T0, r) for r in raws]  # the records carry their own ts


def run(baseline: Baseline, tmp_path: Path, limits: EventTimeLimits | None) -> tuple[Pipeline, int]:
    raws = list(
        serving_records(N, rate=RATE, start=T0, injections=[Injection("category_surge", SURGE_AT)])
    )
    raws.insert(SURGE_AT - 1_000, {**raws[0], "ts": YEAR_2100})
    raws.insert(100, {**raws[0], "ts": 0})
    engine = Engine([baseline], EngineOptions(window_seconds=60, min_count=200))
    p = Pipeline(
        engine,
        AnomalyStore(tmp_path / "a.db"),
        FieldMapping(),
        emit=lambda line: None,
        event_time=limits,
        clock=lambda: NOW,
    )
    caught = 0
    for i in range(0, len(raws), 500):
        result = p.handle(events(raws[i : i + 500]))
        # The window's verdict (a per-event rate test fires either way).
        caught += sum(
            a.feature == "device" and a.detector == "l_infinity" for a in result.anomalies
        )
    return p, caught


def test_a_surge_after_a_year_2100_record_is_caught_while_running(
    baseline: Baseline, tmp_path: Path
) -> None:
    p, caught = run(baseline, tmp_path, EventTimeLimits(300.0, 365 * 86_400.0))
    assert caught > 0, "the device surge was judged in its window before shutdown"
    assert p.stats.dead_by_reason == {"future_timestamp": 1, "too_old": 1}
    assert p.stats.records == N
    with p.store as s:
        letters = {d.reason.split("(")[0].strip(): d for d in s.dead_letters()}
    assert set(letters) == {"field 'ts': future_timestamp", "field 'ts': too_old"}
    assert "2100-01-01T00:00:00.000Z is" in letters["field 'ts': future_timestamp"].reason
    assert "1970-01-01T00:00:00.000Z is" in letters["field 'ts': too_old"].reason


def test_without_the_check_the_2100_record_holds_every_later_one_late(
    baseline: Baseline, tmp_path: Path
) -> None:
    # What issue 14 row 6 saw: nothing after the future record is judged while running.
    p, caught = run(baseline, tmp_path, None)
    assert caught == 0 and p.stats.dead_letters == 0
