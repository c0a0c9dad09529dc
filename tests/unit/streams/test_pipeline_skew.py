"""The embedded Pipeline with feature skew on: records under the pipeline tag are the training
pipeline's features of a request, joined to the serving record with its request id; a bad one
is a dead letter naming the field; a judged window prints a line; the anomaly lands in the
store, and `logdrift report` (from the store) shows it on the feature's row."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.forward import ForwardEvent
from connectors.store import AnomalyStore
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions
from detectors.records import FieldMapping
from detectors.report.data import build_report
from detectors.skew.monitor import SkewOptions
from streams.embedded.runner import Pipeline
from streams.report.inputs import from_store
from tests.unit.detectors.conftest import traffic_baseline

T0 = 1_795_860_000.0
TAG = "logdrift.pipeline"
SKEW = SkewOptions(window_seconds=60, wait_seconds=0)
FEATURES = {"price": 20.0, "age": 40, "score": 0.6, "country": "US", "device": "ios"}


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return traffic_baseline()


def serving(i: int) -> ForwardEvent:
    record = {"request_id": f"r{i}", "model": "ctr", "features": FEATURES, "prediction": 0.8}
    return ForwardEvent("serving", T0 + i * 0.1, record)


def computed(i: int, price: float = 20.0) -> ForwardEvent:
    record = {"request_id": f"r{i}", "model": "ctr", "features": FEATURES | {"price": price}}
    return ForwardEvent(TAG, T0 + i * 0.1 + 1, record)


def pipeline(baseline: Baseline, tmp_path: Path, lines: list[str]) -> Pipeline:
    engine = Engine([baseline], EngineOptions(window_seconds=60, min_count=1), skew=SKEW)
    store = AnomalyStore(tmp_path / "a.db")
    return Pipeline(engine, store, FieldMapping(), emit=lines.append, pipeline_tag=TAG)


def test_pipeline_records_join_and_a_unit_change_is_stored_and_reported(
    baseline: Baseline, tmp_path: Path
) -> None:
    lines: list[str] = []
    p = pipeline(baseline, tmp_path, lines)
    p.handle([serving(i) for i in range(400)])
    p.handle([computed(i, 2000.0 if i % 10 == 0 else 20.0) for i in range(400)])
    p.publish(p.engine.close_all())
    assert (p.stats.records, p.stats.pipeline, p.stats.dead_letters) == (400, 400, 0)
    (line,) = [x for x in lines if " feature skew ctr " in x]
    assert "400 joined requests, feature skew on price" in line
    (found,) = p.store.query(kind="feature_skew")
    assert found.feature == "price" and "10.0% of 400 joined requests differ" in found.message
    data = from_store(tmp_path / "a.db", "ctr", len(baseline.references), 10)
    page = build_report(baseline, data, "ctr")
    (price,) = [c for c in page.features if c.feature == "price"]
    assert "feature_skew" in price.summary.kinds


def test_a_pipeline_record_without_a_request_id_is_a_dead_letter_naming_it(
    baseline: Baseline, tmp_path: Path
) -> None:
    p = pipeline(baseline, tmp_path, [])
    p.handle([ForwardEvent(TAG, T0, {"model": "ctr", "features": FEATURES})])
    assert (p.stats.pipeline, p.stats.dead_letters) == (0, 1)
    (dead,) = p.store.dead_letters()
    assert "request_id" in dead.reason and dead.source == f"forward:{TAG}"
