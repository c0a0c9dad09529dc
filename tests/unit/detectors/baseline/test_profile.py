"""detectors.baseline.profile: what each training column looked like, in memory bounded by columns
x bins, as plain versioned data."""

from __future__ import annotations

import json
import math

import pytest

from detectors.baseline.profile import (
    RESERVOIR_SIZE,
    CategoricalProfile,
    ColumnSketch,
    FeatureProfile,
    NumericProfile,
    Profile,
    categorical_profile,
    category_text,
    frequencies,
    json_kind,
    numeric_profile,
)
from detectors.stats import BinCounts


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (True, "bool"),
        (False, "bool"),
        (3, "int"),
        (3.0, "float"),
        (math.nan, "float"),
        ("3", "str"),
        (None, "other"),
        ([3], "other"),
        ({"a": 3}, "other"),
    ],
)
def test_json_kind_tells_bool_from_int(value: object, kind: str) -> None:
    assert json_kind(value) == kind


def test_booleans_are_categories_spelled_as_json_literals() -> None:
    assert [category_text(v) for v in (True, False, "DE", 3)] == ["true", "false", "DE", "3"]


def test_a_column_sketch_counts_missing_nan_inf_and_kinds_apart() -> None:
    s = ColumnSketch(seed=0)
    for v in [1, 2.5, None, math.nan, math.inf, -math.inf, "x", True]:
        s.update(v)
    assert (s.seen, s.missing, s.nan, s.inf) == (8, 1, 1, 2)
    assert s.kinds == {"int": 1, "float": 4, "str": 1, "bool": 1}
    assert (s.moments.n, s.moments.mean) == (2, 1.75)  # only finite numbers enter the moments


def test_quantile_edges_are_sorted_distinct_and_bound_the_training_range() -> None:
    s = ColumnSketch(seed=0)
    for i in range(1_000):
        s.update(float(i))
    edges = s.quantile_edges(4)
    assert edges == sorted(set(edges))
    assert edges[0] == 0.0  # below it: values under the training minimum
    assert edges[-1] == math.nextafter(999.0, math.inf)  # from it: values above the maximum
    assert len(edges) == 5  # the minimum, three inner quartiles and just above the maximum
    assert edges[2] == pytest.approx(500, abs=20)


def test_a_constant_column_still_has_bins_on_either_side_of_its_value() -> None:
    s = ColumnSketch(seed=0)
    for _ in range(100):
        s.update(3.0)
    assert s.quantile_edges(16) == [3.0, math.nextafter(3.0, math.inf)]


def test_a_discrete_column_gets_one_edge_per_distinct_value_at_most() -> None:
    s = ColumnSketch(seed=0)
    for i in range(1_000):
        s.update(i % 3)
    assert s.quantile_edges(16) == [0.0, 1.0, 2.0, math.nextafter(2.0, math.inf)]
    assert ColumnSketch(seed=0).quantile_edges(16) == []


def test_top_categories_rank_by_count_then_name_and_count_distinct_values() -> None:
    s = ColumnSketch(seed=0)
    for value, n in [("b", 5), ("a", 5), ("c", 9), ("d", 1)]:
        for _ in range(n):
            s.update(value)
    assert s.top_categories(3) == (["c", "a", "b"], 4)


def test_the_reservoir_is_bounded() -> None:
    s = ColumnSketch(seed=1)
    for i in range(RESERVOIR_SIZE + 5_000):
        s.update(float(i))
    assert len(s.reservoir) == RESERVOIR_SIZE
    assert max(s.reservoir) >= RESERVOIR_SIZE  # later values do get in


def test_frequencies_of_nothing_are_zeros() -> None:
    assert frequencies([1, 3]) == [0.25, 0.75]
    assert frequencies([0, 0]) == [0.0, 0.0]


def test_a_categorical_profile_is_complete_only_when_nothing_fell_outside() -> None:
    assert categorical_profile({"a": 3, "b": 1}, 0, 2) == CategoricalProfile(
        {"a": 0.75, "b": 0.25}, 0.0, 2, True
    )
    partial = categorical_profile({"a": 3}, 1, 9)
    assert (partial.other, partial.complete) == (0.25, False)


def test_a_numeric_profile_carries_quantiles_and_the_bin_frequencies() -> None:
    s = ColumnSketch(seed=0)
    bins = BinCounts.zero((10.0, 20.0))
    for x in (5.0, 15.0, 15.0, 25.0):
        s.update(x)
        bins.update(x)
    p = numeric_profile(s, bins)
    assert (p.mean, p.min, p.max) == (15.0, 5.0, 25.0)
    assert p.edges == [10.0, 20.0]
    assert p.frequencies == [0.25, 0.5, 0.25]
    assert set(p.quantiles) == {"p0.1", "p1", "p5", "p25", "p50", "p75", "p95", "p99", "p99.9"}


PROFILE = Profile(
    rows=10,
    source="training.csv",
    features={
        "price": FeatureProfile(
            "float",
            10,
            1,
            0,
            0,
            numeric=NumericProfile(2.0, 1.0, 0.5, 4.0, {"p50": 2.0}, [1.0, 3.0], [0.2, 0.6, 0.2]),
            calibration={"adwin": {"delta": 1e-6, "clock": 32.0}},
        ),
        "device": FeatureProfile(
            "categorical",
            10,
            0,
            0,
            0,
            categorical=CategoricalProfile({"ios": 0.7, "web": 0.3}, 0.0, 2, True),
        ),
    },
)


def test_a_profile_round_trips_through_json() -> None:
    assert Profile.from_json(json.loads(json.dumps(PROFILE.to_json()))) == PROFILE


def test_a_profile_of_an_unknown_version_is_rejected() -> None:
    data = PROFILE.to_json()
    data["version"] = 2
    with pytest.raises(ValueError, match="version"):
        Profile.from_json(data)


def test_the_missing_rate_of_a_feature_never_seen_is_zero() -> None:
    assert FeatureProfile("float", 0, 0, 0, 0).missing_rate == 0.0
    assert PROFILE.features["price"].missing_rate == 0.1
