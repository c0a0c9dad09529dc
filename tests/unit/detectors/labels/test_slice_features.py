"""detectors.labels.slice_features: the worker's per-slice feature windows, closed by a watermark,
reach the embedded Engine's slice anomalies (same ids), survive a restart through plain
data, and count what comes after its window closed as late."""

from __future__ import annotations

import json
from typing import Any

import pytest

from detectors.anomaly import Anomaly
from detectors.baseline.reference import Baseline
from detectors.baseline.schema import PREDICTION
from detectors.engine import Engine, EngineOptions
from detectors.labels.monitor import LabelOptions
from detectors.labels.slice_features import SliceFeatures, from_plain, to_plain
from detectors.labels.slice_windows import observed
from detectors.labels.slices import SliceKeys
from detectors.records import decode_record
from streams.simulation.traffic import SliceSurge, serving_records

T0 = 1_795_860_000.0
OPTIONS = EngineOptions(window_seconds=60, min_count=200)
LABELS = LabelOptions(window_seconds=60, wait_seconds=60, slice_key="category")


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    surge = SliceSurge(at=12_000, key="category", value="jeans", share=0.6)
    return list(serving_records(24_000, rate=100, start=T0, seed=5, slices=True, slice_surge=surge))


def engine_slice_anomalies(baseline: Baseline, rows: list[dict[str, Any]]) -> list[Anomaly]:
    engine = Engine([baseline], OPTIONS, LABELS)
    found = [a for row in rows for a in engine.process(decode_record(row)).anomalies]
    return [a for a in found if a.slice and a.kind == "drift"]


def run(baseline: Baseline, rows: list[dict[str, Any]], restart_every: int = 0) -> list[Anomaly]:
    """As the judge: one prediction at a time, the watermark at the newest event time."""
    keys = SliceKeys(LABELS.top_k)
    features = SliceFeatures(baseline, "category", OPTIONS, "ctr", "3")
    out: list[Anomaly] = []
    for i, row in enumerate(rows):
        record = decode_record(row)
        values = observed(baseline, {**record.features, PREDICTION: record.prediction})
        features.observe(record.ts, keys.label(record.slice.get("category")), values)
        out += features.close_until(record.ts)
        if restart_every and i % restart_every == 0:
            plain = json.loads(json.dumps(to_plain(features)))  # the changelog
            features = SliceFeatures(baseline, "category", OPTIONS, "ctr", "3")
            assert from_plain(features, plain) == []
    return out


def test_a_slice_local_change_gives_the_engines_slice_anomalies(
    ctr_baseline: Baseline, rows: list[dict[str, Any]]
) -> None:
    expected = engine_slice_anomalies(ctr_baseline, rows)
    assert expected and {a.slice["category"] for a in expected} == {"jeans"}
    got = run(ctr_baseline, rows)
    assert [a.id for a in got] == [a.id for a in expected]
    assert [a.message for a in got] == [a.message for a in expected]


def test_restored_from_plain_data_it_reaches_the_same_verdicts(
    ctr_baseline: Baseline, rows: list[dict[str, Any]]
) -> None:
    assert [a.id for a in run(ctr_baseline, rows, restart_every=1_777)] == [
        a.id for a in run(ctr_baseline, rows)
    ]


def test_a_prediction_older_than_a_closed_window_is_counted_late(ctr_baseline: Baseline) -> None:
    features = SliceFeatures(ctr_baseline, "category", OPTIONS, "ctr", "3")
    features.observe(T0 + 5, "jeans", {"price": 10.0})
    features.close_until(T0 + 130)  # closes the window of T0 and the empty one after it
    assert features.open == {}
    features.observe(T0 + 100, "jeans", {"price": 10.0})  # its window is closed: late
    features.observe(T0 + 125, "jeans", {"price": 10.0})  # the window of T0 + 120 is open
    assert features.late == 1
    assert [(start, w.count) for start, w in features.open.items()] == [(T0 + 120, 1)]


def test_state_of_another_slice_key_starts_fresh(ctr_baseline: Baseline) -> None:
    features = SliceFeatures(ctr_baseline, "category", OPTIONS, "ctr", "3")
    features.observe(T0, "jeans", {"price": 10.0})
    other = SliceFeatures(ctr_baseline, "brand", OPTIONS, "ctr", "3")
    notes = from_plain(other, to_plain(features))
    assert notes and "key 'category'" in notes[0]
    assert other.open == {}
