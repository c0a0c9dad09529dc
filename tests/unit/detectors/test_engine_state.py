"""detectors.engine_state: an Engine checkpointed as plain JSON and restored into a fresh one
goes on exactly as the original would have: the same anomalies (ids and all) and window reports,
whatever point of the stream the checkpoint was taken at."""

from __future__ import annotations

import json
from typing import Any

import pytest

from detectors.baseline import Baseline
from detectors.engine import Engine, EngineOptions, Result
from detectors.engine_state import restore, snapshot
from detectors.records import decode_record
from streams.traffic import Injection, serving_records
from tests.unit.detectors.conftest import traffic_baseline

T0 = 1_795_860_000.0
OPTIONS = EngineOptions(window_seconds=60, min_count=100)


def feed(engine: Engine, raws: list[dict[str, Any]]) -> Result:
    result = Result()
    for raw in raws:
        result.extend(engine.process(decode_record(raw)))
    return result


def summary(result: Result) -> tuple[list[tuple[str, str]], list[tuple[float, int]]]:
    return (
        [(a.id, a.message) for a in result.anomalies],
        [(r.start, r.count) for r in result.reports],
    )


@pytest.fixture(scope="module")
def stream() -> list[dict[str, Any]]:
    surge = [Injection("category_surge", 3_000), Injection("mean_shift", 3_000)]
    return list(serving_records(6_000, rate=20.0, start=T0, injections=surge))


@pytest.mark.parametrize("cut", [1, 1_234, 2_999, 3_600, 5_999])
def test_a_restored_engine_goes_on_as_the_original(
    ctr_baseline: Baseline, stream: list[dict[str, Any]], cut: int
) -> None:
    original = Engine([ctr_baseline], OPTIONS)
    feed(original, stream[:cut])
    plain = json.loads(json.dumps(snapshot(original)))  # through text, as it is stored
    restored = Engine([ctr_baseline], OPTIONS)
    assert restore(restored, plain) == []
    expected = feed(original, stream[cut:])
    expected.extend(original.close_all())
    got = feed(restored, stream[cut:])
    got.extend(restored.close_all())
    assert summary(got) == summary(expected)
    assert expected.anomalies, "the surge is caught after the checkpoint"


def test_a_snapshot_of_another_format_or_baseline_starts_fresh_and_says_so(
    ctr_baseline: Baseline, stream: list[dict[str, Any]]
) -> None:
    original = Engine([ctr_baseline], OPTIONS)
    feed(original, stream[:500])
    plain = json.loads(json.dumps(snapshot(original)))
    assert restore(Engine([ctr_baseline], OPTIONS), {"v": 99}) == [
        "engine state version 99 is not 1: starting fresh"
    ]
    other = Engine([traffic_baseline(model="fraud")], OPTIONS)
    notes = restore(other, plain)
    assert other.states == {} and "no baseline for it now" in notes[0]
    plain["models"][0]["windows"] = "garbage"
    damaged = Engine([ctr_baseline], OPTIONS)
    assert "damaged model state" in restore(damaged, plain)[0]
    assert damaged.states == {}
