"""The embedded Pipeline with labels on: a record with a label and no features is feedback,
joined to its prediction; a bad feedback record is a dead letter with its reason; judged label
windows print one line each."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.forward import ForwardEvent
from connectors.store import AnomalyStore
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions
from detectors.labels.monitor import LabelOptions
from detectors.records import FieldMapping
from streams.embedded.runner import Pipeline
from tests.unit.detectors.conftest import traffic_baseline

T0 = 1_795_860_000.0
LABELS = LabelOptions(window_seconds=60, wait_seconds=0, slice_key="category")


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return traffic_baseline()


def prediction(i: int) -> ForwardEvent:
    record = {
        "request_id": f"r{i}",
        "model": "ctr",
        "features": {"price": 20.0, "age": 40, "score": 0.6, "country": "US", "device": "ios"},
        "prediction": 0.8,
        "slice": {"category": "mens_dress_shoes"},
    }
    return ForwardEvent("serving", T0 + i, record)


def label(i: int, value: object = 1, **extra: object) -> ForwardEvent:
    return ForwardEvent("feedback", T0 + i + 30, {"request_id": f"r{i}", "label": value, **extra})


def pipeline(baseline: Baseline, tmp_path: Path, lines: list[str]) -> Pipeline:
    engine = Engine([baseline], EngineOptions(window_seconds=60, min_count=1), LABELS)
    return Pipeline(engine, AnomalyStore(tmp_path / "a.db"), FieldMapping(), emit=lines.append)


def test_feedback_joins_its_prediction_and_a_judged_window_prints_a_line(
    baseline: Baseline, tmp_path: Path
) -> None:
    lines: list[str] = []
    p = pipeline(baseline, tmp_path, lines)
    p.handle([prediction(i) for i in range(20)])
    p.handle([label(i, i % 4 != 0) for i in range(20)])
    p.publish(p.engine.close_all())
    assert (p.stats.records, p.stats.labels, p.stats.dead_letters) == (20, 20, 0)
    assert p.engine.labels is not None and p.engine.labels.pending.stats.joined == 20
    (line,) = [x for x in lines if " labels ctr " in x]
    assert "20 of 20 labelled" in line and "accuracy 0.750" in line and "p50 30 s" in line


def test_a_pause_in_traffic_judges_feature_windows_and_leaves_windows_of_labels_to_their_labels(
    baseline: Baseline, tmp_path: Path
) -> None:
    lines: list[str] = []
    p = pipeline(baseline, tmp_path, lines)
    p.handle([prediction(i) for i in range(20)])
    p.publish(p.engine.close_until(float("inf")))  # what the runner does when idle
    assert [x for x in lines if " window ctr " in x] and not [x for x in lines if " labels " in x]
    p.handle([label(i) for i in range(20)])  # the labels come after the pause
    p.publish(p.engine.close_all())
    (line,) = [x for x in lines if " labels ctr " in x]
    assert "20 of 20 labelled" in line


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (ForwardEvent("feedback", T0, {"label": 1}), "request_id"),
        (ForwardEvent("feedback", T0, {"request_id": "r1", "label": "clicked"}), "label"),
    ],
)
def test_a_bad_feedback_record_is_a_dead_letter_naming_the_field(
    baseline: Baseline, tmp_path: Path, event: ForwardEvent, reason: str
) -> None:
    p = pipeline(baseline, tmp_path, [])
    p.handle([event])
    assert p.stats.dead_letters == 1 and p.stats.labels == 0
    (only,) = p.stats.dead_by_reason
    assert only.startswith(f"{reason}:")


def test_without_labels_enabled_feedback_is_counted_ignored_and_said_once(
    baseline: Baseline, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 14 row 12: ignored, but never silently.
    engine = Engine([baseline], EngineOptions(window_seconds=60, min_count=1))
    p = Pipeline(engine, AnomalyStore(tmp_path / "a.db"), FieldMapping(), emit=print)
    p.handle([prediction(0), label(0), label(1)])
    p.tell_labels_off()  # the runner's one-second tick
    p.handle([label(2)])
    p.tell_labels_off()
    assert (p.stats.records, p.stats.labels, p.stats.dead_letters) == (1, 0, 0)
    assert p.stats.feedback_ignored == 3
    said = [r.getMessage() for r in caplog.records if "labels are off" in r.getMessage()]
    assert said == ["labels are off: 2 feedback records ignored; set labels.enabled"]
    p.tell_labels_off(final=True)  # at shutdown, the total if it grew
    said = [r.getMessage() for r in caplog.records if "labels are off" in r.getMessage()]
    assert said[-1] == "labels are off: 3 feedback records ignored; set labels.enabled"
