"""detectors.engine_state: an Engine checkpointed as plain JSON and restored into a fresh one
goes on exactly as the original would have: the same anomalies (ids and all) and window reports,
whatever point of the stream the checkpoint was taken at."""

from __future__ import annotations

import json
from typing import Any

import pytest

from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions, Result
from detectors.engine_state import VERSION, restore, snapshot
from detectors.labels.monitor import LabelOptions
from detectors.records import decode_feedback, decode_record
from streams.simulation.traffic import (
    Injection,
    LabelFlip,
    feedback_records,
    interleave,
    serving_records,
)
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
        f"engine state version 99 is not {VERSION}: starting fresh"
    ]
    other = Engine([traffic_baseline(model="fraud")], OPTIONS)
    notes = restore(other, plain)
    assert other.states == {} and "no baseline for it now" in notes[0]
    plain["models"][0]["tracks"] = "garbage"
    damaged = Engine([ctr_baseline], OPTIONS)
    assert "damaged model state" in restore(damaged, plain)[0]
    assert damaged.states == {}


LABELS = LabelOptions(window_seconds=60, wait_seconds=0, slice_key="category", top_k=4)


def feed_all(engine: Engine, raws: list[dict[str, Any]]) -> Result:
    result = Result()
    for raw in raws:
        if "features" in raw:
            result.extend(engine.process(decode_record(raw)))
        else:
            result.extend(engine.feedback(decode_feedback(raw)))
    return result


def test_with_labels_the_monitor_and_slice_windows_go_on_as_well(ctr_baseline: Baseline) -> None:
    # The checkpoint falls after the predictions it would still join: the pending ones are the
    # one thing not kept, so the labels of later predictions only are fed after it.
    rows = list(serving_records(4_000, rate=10.0, start=T0, slices=True))
    mixed = list(
        interleave(rows, feedback_records(rows, delay=lambda rng: 0.05, flips=[LabelFlip(2_000)]))
    )
    cut = next(
        i
        for i, r in enumerate(mixed)
        if "features" not in r and r["request_id"] == rows[1_500]["request_id"]
    )
    original = Engine([ctr_baseline], OPTIONS, LABELS)
    feed_all(original, mixed[: cut + 1])
    plain = json.loads(json.dumps(snapshot(original)))
    restored = Engine([ctr_baseline], OPTIONS, LABELS)
    assert restore(restored, plain) == []
    later = [
        r
        for r in mixed[cut + 1 :]
        if "features" in r
        or r["request_id"] in {x["request_id"] for x in mixed[cut + 1 :] if "features" in x}
    ]
    expected, got = feed_all(original, later), feed_all(restored, later)
    expected.extend(original.close_all())
    got.extend(restored.close_all())
    assert summary(got) == summary(expected)
    assert [r.line() for r in got.labels] == [r.line() for r in expected.labels]
    assert expected.labels, "windows of labels were judged after the checkpoint"
