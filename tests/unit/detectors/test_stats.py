"""detectors.stats: window statistics are values with zero, update and merge, and partial
summaries from many partitions merge into exactly what one process would have counted."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Iterable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.stats import BinCounts, CategoryCounts, FeatureWindow, Moments

PROPERTY = settings(max_examples=60, deadline=None)

EDGES = (-10.0, -1.0, 0.0, 0.5, 1.0, 10.0)
KNOWN = ("ios", "android", "web")
CODES = ("INT_TYPE_HAS_FLOAT", "FLOAT_TYPE_HAS_NAN", "SCHEMA_MISSING_COLUMN")

numbers = st.floats(min_value=-1e6, max_value=1e6) | st.sampled_from(EDGES)
samples = st.lists(numbers, max_size=40)
# A small alphabet (so values repeat and the cap bites) plus free text.
category_values = st.sampled_from([*KNOWN, *"abcdefghij"]) | st.text(max_size=3)
category_samples = st.lists(category_values, max_size=40)


def close(a: float, b: float, scale: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * scale)


def fold_moments(xs: Iterable[float]) -> Moments:
    m = Moments.zero()
    for x in xs:
        m.update(x)
    return m


def same_moments(a: Moments, b: Moments, xs: list[float]) -> bool:
    scale = max([1.0, *map(abs, xs)])
    return (
        a.n == b.n
        and a.min == b.min
        and a.max == b.max
        and close(a.mean, b.mean, scale)
        and close(a.m2, b.m2, scale * scale * max(a.n, 1))
    )


def fold_bins(xs: Iterable[float]) -> BinCounts:
    b = BinCounts.zero(EDGES)
    for x in xs:
        b.update(x)
    return b


def fold_categories(values: Iterable[str], cap: int) -> CategoryCounts:
    c = CategoryCounts.zero(KNOWN, cap)
    for v in values:
        c.update(v)
    return c


# --- Moments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "xs",
    [
        [1.0, 2.0, 3.0, 4.0],
        [5.0, 5.0],
        [-3.5, 1e-3, 7.25, 0.0, 2.0],
        (1e6 + np.random.default_rng(0).standard_normal(1_000)).tolist(),
        np.random.default_rng(1).exponential(3.0, 500).tolist(),
    ],
)
def test_moments_mean_and_variance_are_numpys_with_ddof_1(xs: list[float]) -> None:
    m = fold_moments(xs)
    assert m.n == len(xs)
    assert m.mean == pytest.approx(float(np.mean(xs)), rel=1e-9, abs=1e-9)
    assert m.variance == pytest.approx(float(np.var(xs, ddof=1)), rel=1e-9, abs=1e-9)
    assert m.std == pytest.approx(float(np.std(xs, ddof=1)), rel=1e-9, abs=1e-9)
    assert (m.min, m.max) == (min(xs), max(xs))


def test_moments_variance_of_fewer_than_two_values_is_zero() -> None:
    assert fold_moments([]).variance == 0.0
    assert fold_moments([3.0]).variance == 0.0


@PROPERTY
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=2, max_size=60))
def test_moments_match_numpy_on_any_sample(xs: list[float]) -> None:
    m = fold_moments(xs)
    scale = max([1.0, *map(abs, xs)])
    assert close(m.mean, float(np.mean(xs)), scale)
    assert close(m.variance, float(np.var(xs, ddof=1)), scale * scale)


@PROPERTY
@given(samples, samples)
def test_moments_merge_of_folds_equals_fold_of_concatenation(
    xs: list[float], ys: list[float]
) -> None:
    merged = fold_moments(xs).merge(fold_moments(ys))
    assert same_moments(merged, fold_moments(xs + ys), xs + ys)


@PROPERTY
@given(samples, samples, samples)
def test_moments_merge_is_associative(xs: list[float], ys: list[float], zs: list[float]) -> None:
    a, b, c = fold_moments(xs), fold_moments(ys), fold_moments(zs)
    assert same_moments(a.merge(b).merge(c), a.merge(b.merge(c)), xs + ys + zs)


@PROPERTY
@given(samples)
def test_moments_merge_with_zero_is_identity(xs: list[float]) -> None:
    m = fold_moments(xs)
    assert same_moments(m.merge(Moments.zero()), m, xs)
    assert same_moments(Moments.zero().merge(m), m, xs)


# --- BinCounts ---------------------------------------------------------------------------


def test_bins_are_half_open_with_underflow_first_and_overflow_last() -> None:
    b = BinCounts.zero((0.0, 1.0, 2.0))
    for x, expected_bin in [
        (-0.001, 0),  # underflow: below edges[0]
        (0.0, 1),  # an edge opens the bin above it
        (0.999, 1),
        (1.0, 2),
        (2.0, 3),  # the last edge is overflow
        (1e300, 3),
        (-math.inf, 0),
        (math.inf, 3),
    ]:
        before = list(b.counts)
        b.update(x)
        assert [c - d for c, d in zip(b.counts, before, strict=True)] == [
            int(i == expected_bin) for i in range(4)
        ], x
    assert b.total == 8


@PROPERTY
@given(samples)
def test_bin_i_counts_the_values_in_edges_i_minus_1_up_to_edges_i(xs: list[float]) -> None:
    bounds = (-math.inf, *EDGES, math.inf)
    expected = [sum(lo <= x < hi for x in xs) for lo, hi in itertools.pairwise(bounds)]
    expected[-1] += sum(x == math.inf for x in xs)
    assert fold_bins(xs).counts == expected


@PROPERTY
@given(samples, samples)
def test_bins_merge_of_folds_equals_fold_of_concatenation(xs: list[float], ys: list[float]) -> None:
    assert fold_bins(xs).merge(fold_bins(ys)) == fold_bins(xs + ys)


@PROPERTY
@given(samples, samples, samples)
def test_bins_merge_is_associative(xs: list[float], ys: list[float], zs: list[float]) -> None:
    a, b, c = fold_bins(xs), fold_bins(ys), fold_bins(zs)
    assert a.merge(b).merge(c) == a.merge(b.merge(c))


@PROPERTY
@given(samples)
def test_bins_merge_with_zero_is_identity(xs: list[float]) -> None:
    b = fold_bins(xs)
    assert b.merge(BinCounts.zero(EDGES)) == b == BinCounts.zero(EDGES).merge(b)


def test_merging_histograms_over_different_edges_raises() -> None:
    with pytest.raises(ValueError, match="edges"):
        BinCounts.zero((0.0, 1.0)).merge(BinCounts.zero((0.0, 2.0)))


# --- CategoryCounts ----------------------------------------------------------------------

caps = st.sampled_from([3, 32])


@PROPERTY
@given(category_samples, category_samples, caps)
def test_categories_merge_of_folds_equals_fold_of_concatenation(
    xs: list[str], ys: list[str], cap: int
) -> None:
    merged = fold_categories(xs, cap).merge(fold_categories(ys, cap))
    assert merged == fold_categories(xs + ys, cap)


@PROPERTY
@given(category_samples, category_samples, category_samples, caps)
def test_categories_merge_is_associative(
    xs: list[str], ys: list[str], zs: list[str], cap: int
) -> None:
    a, b, c = (fold_categories(v, cap) for v in (xs, ys, zs))
    assert a.merge(b).merge(c) == a.merge(b.merge(c))


@PROPERTY
@given(category_samples, caps)
def test_categories_merge_with_zero_is_identity(xs: list[str], cap: int) -> None:
    c = fold_categories(xs, cap)
    zero = CategoryCounts.zero(KNOWN, cap)
    assert c.merge(zero) == c == zero.merge(c)


@PROPERTY
@given(category_samples)
def test_categories_count_known_exactly_and_keep_at_most_cap_new_values_exactly(
    xs: list[str],
) -> None:
    c = fold_categories(xs, 3)
    truth = Counter(xs)
    assert c.known == {k: truth[k] for k in KNOWN}
    assert len(c.new) <= 3
    assert all(c.new[v] == truth[v] for v in c.new)  # a kept value is never undercounted
    assert c.total == len(xs)
    assert c.other == sum(n for v, n in truth.items() if v not in KNOWN and v not in c.new)


def test_merging_category_counts_over_different_baselines_raises() -> None:
    with pytest.raises(ValueError):
        CategoryCounts.zero(("a", "b")).merge(CategoryCounts.zero(("a", "c")))
    with pytest.raises(ValueError):
        CategoryCounts.zero(("a",), cap=3).merge(CategoryCounts.zero(("a",), cap=4))


# --- FeatureWindow -----------------------------------------------------------------------

Event = tuple[str, object]
numeric_events = st.lists(
    numbers.map(lambda x: ("value", x))
    | st.just(("missing", None))
    | st.sampled_from(CODES).map(lambda c: ("violation", c)),
    max_size=40,
)
categorical_events = st.lists(
    category_values.map(lambda v: ("value", v))
    | st.just(("missing", None))
    | st.sampled_from(CODES).map(lambda c: ("violation", c)),
    max_size=40,
)


def empty_window(kind: str) -> FeatureWindow:
    """What the engine opens for a feature (``FeatureReference.empty_window``)."""
    if kind == "numeric":
        return FeatureWindow(bins=BinCounts.zero(EDGES))
    return FeatureWindow(categories=CategoryCounts.zero(KNOWN, 3))


def fold_window(events: list[Event], kind: str) -> FeatureWindow:
    w = empty_window(kind)
    for what, value in events:
        w.seen += 1
        if what == "missing":
            w.missing += 1
        elif what == "violation":
            w.violate(str(value))
        elif isinstance(value, float):
            w.bins.update(value)  # type: ignore[union-attr]
            w.moments.update(value)
        else:
            w.categories.update(str(value))  # type: ignore[union-attr]
    return w


def same_window(a: FeatureWindow, b: FeatureWindow, events: list[Event]) -> bool:
    xs = [v for what, v in events if what == "value" and isinstance(v, float)]

    def counts(w: FeatureWindow) -> tuple[object, ...]:
        return (w.seen, w.missing, w.violations, w.bins, w.categories)

    return counts(a) == counts(b) and same_moments(a.moments, b.moments, xs)


window_cases = st.sampled_from(["numeric", "categorical"]).flatmap(
    lambda kind: st.tuples(
        st.just(kind),
        *[numeric_events if kind == "numeric" else categorical_events] * 3,
    )
)


@PROPERTY
@given(window_cases)
def test_window_merge_of_folds_equals_fold_of_concatenation(
    case: tuple[str, list[Event], list[Event], list[Event]],
) -> None:
    kind, xs, ys, _ = case
    merged = fold_window(xs, kind).merge(fold_window(ys, kind))
    assert same_window(merged, fold_window(xs + ys, kind), xs + ys)


@PROPERTY
@given(window_cases)
def test_window_merge_is_associative(
    case: tuple[str, list[Event], list[Event], list[Event]],
) -> None:
    kind, xs, ys, zs = case
    a, b, c = (fold_window(e, kind) for e in (xs, ys, zs))
    assert same_window(a.merge(b).merge(c), a.merge(b.merge(c)), xs + ys + zs)


@PROPERTY
@given(window_cases)
def test_window_merge_with_zero_is_identity(
    case: tuple[str, list[Event], list[Event], list[Event]],
) -> None:
    kind, xs, _, _ = case
    w = fold_window(xs, kind)
    assert same_window(w.merge(empty_window(kind)), w, xs)
    assert same_window(empty_window(kind).merge(w), w, xs)


def test_window_valid_counts_values_that_entered_the_distribution() -> None:
    events: list[Event] = [("value", 0.2), ("value", 3.0), ("missing", None), ("violation", "X")]
    assert fold_window(events, "numeric").valid == 2
    assert fold_window([("value", "ios"), ("value", "new")], "categorical").valid == 2
    assert FeatureWindow().valid == 0


def test_merging_into_a_default_window_keeps_the_other_sides_histogram_and_categories() -> None:
    # A partition that never opened a window for a feature holds FeatureWindow(): merging the
    # other partitions' partials into it must not throw their distributions away.
    numeric = fold_window([("value", 0.25), ("value", 5.0)], "numeric")
    categorical = fold_window([("value", "ios")], "categorical")
    assert FeatureWindow().merge(numeric).bins == numeric.bins
    assert FeatureWindow().merge(categorical).categories == categorical.categories


@PROPERTY
@given(window_cases)
def test_window_plain_data_round_trips_exactly_also_through_json(
    case: tuple[str, list[Event], list[Event], list[Event]],
) -> None:
    kind, xs, _, _ = case
    w = fold_window(xs, kind)
    assert FeatureWindow.from_plain(w.to_plain()) == w
    assert FeatureWindow.from_plain(json.loads(json.dumps(w.to_plain()))) == w


def test_window_plain_data_is_a_snapshot_that_later_updates_do_not_change() -> None:
    numeric = fold_window([("value", 0.25)], "numeric")
    categorical = fold_window([("value", "ios"), ("value", "zz")], "categorical")
    plain_numeric, plain_categorical = numeric.to_plain(), categorical.to_plain()
    frozen = json.dumps([plain_numeric, plain_categorical])
    numeric.bins.update(0.25)  # type: ignore[union-attr]
    categorical.categories.update("ios")  # type: ignore[union-attr]
    categorical.categories.update("zz")  # type: ignore[union-attr]
    assert json.dumps([plain_numeric, plain_categorical]) == frozen


@pytest.mark.parametrize("version", [2, 0, None, "1"])
def test_window_plain_data_of_an_unknown_version_is_rejected(version: object) -> None:
    plain = fold_window([("value", 0.25)], "numeric").to_plain()
    plain["v"] = version
    with pytest.raises(ValueError, match="version"):
        FeatureWindow.from_plain(plain)
    del plain["v"]
    with pytest.raises(ValueError, match="version"):
        FeatureWindow.from_plain(plain)
