"""detectors.drift.compare: a closed window against training (skew) and against the previous window
(drift); a test flags only past both its effect-size floor and what chance reaches at this size."""

from __future__ import annotations

import pytest

from detectors.baseline.profile import CategoricalProfile, FeatureProfile, NumericProfile, Profile
from detectors.baseline.reference import Baseline, FeatureReference
from detectors.baseline.schema import Schema
from detectors.drift.compare import compare_feature, violation_finding, window_categories
from detectors.stats import OTHER, BinCounts, CategoryCounts, FeatureWindow, Moments

EDGES = [0.0, 1.0, 2.0, 3.0]  # five bins: underflow, three inner, overflow
FLAT = [0.0, 0.25, 0.25, 0.25, 0.25]


def numeric_profile() -> FeatureProfile:
    return FeatureProfile(
        "float", 10_000, 0, 0, 0, numeric=NumericProfile(2.0, 1.0, 0.0, 4.0, {}, EDGES, FLAT)
    )


def categorical_profile(complete: bool = True) -> FeatureProfile:
    freqs = {"ios": 0.45, "android": 0.45, "web": 0.10}
    return FeatureProfile(
        "categorical",
        10_000,
        0,
        0,
        0,
        categorical=CategoricalProfile(freqs, 0.0 if complete else 0.05, 3, complete),
    )


BASELINE = Baseline.of(
    Schema.model_validate(
        {
            "features": {
                "price": {"type": "float"},
                "secret_amount": {"type": "float", "sensitive": True},
                "device": {"type": "categorical", "domain": ["android", "ios", "web"]},
                "tag": {"type": "categorical"},
            }
        }
    ),
    Profile(
        rows=10_000,
        source="t",
        features={
            "price": numeric_profile(),
            "secret_amount": numeric_profile(),
            "device": categorical_profile(),
            "tag": categorical_profile(complete=False),
        },
    ),
    b"key",
)
PRICE, SECRET, DEVICE, TAG = (
    BASELINE.references[n] for n in ("price", "secret_amount", "device", "tag")
)


def numeric_window(counts: list[int], *, missing: int = 0, mean: float = 2.0) -> FeatureWindow:
    n = sum(counts)
    return FeatureWindow(
        seen=n + missing,
        missing=missing,
        moments=Moments(n, mean, 0.0, 0.0, 4.0),
        bins=BinCounts(tuple(EDGES), list(counts)),
    )


def categorical_window(ref: FeatureReference, values: dict[str, int]) -> FeatureWindow:
    cats = CategoryCounts.zero(ref.categories, cap=32)
    for value, n in values.items():
        for _ in range(n):
            cats.update(value)
    return FeatureWindow(seen=cats.total, categories=cats)


def kinds(findings: list) -> set[tuple[str, str]]:  # type: ignore[type-arg]
    return {(f.kind, f.detector) for f in findings}


def test_a_window_shaped_like_training_raises_nothing() -> None:
    score, findings = compare_feature(PRICE, numeric_window([0, 250, 250, 250, 250]), None, 200)
    assert findings == []
    assert score.skew is not None and score.skew < 1e-4
    assert score.skew_threshold is not None and score.skew_threshold >= 0.01


def test_a_reshaped_numeric_window_is_distribution_skew_by_jensen_shannon() -> None:
    score, findings = compare_feature(PRICE, numeric_window([0, 150, 200, 250, 400]), None, 200)
    assert kinds(findings) == {("distribution_skew", "jensen_shannon")}
    (f,) = findings
    assert f.statistic == score.skew
    assert f.statistic > f.threshold == score.skew_threshold
    assert "bin [3, +inf): 40.0% of values now vs 25.0%" in f.message  # the bin that moved most
    assert f.current["bin"] == "[3, +inf)"
    assert score.psi is not None and score.psi > 0


def test_a_difference_past_the_floor_is_an_anomaly_only_when_chance_cannot_explain_it() -> None:
    small = compare_feature(PRICE, numeric_window([0, 16, 9, 16, 9]), None, 10)
    large = compare_feature(PRICE, numeric_window([0, 1600, 900, 1600, 900]), None, 10)
    for score, _ in (small, large):
        assert score.skew is not None and score.skew > 0.01  # past the floor in both
        assert score.skew_threshold == 0.01
    assert ("distribution_skew", "jensen_shannon") not in kinds(small[1])  # 50 values: chance
    assert ("distribution_skew", "jensen_shannon") in kinds(large[1])


def test_a_window_that_moved_from_the_previous_one_is_drift() -> None:
    previous = numeric_window([0, 250, 250, 250, 250])
    now = numeric_window([0, 100, 200, 300, 400])
    score, findings = compare_feature(PRICE, now, previous, 200)
    assert ("drift", "jensen_shannon") in kinds(findings)
    assert score.drift is not None and score.drift_threshold is not None
    assert score.drift > score.drift_threshold


def test_windows_under_min_count_are_not_compared() -> None:
    score, findings = compare_feature(PRICE, numeric_window([0, 10, 20, 30, 40]), None, 200)
    assert findings == [] and score.skew is None
    big_previous_only = compare_feature(
        PRICE, numeric_window([0, 250, 250, 250, 250]), numeric_window([0, 1, 0, 0, 99]), 200
    )
    assert big_previous_only[0].drift is None


def test_a_sensitive_numeric_feature_says_that_it_moved_but_not_where_to() -> None:
    _, findings = compare_feature(
        SECRET, numeric_window([0, 100, 200, 300, 400], mean=3.1), None, 200
    )
    (f,) = findings
    assert "bin" not in f.message and "mean" not in f.message and "3.1" not in f.message
    assert f.baseline == {} and set(f.current) == {"psi"}


def test_a_category_share_change_is_distribution_skew_by_l_infinity_naming_the_category() -> None:
    window = categorical_window(DEVICE, {"ios": 300, "android": 300, "web": 400})
    _, findings = compare_feature(DEVICE, window, None, 200)
    (f,) = findings
    assert (f.kind, f.detector) == ("distribution_skew", "l_infinity")
    assert f.statistic == pytest.approx(0.3)
    assert f.current == {"value": "web", "share": pytest.approx(0.4)}
    assert "'web'" in f.message
    calm = categorical_window(DEVICE, {"ios": 450, "android": 450, "web": 100})
    assert compare_feature(DEVICE, calm, None, 200)[1] == []


def test_unseen_categories_count_apart_in_a_closed_domain_and_as_other_in_an_open_one() -> None:
    values = {"ios": 40, "android": 40, "BR": 15, "XX": 5}
    closed = window_categories(DEVICE, categorical_window(DEVICE, values))
    assert closed == pytest.approx(
        {"ios": 0.4, "android": 0.4, "web": 0.0, "BR": 0.15, "XX": 0.05, OTHER: 0.0}
    )
    opened = window_categories(TAG, categorical_window(TAG, values))
    assert opened == pytest.approx({"ios": 0.4, "android": 0.4, "web": 0.0, OTHER: 0.2})


def test_a_rise_in_missing_values_is_a_data_quality_finding() -> None:
    _, findings = compare_feature(
        PRICE, numeric_window([0, 225, 225, 225, 225], missing=100), None, 200
    )
    assert kinds(findings) == {("data_quality", "missing_rate")}
    assert findings[0].statistic == pytest.approx(0.1 - PRICE.missing_rate)


def test_violations_past_the_tolerated_rate_are_findings_of_their_codes_kind() -> None:
    window = numeric_window([0, 250, 250, 250, 250])
    window.violations = {
        "INT_TYPE_HAS_FLOAT": 100,
        "FLOAT_TYPE_BIG_FLOAT": 100,
        "SCHEMA_NEW_COLUMN": 900,
    }
    score, findings = compare_feature(PRICE, window, None, 200)
    assert kinds(findings) == {
        ("schema_skew", "int_type_has_float"),
        ("data_quality", "float_type_big_float"),
    }  # new columns are scored per model, not per feature
    assert score.violation_rate == pytest.approx(1100 / 1000)


def test_a_violation_rate_within_floor_plus_chance_is_no_finding() -> None:
    assert violation_finding("INT_TYPE_HAS_FLOAT", 0, 1_000, 0.01, 1e-6) is None
    assert violation_finding("INT_TYPE_HAS_FLOAT", 20, 1_000, 0.01, 1e-6) is None
    f = violation_finding("INT_TYPE_HAS_FLOAT", 50, 1_000, 0.01, 1e-6)
    assert f is not None and f.statistic == 0.05 and f.threshold > 0.01
    assert f.current == {"violation_rate": 0.05, "violations": 50, "code": "INT_TYPE_HAS_FLOAT"}
