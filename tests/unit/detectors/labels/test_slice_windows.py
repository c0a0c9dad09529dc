"""detectors.labels.slice_windows: each top-K slice's windows are compared with the same slice's
previous window, never with the training baseline, and the anomaly carries the slice."""

from __future__ import annotations

from dataclasses import replace

from detectors.anomaly import anomaly_id
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions, Result
from detectors.labels.monitor import LabelOptions
from detectors.labels.slice_windows import SliceWindows, sliced
from detectors.records import decode_record
from detectors.stats import OTHER
from streams.simulation.traffic import SliceSurge, serving_records

T0 = 1_795_860_000.0
LABELS = LabelOptions(window_seconds=60, wait_seconds=60, slice_key="category")


def test_other_is_not_watched_and_a_closed_slice_window_becomes_its_previous(
    ctr_baseline: Baseline,
) -> None:
    windows = SliceWindows(ctr_baseline, "category")
    windows.observe(OTHER, {"price": 10.0})
    assert windows.windows == {}
    for _ in range(50):
        windows.observe("shoes", {"price": 10.0, "device": "ios"})
    assert windows.close(min_count=20) == []  # nothing to compare with yet
    assert windows.windows == {} and windows.previous["shoes"]["price"].valid == 50


def test_a_sliced_anomaly_has_its_own_id_and_names_the_slice(ctr_baseline: Baseline) -> None:
    engine = Engine([ctr_baseline], EngineOptions(window_seconds=60, min_count=200), LABELS)
    surge = SliceSurge(at=12_000, key="category", value="jeans", share=0.6)
    raws = serving_records(30_000, rate=100, start=T0, seed=5, slices=True, slice_surge=surge)
    result = Result()
    for raw in raws:
        result.extend(engine.process(decode_record(raw)))
    result.extend(engine.close_all())
    found = [a for a in result.anomalies if a.slice == {"category": "jeans"}]
    assert found and {a.feature for a in found} == {"device"}
    a = found[0]
    model_wide = anomaly_id(a.model, a.model_version, a.feature, a.kind, a.detector, a.window_start)
    plain = replace(a, id=model_wide, slice={}, message="m")
    again = sliced(plain, "category", "jeans")
    assert again.id == a.id != model_wide and again.message == "slice category=jeans: m"
