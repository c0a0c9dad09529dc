"""Feature skew's per-window statistics, against values computed by hand: which requests
disagree (tolerances from the schema, categories exact), the share, the typical ratio and
difference, the one-sided share, and the test's threshold."""

from __future__ import annotations

import math

import pytest

from detectors.baseline.schema import Thresholds
from detectors.drift.distances import rate_increase_null_threshold
from detectors.skew.feature_skew import MAX_COMMON, OTHER_KEY, SkewWindow, judge, outcome

T = Thresholds()


def window(
    pairs: list[tuple[object, object]], numeric: bool = True, sensitive: bool = False
) -> SkewWindow:
    w = SkewWindow()
    for s, p in pairs:
        w.add(s, p, T, numeric, sensitive)
    return w


def test_numbers_agree_within_the_larger_of_the_absolute_and_relative_tolerance() -> None:
    loose = Thresholds(skew_absolute=0.01, skew_relative=0.001)
    assert outcome(1.0, 1.009, loose, numeric=True) == "same"  # 0.009 <= 0.01 absolute
    assert outcome(1.0, 1.011, loose, numeric=True) == "differ"
    assert outcome(100.0, 100.09, loose, numeric=True) == "same"  # 0.09 <= 0.1 relative
    assert outcome(100.0, 100.11, loose, numeric=True) == "differ"
    assert outcome(3, 3.0, T, numeric=True) == "same"  # an int and a float of the same value


def test_categories_compare_exactly_as_their_text_and_missing_is_one_sided() -> None:
    assert outcome("DE", "DE", T, numeric=False) == "same"
    assert outcome("DE", "de", T, numeric=False) == "differ"
    assert outcome(True, "true", T, numeric=False) == "same"  # as the engine spells booleans
    assert outcome(None, "DE", T, numeric=False) == "pipeline_only"
    assert outcome("DE", None, T, numeric=False) == "serving_only"
    assert outcome(None, math.nan, T, numeric=True) == "same"  # missing on both sides


def test_counts_share_and_one_sided_share_match_a_hand_count() -> None:
    # 10 joined: 3 differ (x100, x100, +1), 1 serving only, 1 pipeline only, 5 agree
    pairs = [(1250.0, 12.5), (300.0, 3.0), (6.0, 5.0), (1.0, None), (None, 2.0)]
    pairs += [(float(i), float(i)) for i in range(5)]
    w = window(pairs)
    s = w.summary()
    assert (s["joined"], s["differ"], s["serving_only"], s["pipeline_only"]) == (10, 3, 1, 1)
    assert s["share"] == pytest.approx(5 / 10)
    assert s["one_side_share"] == pytest.approx(2 / 10)
    # ratios 100, 100, 1.2 -> median 100; differences 1237.5, 297, 1 -> median 297
    assert s["median_ratio"] == pytest.approx(100.0)
    assert s["median_difference"] == pytest.approx(297.0)
    assert w.common_value() == ("100", pytest.approx(2 / 3))


def test_a_category_mapped_differently_is_counted_as_its_pair() -> None:
    w = window([("DE", "de"), ("DE", "de"), ("FR", "FR"), ("US", "GB")], numeric=False)
    assert w.differ == 3
    assert w.common_value() == ("DE\x1fde", pytest.approx(2 / 3))


def test_the_counted_ratios_and_pairs_are_bounded() -> None:
    w = window([(float(i + 2), 1.0) for i in range(100)])
    assert len(w.common) == MAX_COMMON + 1
    assert w.common[OTHER_KEY] == 100 - MAX_COMMON


def test_a_sensitive_feature_keeps_counts_and_ratios_only() -> None:
    w = window([("alice", "bob")] * 3, numeric=False, sensitive=True)
    assert all("alice" not in k and "bob" not in k for k in w.common)
    n = window([(200.0, 2.0)] * 3, sensitive=True)
    assert n.median_ratio() == pytest.approx(100.0) and n.median_difference() is None


def test_the_threshold_is_the_floor_plus_what_chance_allows_at_this_many_requests() -> None:
    w = window([(120.0, 1.2)] * 130 + [(1.0, 1.0)] * 4_080)  # 130 of 4,210: 3.09%
    expected = T.skew_rate + rate_increase_null_threshold(T.skew_rate, 4_210, T.false_alarm_rate)
    found = judge(w, T, 4_210, sensitive=False)
    assert found is not None
    assert found.threshold == pytest.approx(expected)
    assert found.statistic == pytest.approx(130 / 4_210)
    assert found.message.startswith("3.1% of 4,210 joined requests differ between serving and")
    assert "serving is 100x the pipeline's value in 100% of them: a unit change?" in found.message


def test_a_few_disagreements_in_a_small_window_are_what_chance_allows() -> None:
    w = window([(2.0, 1.0)] * 2 + [(1.0, 1.0)] * 98)  # 2% of 100
    assert judge(w, T, 100, sensitive=False) is None  # z * sqrt(1/100) / 10 ~ 4.8% allowed
    assert judge(window([(1.0, 1.0)] * 1_000), T, 1_000, sensitive=False) is None


def test_a_sensitive_categorys_message_names_no_value() -> None:
    w = window([("alice", "ALICE")] * 60 + [("x", "x")] * 40, numeric=False, sensitive=True)
    found = judge(w, T, 100, sensitive=True)
    assert found is not None and "alice" not in found.message.lower()
    assert "one pair of values in 100% of them" in found.message
