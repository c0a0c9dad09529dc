"""detectors.labels.monitor and the Engine's label path: predictions wait for their labels, windows
are judged by the prediction's event time once their wait is over, and concept drift and
fairness anomalies name the slice or group they are about."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions, Result
from detectors.labels.monitor import ALL, LabelMonitor, LabelOptions
from detectors.privacy import keyed_hash
from detectors.records import FeedbackRecord, decode_record
from detectors.stats import OTHER
from tests.unit.detectors.conftest import PRIVACY_KEY, traffic_baseline

T0 = 1_795_860_000.0
MODEL = ("ctr", "3")
OPTS = LabelOptions(window_seconds=60, wait_seconds=120, slice_key="category", top_k=4)


def test_a_window_is_judged_once_its_wait_has_passed_with_coverage_and_latency() -> None:
    monitor = LabelMonitor(OPTS)
    for i in range(10):
        monitor.observe(MODEL, f"r{i}", T0 + i, 0.8, "shoes", ())
    for i in range(6):  # six of ten labelled, 30 s after their prediction; two of them wrong
        monitor.feedback(FeedbackRecord(T0 + i + 30, f"r{i}", 1.0 if i < 4 else 0.0))
    assert monitor.close_until(T0 + 179.9).reports == []
    (report,) = monitor.close_until(T0 + 180).reports
    assert (report.model, report.version, report.start, report.end) == ("ctr", "3", T0, T0 + 60)
    assert report.metrics["predictions"] == 10 and report.metrics["label_coverage"] == 0.6
    assert report.metrics["accuracy"] == pytest.approx(4 / 6)
    assert report.latency["p50"] == pytest.approx(30.0)


def test_a_label_after_its_window_was_judged_still_feeds_the_detectors() -> None:
    monitor = LabelMonitor(OPTS)
    monitor.observe(MODEL, "early", T0, 0.9, None, ())
    monitor.observe(MODEL, "later", T0 + 200, 0.9, None, ())  # the first window is judged
    monitor.feedback(FeedbackRecord(T0 + 210, "early", 1.0))
    assert monitor.stats.late_labels == 1
    assert monitor.detectors[(monitor.models.id(MODEL), ALL)].labels == 1


def test_predictions_without_request_id_or_number_are_counted_and_skipped() -> None:
    monitor = LabelMonitor(OPTS)
    monitor.observe(MODEL, None, T0, 0.5, None, ())
    monitor.observe(MODEL, "r", T0, "yes", None, ())
    monitor.observe(MODEL, "s", T0, True, None, ())  # a class is a number: 1.0
    assert monitor.stats.skipped == 2 and len(monitor.pending) == 1


def test_a_classification_label_other_than_0_or_1_is_counted_not_used() -> None:
    monitor = LabelMonitor(OPTS)
    monitor.observe(MODEL, "r", T0, 0.5, None, ())
    assert monitor.feedback(FeedbackRecord(T0 + 1, "r", 3.0)).anomalies == []
    assert monitor.stats.bad_labels == 1


def test_regression_reports_mae_and_rmse() -> None:
    monitor = LabelMonitor(replace(OPTS, task="regression"))
    for i, (prediction, label) in enumerate([(3.0, 1.0), (2.0, 2.0), (0.0, 4.0)]):
        monitor.observe(MODEL, f"r{i}", T0 + i, prediction, None, ())
        monitor.feedback(FeedbackRecord(T0 + i + 1, f"r{i}", label))
    (report,) = monitor.close_until(float("inf")).reports
    assert report.metrics["mae"] == pytest.approx(2.0) and "accuracy" not in report.metrics


def test_a_rising_error_rate_in_one_slice_is_concept_drift_naming_it() -> None:
    monitor = LabelMonitor(replace(OPTS, wait_seconds=1e9))
    rng = random.Random(1)
    anomalies = []
    for i in range(40_000):
        category = ("shoes", "hats")[i % 2]
        score = rng.random()
        clicked = rng.random() < score
        if category == "shoes" and i >= 20_000 and rng.random() < 0.5:
            clicked = not clicked
        monitor.observe(MODEL, f"r{i}", T0 + i / 100, score, category, ())
        anomalies += monitor.feedback(
            FeedbackRecord(T0 + i / 100, f"r{i}", float(clicked))
        ).anomalies
    assert anomalies
    assert {a.kind for a in anomalies} == {"concept_drift"}
    assert {"category": "shoes"} in [a.slice for a in anomalies]
    assert all(a.slice in ({}, {"category": "shoes"}) for a in anomalies)
    assert all(a.timestamp >= T0 + 200 for a in anomalies)
    first = next(a for a in anomalies if a.slice)
    assert first.feature == "error_rate" and "slice category=shoes" in first.message
    assert first.statistic > first.threshold  # recent error rate above the long-run one


def test_fairness_names_the_group_whose_errors_rose_and_only_after_the_reference() -> None:
    opts = replace(OPTS, slice_key=None, groups=("gender",), wait_seconds=0, reference_windows=2)
    monitor = LabelMonitor(opts)
    rng = random.Random(2)
    found = []
    for i in range(60_000):  # 10 windows of 6,000 predictions; f's labels flip from window 5
        gender = ("f", "m")[i % 2]
        score = rng.random()
        clicked = rng.random() < score
        if gender == "f" and i >= 30_000 and rng.random() < 0.4:
            clicked = not clicked
        found += monitor.observe(MODEL, f"r{i}", T0 + i / 100, score, None, (gender,)).anomalies
        found += monitor.feedback(FeedbackRecord(T0 + i / 100, f"r{i}", float(clicked))).anomalies
    found += monitor.close_until(float("inf")).anomalies
    fairness = [a for a in found if a.kind == "fairness"]
    assert fairness and all(a.slice == {"gender": "f"} for a in fairness)
    assert min(a.window_start for a in fairness) == T0 + 300
    assert "error_rate_disparity_change" in {a.detector for a in fairness}


def test_option_values_are_validated_by_name() -> None:
    with pytest.raises(ValueError, match="horizon"):
        LabelOptions(horizon=0)
    with pytest.raises(ValueError, match="decision_threshold"):
        LabelOptions(decision_threshold=1.0)


# --- through the Engine ---------------------------------------------------------------------


def raw(i: int, **extra: object) -> dict[str, object]:
    return {
        "ts": T0 + i,
        "request_id": f"r{i}",
        "model": "ctr",
        "model_version": "3",
        "features": {"price": 20.0, "age": 40, "score": 0.6, "country": "US", "device": "ios"},
        "prediction": 0.7,
        **extra,
    }


def test_without_label_options_feedback_is_a_no_op(ctr_baseline: Baseline) -> None:
    engine = Engine([ctr_baseline])
    engine.process(decode_record(raw(0)))
    assert engine.labels is None
    assert engine.feedback(FeedbackRecord(T0 + 1, "r0", 1.0)) == Result()


def test_the_engine_holds_predictions_and_reports_judged_label_windows(
    ctr_baseline: Baseline,
) -> None:
    options = replace(OPTS, groups=("device",))
    engine = Engine([ctr_baseline], EngineOptions(window_seconds=60, min_count=1), options)
    for i in range(30):
        engine.process(decode_record(raw(i, slice={"category": "shoes"})))
        engine.feedback(FeedbackRecord(T0 + i + 5, f"r{i}", 1.0))
    result = engine.close_all()
    (report,) = result.labels
    assert report.metrics["labelled"] == 30 and report.metrics["accuracy"] == 1.0
    assert set(report.groups["device"]) == {"ios"}
    assert set(report.slices) == {OTHER}  # too few predictions yet to rank the top-K


def test_a_sensitive_group_attribute_is_named_by_its_keyed_hash() -> None:
    baseline = traffic_baseline(schema_edits={"device": {"sensitive": True}})
    options = replace(OPTS, groups=("device",))
    engine = Engine([baseline], EngineOptions(window_seconds=60, min_count=1), options)
    engine.process(decode_record(raw(0)))
    engine.feedback(FeedbackRecord(T0 + 1, "r0", 1.0))
    (report,) = engine.close_all().labels
    assert set(report.groups["device"]) == {keyed_hash(PRIVACY_KEY, "ios")}


def _error_stream(monitor: LabelMonitor, rates: list[tuple[int, float]], seed: int) -> list:
    """Labels whose error rate is ``rate`` for ``n`` predictions, for each (n, rate) in turn:
    every prediction scores 0.9, so a label of 0 is an error."""
    rng = random.Random(seed)
    found = []
    i = 0
    for n, rate in rates:
        for _ in range(n):
            monitor.observe(MODEL, f"r{i}", T0 + i / 100, 0.9, None, ())
            label = 0.0 if rng.random() < rate else 1.0
            found += monitor.feedback(FeedbackRecord(T0 + i / 100, f"r{i}", label)).anomalies
            i += 1
    return found


def test_errors_falling_are_recorded_as_an_improvement_at_info_that_says_fell() -> None:
    # Issue 12: a falling error rate was announced as "errors rose to 7.5% recently vs 18.6%".
    monitor = LabelMonitor(replace(OPTS, slice_key=None, wait_seconds=1e9))
    found = _error_stream(monitor, [(6_000, 0.20), (6_000, 0.03)], seed=3)
    assert found, "an error rate falling from 20% to 3% is a change"
    for a in found:
        assert a.kind == "concept_drift" and a.statistic < a.threshold
        assert a.severity == "info", a.message
        assert "error rate fell to" in a.message and "rose" not in a.message
        assert "(an improvement; not paged)" in a.message


def test_errors_rising_say_rose_and_page_at_low_or_above() -> None:
    monitor = LabelMonitor(replace(OPTS, slice_key=None, wait_seconds=1e9))
    found = _error_stream(monitor, [(6_000, 0.03), (6_000, 0.20)], seed=3)
    assert found
    for a in found:
        assert a.statistic > a.threshold and a.severity in ("low", "medium", "high", "critical")
        assert "error rate rose to" in a.message and "fell" not in a.message
        assert "improvement" not in a.message


def test_a_fairness_message_states_the_gap_and_which_way_it_went_from_its_reference() -> None:
    # The change test's statistic is how far the gap moved; it was printed as "gap +9.0%"
    # when the gap itself was 12 points.
    from detectors.labels.fairness import Fairness, disparities
    from detectors.labels.monitor import Bucket
    from detectors.labels.performance import PerformanceWindow

    def win(errors: int, n: int) -> PerformanceWindow:
        return PerformanceWindow(labelled=n, fp=errors, tn=n - errors)

    now = {"f": win(1680, 4000), "m": win(1200, 4000)}  # gap +12 points
    ref = {"f": win(3960, 12000), "m": win(3600, 12000)}  # gap +3 points
    monitor = LabelMonitor(replace(OPTS, groups=("gender",)))
    bucket = Bucket(T0, T0 + 60, groups={("gender", g): w for g, w in now.items()})
    found = {
        d.detector: monitor._fairness("ctr", "3", "gender", d, bucket)
        for d in disparities(now, ref, Fairness())
    }
    change = found["error_rate_disparity_change"].message
    assert "the gap rose from +3.0 points in the reference windows to +12.0 points" in change
    assert "a move of +9.0 points (more than the 5.0 points tolerated)" in change
    gap = found["error_rate_disparity"].message
    assert "a gap of +12.0 points, above the 10.0 points tolerated" in gap
    assert found["error_rate_disparity_change"].current["gap"] == pytest.approx(0.12)
