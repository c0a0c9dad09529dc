"""The feature-skew monitor: serving records and pipeline feature records join by request id
whichever comes first, the join is counted (joined, expired, evicted, unmatched), windows of
the serving time are judged once both sides have passed them, and the anomaly names the
feature, the model and what differs."""

from __future__ import annotations

import pytest

from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions
from detectors.records import PipelineRecord, ServingRecord
from detectors.skew.monitor import FeatureSkewMonitor, SkewOptions, SkewWindows

OPTIONS = SkewOptions(window_seconds=60.0, wait_seconds=0.0, horizon=120.0, max_pending=1_000)
FEATURES = {"price": 12.5, "age": 40, "score": 0.1, "country": "DE", "device": "ios"}


def serving(i: int, ts: float, **changed: object) -> ServingRecord:
    return ServingRecord(ts, "ctr", "3", {**FEATURES, **changed}, 0.2, f"r{i}")


def pipeline(i: int, ts: float, **changed: object) -> PipelineRecord:
    return PipelineRecord(ts, f"r{i}", "ctr", {**FEATURES, **changed})


def monitor(baseline: Baseline, options: SkewOptions = OPTIONS) -> FeatureSkewMonitor:
    return FeatureSkewMonitor(options, lambda model: baseline if model == "ctr" else None)


def test_both_orders_join_and_the_join_is_counted(ctr_baseline: Baseline) -> None:
    m = monitor(ctr_baseline)
    m.serving(serving(1, 0.0))
    m.pipeline(pipeline(1, 1.0))  # serving first
    m.pipeline(pipeline(2, 2.0))
    m.serving(serving(2, 2.5))  # pipeline first
    m.pipeline(pipeline(3, 3.0))  # no serving record ever: unmatched once serving passes it
    m.serving(serving(4, 3.0))  # no pipeline record ever: expires past the horizon
    m.serving(serving(5, 70.0))
    m.pipeline(pipeline(5, 150.0))  # 80 s later: within the horizon; r4 (3 s) is past it
    s = m.join.stats
    assert (s.joined, s.expired, s.unmatched, s.evicted) == (3, 1, 1, 0)


def test_the_cap_evicts_the_oldest_waiting_serving_records(ctr_baseline: Baseline) -> None:
    m = monitor(ctr_baseline, SkewOptions(window_seconds=60.0, max_pending=2))
    for i in range(5):
        m.serving(serving(i, float(i)))
    assert (m.join.stats.evicted, m.join.live) == (3, 2)


def test_a_unit_change_in_the_pipeline_is_named_with_its_ratio(ctr_baseline: Baseline) -> None:
    m = monitor(ctr_baseline)
    found = []
    for i in range(3_000):
        ts = i * 0.01  # 30 s: one window
        m.serving(serving(i, ts))
        cents = FEATURES["price"] * 100 if i % 25 == 0 else FEATURES["price"]  # 4% in cents
        found += m.pipeline(pipeline(i, ts, price=cents)).anomalies
    result = m.close_all()
    found += result.anomalies
    assert [a.feature for a in found] == ["price"]
    a = found[0]
    assert (a.kind, a.detector, a.model, a.model_version) == (
        "feature_skew",
        "request_join",
        "ctr",
        "3",
    )
    assert a.statistic == pytest.approx(120 / 3_000)
    assert a.message.startswith("price (ctr v3): 4.0% of 3,000 joined requests differ between")
    assert "the pipeline's value is 100x serving's in 100% of them: a unit change?" in a.message
    report = result.reports[0]
    assert report.joined == 3_000 and report.features["price"]["differ"] == 120
    assert report.features["country"]["differ"] == 0


def test_a_window_waits_until_both_sides_have_passed_it(ctr_baseline: Baseline) -> None:
    m = monitor(ctr_baseline, SkewOptions(window_seconds=60.0, wait_seconds=30.0))
    m.serving(serving(1, 10.0))
    m.pipeline(pipeline(1, 10.0))
    assert not m.serving(serving(2, 95.0)).reports  # the pipeline is still at 10 s
    assert not m.pipeline(pipeline(2, 89.0)).reports  # 60 + 30 not passed by both
    reports = m.pipeline(pipeline(3, 91.0)).reports
    assert [(r.start, r.joined) for r in reports] == [(0.0, 1)]


def test_a_pair_joined_after_its_window_was_judged_is_counted_late(ctr_baseline: Baseline) -> None:
    w = SkewWindows(OPTIONS, lambda model: ctr_baseline)
    w.add(("ctr", "3"), 70.0, FEATURES, FEATURES)
    w.advance_to(200.0)
    w.add(("ctr", "3"), 10.0, FEATURES, FEATURES)
    assert w.stats.late == 1 and not w.buckets


def test_the_engine_hands_serving_and_pipeline_records_to_its_monitor(
    ctr_baseline: Baseline,
) -> None:
    engine = Engine([ctr_baseline], EngineOptions(window_seconds=60.0), skew=OPTIONS)
    for i in range(500):
        engine.process(serving(i, i * 0.1, country="DE"))
        engine.pipeline(pipeline(i, i * 0.1, country="de" if i % 10 == 0 else "DE"))
    result = engine.close_all()
    skewed = [a for a in result.anomalies if a.kind == "feature_skew"]
    assert [a.feature for a in skewed] == ["country"]
    assert "serving's 'DE' is the pipeline's 'de' in 100% of them" in skewed[0].message
    assert [r.joined for r in result.skew] == [500]


def test_the_judges_state_round_trips_and_judges_the_same(ctr_baseline: Baseline) -> None:
    import json

    from detectors.skew.state import from_plain, to_plain

    options = SkewOptions(window_seconds=60.0, wait_seconds=0.0)
    first = SkewWindows(options, lambda model: ctr_baseline)
    for i in range(500):
        price = 1250.0 if i % 20 == 0 else 12.5
        first.add(("ctr", "3"), i * 0.1, FEATURES, {**FEATURES, "price": price})
    plain = json.loads(json.dumps(to_plain(first)))
    second, notes = from_plain(options, lambda model: ctr_baseline, plain)
    assert notes == []
    a, b = first.advance_to(1_000.0), second.advance_to(1_000.0)
    assert [x.message for x in a.anomalies] == [x.message for x in b.anomalies] != []
    plain["buckets"][0]["features"]["price"]["ratios"] = "AAAA"
    assert "damaged" in from_plain(options, lambda model: ctr_baseline, plain)[1][0]


def test_a_skew_opens_one_incident_resolved_by_quiet_windows_of_joined_requests(
    ctr_baseline: Baseline,
) -> None:
    from detectors.incidents.feed import track
    from detectors.incidents.tracker import IncidentOptions, IncidentTracker

    engine = Engine([ctr_baseline], EngineOptions(window_seconds=60.0), skew=OPTIONS)
    tracker = IncidentTracker(IncidentOptions(quiet_windows=2))
    actions = []
    for i in range(2_400):  # four 60 s windows; the first has a unit change in 10%
        ts = i * 0.1
        price = 1250.0 if ts < 60 and i % 10 == 0 else 12.5
        for result in (
            engine.process(serving(i, ts)),
            engine.pipeline(pipeline(i, ts, price=price)),
        ):
            actions += [(c.action, c.incident.kind) for c in track(tracker, result).changes]
    actions += [(c.action, c.incident.kind) for c in track(tracker, engine.close_all()).changes]
    skew = [a for a in actions if a[1] == "feature_skew"]
    assert skew == [("opened", "feature_skew"), ("resolved", "feature_skew")]
