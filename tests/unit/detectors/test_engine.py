"""detectors.engine: serving records in, window reports and anomalies out, on event time and
without a clock; what it reports is deterministic and never shows a sensitive value."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import pytest

from detectors.anomaly import Anomaly, iso
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions, Result
from detectors.records import DecodeError, decode_record
from streams.simulation.traffic import COUNTRIES, Injection, serving_records
from tests.unit.detectors.conftest import traffic_baseline

T0 = 1_795_860_000.0  # 2026-11-28T10:00:00Z, a whole minute


def traffic(
    n: int, *, rate: float = 10.0, start: float = T0, **kwargs: Any
) -> list[dict[str, Any]]:
    return list(serving_records(n, rate=rate, start=start, **kwargs))


def at(raw: dict[str, Any], ts: float) -> dict[str, Any]:
    return {**raw, "ts": ts}


def feed(engine: Engine, raws: Iterable[dict[str, Any]], *, finish: bool = False) -> Result:
    result = Result()
    for raw in raws:
        result.extend(engine.process(decode_record(raw)))
    if finish:
        result.extend(engine.close_all())
    return result


# --- windows -------------------------------------------------------------------------------


def test_a_window_closes_when_a_record_of_the_next_period_arrives(ctr_baseline: Baseline) -> None:
    engine = Engine([ctr_baseline], EngineOptions(window_seconds=60, min_count=50))
    raws = traffic(121, rate=2.0)  # event times T0, T0 + 0.5, ..., T0 + 60
    assert feed(engine, raws[:120]).reports == []  # all before T0 + 60: still open
    reports = feed(engine, raws[120:]).reports
    assert [(r.start, r.end, r.count, r.late) for r in reports] == [(T0, T0 + 60, 120, 0)]
    assert {s.feature for s in reports[0].scores} == set(ctr_baseline.references)


def test_windows_follow_event_time_not_arrival(ctr_baseline: Baseline) -> None:
    # The same records replayed a day later close the same windows: there is no clock.
    engine = Engine([ctr_baseline], EngineOptions(window_seconds=60, min_count=10))
    day = 86_400.0
    reports = feed(engine, traffic(300, rate=2.0, start=T0 + day), finish=True).reports
    assert [(r.start, r.end) for r in reports] == [
        (T0 + day + 60 * i, T0 + day + 60 * (i + 1)) for i in range(3)
    ]


def test_a_gap_in_traffic_starts_the_next_window_at_the_period_of_the_next_record(
    ctr_baseline: Baseline,
) -> None:
    engine = Engine([ctr_baseline], EngineOptions(window_seconds=60, min_count=10))
    raws = traffic(40, rate=2.0)
    later = [at(r, T0 + 3_600 + 30 + i) for i, r in enumerate(raws[20:])]
    reports = feed(engine, [*raws[:20], *later], finish=True).reports
    assert [(r.start, r.end, r.count) for r in reports] == [
        (T0, T0 + 60, 20),
        (T0 + 3_600, T0 + 3_660, 20),
    ]


def test_a_window_under_min_count_is_carried_over_and_judged_once_it_has_enough(
    ctr_baseline: Baseline,
) -> None:
    engine = Engine([ctr_baseline], EngineOptions(window_seconds=60, min_count=200))
    raws = traffic(241, rate=2.0)  # 120 records a minute
    assert feed(engine, raws[:121]).reports == []  # T0 + 60 arrived with only 120: carried
    reports = feed(engine, raws[121:]).reports  # the last record is at T0 + 120
    assert [(r.start, r.end, r.count) for r in reports] == [(T0, T0 + 120, 240)]


def test_close_all_reports_the_open_window_whatever_its_size(ctr_baseline: Baseline) -> None:
    engine = Engine([ctr_baseline], EngineOptions(window_seconds=60, min_count=200))
    assert feed(engine, traffic(50)).reports == []
    reports = engine.close_all().reports
    assert [(r.start, r.end, r.count) for r in reports] == [(T0, T0 + 60, 50)]
    assert engine.close_all().reports == []  # nothing accounted is left


def test_a_window_judged_at_shutdown_on_fewer_than_min_count_records_is_partial(
    ctr_baseline: Baseline,
) -> None:
    # `logdrift report` headlines the last window that is not partial.
    engine = Engine([ctr_baseline], EngineOptions(window_seconds=60, min_count=100))
    full = feed(engine, traffic(121, rate=2.0)).reports  # the record at T0 + 60 closes one
    assert [(r.count, r.partial) for r in full] == [(120, False)]
    assert [(r.count, r.partial) for r in engine.close_all().reports] == [(1, True)]
    engine = Engine([ctr_baseline], EngineOptions(window_seconds=60, min_count=100))
    feed(engine, traffic(100, rate=2.0))  # enough records: judged like any other at shutdown
    assert [(r.count, r.partial) for r in engine.close_all().reports] == [(100, False)]


def test_close_until_closes_only_windows_that_ended_by_the_watermark(
    ctr_baseline: Baseline,
) -> None:
    engine = Engine([ctr_baseline], EngineOptions(window_seconds=60, min_count=10))
    feed(engine, traffic(50))
    assert engine.close_until(T0 + 59.9).reports == []
    assert [r.count for r in engine.close_until(T0 + 60).reports] == [50]


def test_late_records_are_counted_in_late(ctr_baseline: Baseline) -> None:
    engine = Engine([ctr_baseline], EngineOptions(window_seconds=60, min_count=10))
    raws = traffic(24)
    feed(engine, raws[:20])  # T0 .. T0 + 1.9
    first = feed(engine, [at(raws[20], T0 + 61)]).reports
    assert [(r.start, r.late) for r in first] == [(T0, 0)]
    feed(engine, [at(r, T0 + 5) for r in raws[21:]])  # three records of the closed minute
    (second,) = engine.close_all().reports
    assert (second.start, second.count, second.late) == (T0 + 60, 4, 3)


def test_models_and_versions_keep_separate_windows(ctr_baseline: Baseline) -> None:
    engine = Engine([ctr_baseline], EngineOptions(window_seconds=60, min_count=10))
    v3 = traffic(30, version="3")
    v4 = traffic(20, version="4", seed=2)
    reports = feed(engine, [*v3, *v4], finish=True).reports
    assert sorted((r.version, r.count) for r in reports) == [("3", 30), ("4", 20)]


def test_a_record_of_a_model_without_a_baseline_is_a_decode_error_naming_the_model(
    ctr_baseline: Baseline,
) -> None:
    engine = Engine([ctr_baseline])
    with pytest.raises(DecodeError, match="'fraud'") as caught:
        engine.process(decode_record(traffic(1, model="fraud")[0]))
    assert caught.value.field == "model"
    assert "ctr" in str(caught.value)  # and says which models it has


def test_a_baseline_without_a_model_name_watches_every_model(ctr_baseline: Baseline) -> None:
    catch_all = Baseline(
        ctr_baseline.schema.model_copy(update={"model": None}),
        ctr_baseline.profile,
        ctr_baseline.privacy_key,
        ctr_baseline.references,
    )
    engine = Engine([catch_all], EngineOptions(min_count=10))
    (report,) = feed(engine, traffic(20, model="fraud"), finish=True).reports
    assert (report.model, report.count) == ("fraud", 20)


def test_an_engine_needs_a_baseline_and_sane_options(ctr_baseline: Baseline) -> None:
    with pytest.raises(ValueError, match="baseline"):
        Engine([])
    with pytest.raises(ValueError, match="window_seconds"):
        EngineOptions(window_seconds=0)
    with pytest.raises(ValueError, match="min_count"):
        EngineOptions(min_count=0)


# --- anomalies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("category_surge", ("device", "distribution_skew", "l_infinity")),
        ("schema_break", ("age", "schema_skew", "int_type_not_int_string")),
        ("missing_surge", ("price", "data_quality", "missing_rate")),
        ("variance_change", ("age", "distribution_skew", "jensen_shannon")),
    ],
)
def test_each_injected_change_is_caught_on_its_feature_and_nothing_else(
    ctr_baseline: Baseline, scenario: str, expected: tuple[str, str, str]
) -> None:
    engine = Engine([ctr_baseline], EngineOptions(min_count=200))
    raws = traffic(1_200, injections=[Injection(scenario, 0)])
    found = {(a.feature, a.kind, a.detector) for a in feed(engine, raws, finish=True).anomalies}
    assert expected in found  # the window test names it
    assert {feature for feature, _, _ in found} == {expected[0]}  # and nothing else alarms


@pytest.mark.parametrize(
    ("scenario", "feature", "kind"),
    [
        ("category_surge", "device", "distribution_skew"),
        ("schema_break", "age", "schema_skew"),
        ("missing_surge", "price", "data_quality"),
    ],
)
def test_a_rate_that_jumps_is_caught_by_its_sequential_test_before_the_window_closes(
    ctr_baseline: Baseline, scenario: str, feature: str, kind: str
) -> None:
    engine = Engine([ctr_baseline], EngineOptions(window_seconds=600, min_count=200))
    raws = traffic(3_000, injections=[Injection(scenario, 1_000)])
    found = feed(engine, raws).anomalies  # 300 s of a 600 s window: it never closes
    assert found, "only a sequential test can have fired"
    first = found[0]
    assert (first.feature, first.kind) == (feature, kind)
    assert first.detector.startswith("cusum_")
    assert T0 + 100 <= first.timestamp <= T0 + 100 + 2_000 / 10  # within 2,000 records
    assert "rose to" in first.message and "sequential test (CUSUM)" in first.message


def test_a_mean_shift_mid_stream_fires_the_change_detectors(ctr_baseline: Baseline) -> None:
    engine = Engine([ctr_baseline], EngineOptions(min_count=200))
    raws = traffic(3_000, injections=[Injection("mean_shift", 1_200)])
    drift = [a for a in feed(engine, raws, finish=True).anomalies if a.kind == "drift"]
    assert {a.feature for a in drift} == {"score"}
    alarms = [a for a in drift if a.detector in ("page_hinkley", "adwin")]
    assert alarms
    assert all(a.timestamp >= T0 + 120 for a in alarms)  # not before the shift
    assert all(a.statistic > 0 for a in alarms)  # the mean went up
    assert "the median rose from" in alarms[0].message


def test_a_new_column_is_reported_by_its_name(ctr_baseline: Baseline) -> None:
    engine = Engine([ctr_baseline], EngineOptions(min_count=200))
    raws = [{**r, "features": {**r["features"], "coupon": "x"}} for r in traffic(600)]
    found = feed(engine, raws, finish=True).anomalies
    assert {(a.feature, a.kind, a.detector) for a in found} == {
        ("coupon", "schema_skew", "schema_new_column")
    }


def anomaly_ids(baseline: Baseline) -> list[str]:
    engine = Engine([baseline], EngineOptions(min_count=200))
    raws = traffic(
        3_000,
        injections=[Injection("category_surge", 600), Injection("mean_shift", 1_200)],
    )
    return [a.id for a in feed(engine, raws, finish=True).anomalies]


def test_anomaly_ids_are_deterministic(ctr_baseline: Baseline) -> None:
    first = anomaly_ids(ctr_baseline)
    assert len(first) >= 3
    assert anomaly_ids(ctr_baseline) == first


def test_an_ongoing_skew_says_since_when(ctr_baseline: Baseline) -> None:
    engine = Engine([ctr_baseline], EngineOptions(window_seconds=60, min_count=200))
    raws = traffic(1_800, injections=[Injection("category_surge", 0)])
    skew = [
        a
        for a in feed(engine, raws, finish=True).anomalies
        if a.feature == "device" and a.detector == "l_infinity"
    ]
    assert [a.window_start for a in skew] == [T0, T0 + 60, T0 + 120]
    assert "ongoing" not in skew[0].message
    for later in skew[1:]:
        assert f"ongoing since {iso(T0)}" in later.message
        assert later.current["since"] == iso(T0)
    assert len({a.id for a in skew}) == 3  # one document per window, not one overwritten


def test_a_skew_that_stopped_is_not_ongoing_when_it_returns(ctr_baseline: Baseline) -> None:
    engine = Engine([ctr_baseline], EngineOptions(window_seconds=60, min_count=200))
    surge = traffic(600, injections=[Injection("category_surge", 0)])
    calm = traffic(600, start=T0 + 60, seed=3)
    again = traffic(600, start=T0 + 120, seed=4, injections=[Injection("category_surge", 0)])
    skew = [
        a
        for a in feed(engine, [*surge, *calm, *again], finish=True).anomalies
        if a.feature == "device" and (a.kind, a.detector) == ("distribution_skew", "l_infinity")
    ]
    assert [a.window_start for a in skew] == [T0, T0 + 120]
    assert "ongoing" not in skew[1].message


SECRET = "SECRET-COUNTRY-Q7"
RAW_COUNTRY = re.compile(r"\b(" + "|".join([*COUNTRIES, "BR", SECRET]) + r")\b")


@pytest.fixture(
    scope="module",
    params=["marked sensitive when profiled", "marked sensitive in schema.yaml only"],
)
def sensitive_country_baseline(request: pytest.FixtureRequest) -> Baseline:
    if request.param == "marked sensitive when profiled":
        return traffic_baseline(sensitive_in_profile=frozenset({"country"}))
    return traffic_baseline(schema_edits={"country": {"sensitive": True}})


def test_a_sensitive_features_raw_values_never_appear_in_an_anomaly_yet_its_change_is_caught(
    sensitive_country_baseline: Baseline,
) -> None:
    engine = Engine([sensitive_country_baseline], EngineOptions(min_count=200))
    raws = traffic(1_800, injections=[Injection("new_category", 0)])
    for i, raw in enumerate(raws):
        if i % 4 == 0:
            raw["features"]["country"] = SECRET
    anomalies: list[Anomaly] = feed(engine, raws, finish=True).anomalies
    assert {a.feature for a in anomalies} == {"country"}
    assert {a.kind for a in anomalies} == {"distribution_skew", "schema_skew"}
    for a in anomalies:
        document = json.dumps(a.to_document())
        assert SECRET not in document
        assert RAW_COUNTRY.search(document) is None, document


def test_the_raw_value_check_above_would_see_a_leak(ctr_baseline: Baseline) -> None:
    # Without the sensitive mark the same traffic does name raw countries in its anomalies.
    engine = Engine([ctr_baseline], EngineOptions(min_count=200))
    raws = traffic(600, injections=[Injection("new_category", 0)])
    documents = [json.dumps(a.to_document()) for a in feed(engine, raws, finish=True).anomalies]
    assert any(RAW_COUNTRY.search(d) for d in documents)


def test_fifty_thousand_stationary_records_raise_no_anomaly(ctr_baseline: Baseline) -> None:
    engine = Engine([ctr_baseline], EngineOptions(window_seconds=60, min_count=200))
    result = feed(engine, serving_records(50_000, rate=100.0, start=T0, seed=11), finish=True)
    assert len(result.reports) == 9  # 500 seconds of traffic: the windows were judged
    assert [a.line() for a in result.anomalies] == []
