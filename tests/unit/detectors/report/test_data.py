"""The data behind `logdrift report`'s charts, against hand-computed values: proportions per bin
and per category, the score series and its threshold, anomaly marks, the summary's order and
the schema violations."""

from __future__ import annotations

import pytest

from detectors.anomaly import Anomaly, iso
from detectors.baseline.profile import CategoricalProfile, FeatureProfile, NumericProfile, Profile
from detectors.baseline.reference import Baseline
from detectors.baseline.schema import Schema
from detectors.incidents.tracker import Close, IncidentOptions, IncidentTracker
from detectors.report.data import (
    MAX_CATEGORIES,
    OTHER_LABEL,
    ReportInput,
    bin_labels,
    build_report,
    window_summary,
)
from detectors.stats import OTHER, BinCounts, CategoryCounts, FeatureWindow
from detectors.window_report import FeatureScore

T0 = 1_795_860_000.0  # 2026-11-28T10:00:00Z


def baseline(devices: dict[str, float] | None = None, sensitive: bool = False) -> Baseline:
    schema = Schema.model_validate(
        {
            "model": "ctr",
            "features": {
                "price": {"type": "float", "sensitive": sensitive},
                "device": {"type": "categorical"},
                "age": {"type": "int"},
            },
        }
    )
    numeric = NumericProfile(
        mean=10.0,
        std=5.0,
        min=0.0,
        max=30.0,
        quantiles={},
        edges=[0.0, 10.0, 20.0],
        frequencies=[0.0, 0.5, 0.3, 0.2],
    )
    devices = devices or {"ios": 0.5, "android": 0.4, "web": 0.1}
    profile = Profile(
        rows=100,
        source="training.csv",
        features={
            "price": FeatureProfile("float", 100, 0, 0, 0, numeric=numeric),
            "age": FeatureProfile("int", 100, 0, 0, 0, numeric=numeric),
            "device": FeatureProfile(
                "categorical",
                100,
                0,
                0,
                0,
                categorical=CategoricalProfile(devices, 0.0, len(devices), True),
            ),
        },
    )
    return Baseline.of(schema, profile, b"key")


def price_window(values: list[float], violations: dict[str, int] | None = None) -> FeatureWindow:
    win = FeatureWindow(bins=BinCounts.zero((0.0, 10.0, 20.0)))
    for x in values:
        win.seen += 1
        win.bins.update(x)  # type: ignore[union-attr]
    for code, n in (violations or {}).items():
        win.violations[code] = n
        win.seen += n
    return win


def device_window(counts: dict[str, int], known: tuple[str, ...]) -> FeatureWindow:
    win = FeatureWindow(categories=CategoryCounts.zero(known, cap=32))
    for value, n in counts.items():
        for _ in range(n):
            win.seen += 1
            win.categories.update(value)  # type: ignore[union-attr]
    return win


def score(feature: str, skew: float | None, threshold: float | None, **kw: float) -> FeatureScore:
    seen = int(kw.pop("seen", 100))
    return FeatureScore(
        feature, seen=seen, valid=seen, missing_rate=0.0, skew=skew, skew_threshold=threshold, **kw
    )


def anomaly(feature: str, ts: float, statistic: float, threshold: float, **kw: str) -> Anomaly:
    return Anomaly(
        id=f"{feature}-{ts}",
        timestamp=ts,
        kind=kw.get("kind", "distribution_skew"),
        detector=kw.get("detector", "l_infinity"),
        severity="high",
        model="ctr",
        model_version="3",
        feature=feature,
        statistic=statistic,
        threshold=threshold,
        window_start=kw.get("start", ts - 60),  # type: ignore[arg-type]
        window_end=ts,
        window_count=100,
        message=f"{feature} moved",
    )


def test_bin_labels_name_open_under_and_overflow_bins() -> None:
    assert bin_labels((0.0, 10.0, 20.0)) == ["< 0", "[0, 10)", "[10, 20)", ">= 20"]


def test_numeric_distribution_is_proportions_per_baseline_bin() -> None:
    data = ReportInput()
    # 1 value in [0, 10), 3 in [10, 20), 4 at or above 20 (none below 0)
    win = price_window([5.0, 12.0, 15.0, 19.9, 20.0, 25.0, 100.0, 21.0])
    data.add_window(T0, T0 + 60, [score("price", 0.2, 0.01)], {"price": win})
    chart = next(c for c in build_report(baseline(), data).features if c.feature == "price")
    d = chart.distribution
    assert d.numeric
    # the underflow bin is empty on both sides, so it is trimmed
    assert d.labels == ["[0, 10)", "[10, 20)", ">= 20"]
    assert d.baseline == [0.5, 0.3, 0.2]
    assert d.current == [1 / 8, 3 / 8, 4 / 8]
    assert d.current_count == 8
    assert d.window == (T0, T0 + 60)


def test_a_sensitive_features_bins_are_named_by_rank_not_by_training_values() -> None:
    data = ReportInput()
    data.add_window(T0, T0 + 60, [score("price", 0.2, 0.01)], {"price": price_window([5.0])})
    chart = next(c for c in build_report(baseline(sensitive=True), data).features if c.sensitive)
    assert chart.distribution.labels == ["bin 1", "bin 2", "bin 3"]
    assert chart.distribution.baseline == [0.5, 0.3, 0.2]


def test_categorical_distribution_shows_values_new_since_training() -> None:
    data = ReportInput()
    known = ("android", "ios", "web")
    win = device_window({"ios": 2, "android": 1, "web": 4, "tv": 3}, known)
    data.add_window(T0, T0 + 60, [score("device", 0.3, 0.05)], {"device": win})
    d = next(c for c in build_report(baseline(), data).features if c.feature == "device")
    dist = d.distribution
    assert not dist.numeric
    # ordered by the larger of the two shares (android and web tie at 40%), then by name
    assert dist.labels == ["ios", "android", "web", "tv"]
    assert dist.baseline == [0.5, 0.4, 0.1, 0.0]
    assert dist.current == pytest.approx([0.2, 0.1, 0.4, 0.3])
    assert dist.current_count == 10


def test_categories_past_the_cap_are_summed_into_other() -> None:
    names = [f"c{i:02d}" for i in range(MAX_CATEGORIES + 5)]
    share = 1 / len(names)
    data = ReportInput()
    data.add_window(T0, T0 + 60, [score("device", 0.0, 0.05)], {})
    chart = build_report(baseline(dict.fromkeys(names, share)), data).features
    dist = next(c for c in chart if c.feature == "device").distribution
    assert len(dist.labels) == MAX_CATEGORIES + 1
    assert dist.labels[-1] == OTHER_LABEL
    assert dist.baseline[-1] == pytest.approx(5 * share)
    assert sum(dist.baseline) == pytest.approx(1.0)
    assert dist.current == [] and dist.window is None  # no window: no current bars


def test_latest_window_is_the_current_distribution() -> None:
    data = ReportInput()
    data.add_window(T0 + 60, T0 + 120, [], {"price": price_window([25.0, 26.0])})
    data.add_window(T0, T0 + 60, [], {"price": price_window([5.0])})  # older, arrives later
    d = next(c for c in build_report(baseline(), data).features if c.feature == "price")
    assert d.distribution.current[-1] == 1.0
    assert d.distribution.window == (T0 + 60, T0 + 120)


def test_timeline_carries_scores_thresholds_and_anomaly_marks_in_time_order() -> None:
    data = ReportInput()
    for i, (skew, thr) in enumerate([(0.01, 0.05), (0.2, 0.06), (None, None)]):
        start = T0 + 60 * i
        data.add_window(start, start + 60, [score("device", skew, thr, drift=0.1)], {})
    late = anomaly("device", T0 + 120, 0.2, 0.06)
    early = anomaly("device", T0 + 90, 1.0, 0.5, kind="drift", detector="page_hinkley")
    data.anomalies = [late, early, anomaly("price", T0 + 60, 0.5, 0.01)]
    t = next(c for c in build_report(baseline(), data).features if c.feature == "device").timeline
    assert t.metric == "L-infinity"
    assert t.ends == [T0 + 60, T0 + 120, T0 + 180]
    assert t.skew == [0.01, 0.2, None]
    assert t.threshold == [0.05, 0.06, None]
    assert t.drift == [0.1, 0.1, 0.1]
    assert [(m.timestamp, m.detector) for m in t.marks] == [
        (T0 + 90, "page_hinkley"),
        (T0 + 120, "l_infinity"),
    ]


def test_with_incidents_a_change_is_drawn_as_spans_not_one_mark_per_anomaly() -> None:
    data = ReportInput()
    for i in range(4):
        start = T0 + 60 * i
        data.add_window(start, start + 60, [score("device", 0.2, 0.06, drift=0.1)], {})
    alarms = [anomaly("device", T0 + 60 * i, 0.2, 0.06) for i in (1, 2, 5)]
    data.anomalies = alarms
    tracker = IncidentTracker(IncidentOptions(quiet_windows=1))
    newest = {}
    for step in (
        tracker.apply(alarms[:2], []),
        tracker.apply([], [Close("ctr", "3", T0 + 120, T0 + 180)]),
        tracker.apply(alarms[2:], []),
    ):
        newest.update({i.id: i for i in step.incidents()})
    data.incidents = list(newest.values())
    t = next(c for c in build_report(baseline(), data).features if c.feature == "device").timeline
    assert t.marks == []
    spans = sorted((s.start, s.end) for s in t.spans if s.kind == "incident")
    assert len(spans) == 2  # resolved after a quiet window, then a new one opened
    assert spans == [(T0 + 60, T0 + 180), (T0 + 300, T0 + 300)]
    assert all("incident" in s.label for s in t.spans)


def test_summary_sorted_by_how_far_each_feature_moved_in_its_latest_window() -> None:
    data = ReportInput()
    w1, w2 = T0, T0 + 60
    # price: far in the past, back under its threshold now (peak 50, latest 0.5)
    data.add_window(w1, w1 + 60, [score("price", 0.5, 0.01)], {})
    data.add_window(w2, w2 + 60, [score("price", 0.005, 0.01)], {})
    # device: 4x its threshold now
    data.add_window(w2, w2 + 60, [score("device", 0.2, 0.05)], {})
    # age: no skew (values became strings) but a schema anomaly 90x its threshold now
    data.add_window(w2, w2 + 60, [score("age", None, None)], {})
    data.anomalies = [
        anomaly("age", w2 + 60, 0.9, 0.01, kind="schema_skew", detector="int_type_not_int_string")
    ]
    rows = [c.summary for c in build_report(baseline(), data).features]
    assert [r.feature for r in rows] == ["age", "device", "price"]
    age, device, price = rows
    assert age.latest_ratio == pytest.approx(90.0)
    assert age.reason == "schema_skew (int_type_not_int_string)"
    assert age.latest is None and age.kinds == ["schema_skew"]
    assert device.latest_ratio == pytest.approx(4.0)
    assert device.reason == "distribution_skew (L-infinity)"
    assert (device.latest, device.threshold) == (0.2, 0.05)
    assert price.latest_ratio == pytest.approx(0.5)
    assert price.peak_ratio == pytest.approx(50.0)


def test_equal_latest_ratios_order_by_peak_then_name() -> None:
    data = ReportInput()
    data.add_window(T0, T0 + 60, [score("price", 0.03, 0.01), score("age", 0.01, 0.01)], {})
    data.add_window(T0 + 60, T0 + 120, [score(n, 0.0, 0.01) for n in ("price", "age")], {})
    data.add_window(T0 + 60, T0 + 120, [score("device", 0.0, 0.05)], {})
    order = [c.feature for c in build_report(baseline(), data).features]
    assert order == ["price", "age", "device"]


def test_violations_are_summed_over_windows_with_their_share_of_records() -> None:
    data = ReportInput()
    bad = {"FLOAT_TYPE_STRING_NOT_FLOAT": 3}
    data.add_window(T0, T0 + 60, [score("price", None, None)], {"price": price_window([], bad)})
    data.add_window(
        T0 + 60, T0 + 120, [score("price", None, None)], {"price": price_window([1.0], bad)}
    )
    data.dead_letters = {"model: missing": 2, "ts: not a time": 5}
    report = build_report(baseline(), data)
    [row] = report.violations
    assert (row.feature, row.code, row.count) == ("price", "FLOAT_TYPE_STRING_NOT_FLOAT", 6)
    assert row.meaning == "strings where float expected"
    assert row.share == pytest.approx(6 / 200)  # each score saw 100 records
    assert report.dead_letters == [("ts: not a time", 5), ("model: missing", 2)]


def test_window_summary_keeps_counts_and_no_raw_values() -> None:
    win = price_window([5.0, 1234.5])
    plain = window_summary(win)
    assert plain == {
        "seen": 2,
        "missing": 0,
        "violations": {},
        "bins": [0, 1, 0, 1],
        "categories": None,
    }
    assert "1234.5" not in repr(plain)  # min and max (raw values) are left out
    cats = window_summary(device_window({"ios": 1, "tv": 2}, ("ios", "web")))
    assert cats["categories"] == {"ios": 1, "tv": 2}
    assert OTHER not in cats["categories"]


def test_report_period_windows_and_model() -> None:
    data = ReportInput(records=300)
    for i in range(3):
        data.add_window(T0 + 60 * i, T0 + 60 * (i + 1), [score("price", 0.0, 0.01)], {})
    report = build_report(baseline(), data)
    assert report.model == "ctr"
    assert report.period == (T0, T0 + 180)
    assert report.windows == 3 and report.records == 300


# --- partial windows: shown, never the verdict -----------------------------------------------
WEEK = 7 * 86_400.0


def drifting_for_weeks(data: ReportInput) -> None:
    """device past its threshold in 21 of 22 full weekly windows (not in the second), then a
    partial window judged at shutdown on 37 records that shows nothing."""
    for i in range(22):
        skew = 0.01 if i == 1 else 0.2
        start = T0 + WEEK * i
        win = device_window({"web": 90, "ios": 10}, ("android", "ios", "web"))
        data.add_window(start, start + WEEK, [score("device", skew, 0.05)], {"device": win})
    end = T0 + WEEK * 22
    quiet = device_window({"ios": 20, "android": 17}, ("android", "ios", "web"))
    data.add_window(end, end + WEEK, [score("device", 0.0, 0.3, seen=37)], {"device": quiet}, True)


def test_a_report_whose_last_window_is_partial_headlines_the_last_full_one() -> None:
    # Issue 12: the headline said "nothing past threshold", the summary "moved 0.00x", for a
    # feature that drifted for 22 weeks, judging a shutdown window of 37 records.
    data = ReportInput()
    drifting_for_weeks(data)
    report = build_report(baseline(), data)
    device = next(c for c in report.features if c.feature == "device")
    s = device.summary
    last_full = (T0 + WEEK * 21, T0 + WEEK * 22)
    assert s.window == last_full and not s.partial
    assert s.latest_ratio == pytest.approx(4.0) and s.latest == 0.2
    assert s.history == "past threshold in 21 of 22 windows since 2026-11-28T10:00:00.000Z"
    assert report.features[0].feature == "device"  # sorted on the full window: it moved most
    assert report.judged == last_full
    assert [(p.start, p.count) for p in report.partial] == [(T0 + WEEK * 22, 37)]
    assert report.headline.startswith(
        f"judged on the last full window, {iso(last_full[0])} to {iso(last_full[1])}; "
        f"moved past threshold: device (4.00x; in 21 of 22 windows since {iso(T0)})"
    )
    assert report.headline.endswith(
        f"; the window {iso(last_full[1])} to {iso(last_full[1] + WEEK)} (37 records) is "
        "partial: shown, not judged"
    )
    assert "nothing past threshold" not in report.headline


def test_the_distribution_is_the_last_full_window_and_the_partial_one_is_marked() -> None:
    data = ReportInput()
    drifting_for_weeks(data)
    report = build_report(baseline(), data)
    device = next(c for c in report.features if c.feature == "device")
    d = device.distribution
    assert d.window == (T0 + WEEK * 21, T0 + WEEK * 22) and not d.partial
    assert d.current[d.labels.index("web")] == pytest.approx(0.9)  # not the partial window's 0
    t = device.timeline
    assert t.partial == [False] * 22 + [True]
    assert [(sp.start, sp.kind) for sp in t.spans] == [(T0 + WEEK * 22, "partial")]
    assert "37 records" in t.spans[0].label


def test_with_only_a_partial_window_it_is_judged_and_said_to_be_partial() -> None:
    data = ReportInput()
    win = device_window({"web": 9, "ios": 1}, ("android", "ios", "web"))
    data.add_window(T0, T0 + 60, [score("device", 0.5, 0.25, seen=10)], {"device": win}, True)
    report = build_report(baseline(), data)
    device = next(c for c in report.features if c.feature == "device")
    assert device.summary.partial and device.summary.latest_ratio == pytest.approx(2.0)
    assert device.distribution.partial and device.distribution.current
    assert report.judged is None
    assert report.headline.startswith("no full window, only partial ones (the window ")
    assert "moved past threshold: device (2.00x)" in report.headline


def test_a_partial_windows_statistic_is_neither_the_peak_nor_counted_past_threshold() -> None:
    data = ReportInput()
    data.add_window(T0, T0 + 60, [score("price", 0.005, 0.01)], {})
    data.add_window(T0 + 60, T0 + 70, [score("price", 0.9, 0.01, seen=3)], {}, partial=True)
    late = anomaly("price", T0 + 70, 0.9, 0.01, start=T0 + 60)  # type: ignore[arg-type]
    data.anomalies = [late]
    report = build_report(baseline(), data)
    price = next(c for c in report.features if c.feature == "price").summary
    assert price.latest_ratio == pytest.approx(0.5) and price.peak_ratio == pytest.approx(0.5)
    assert (price.past, price.judged, price.since) == (0, 1, None)
    assert price.history == "never past threshold in 1 windows"
    assert report.in_partial_window(late)
    assert "nothing past threshold" in report.headline
