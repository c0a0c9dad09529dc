"""detectors.drift.distances: distances between distributions, against scipy and by hand, and the
null thresholds that say how large a distance grows by chance alone."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon as scipy_jensenshannon
from scipy.stats import binom, chi2_contingency, norm

from detectors.drift.distances import (
    PSI_EPSILON,
    category_null_bounds,
    chi2_critical,
    coarsen,
    effective_size,
    goodness_of_fit,
    grouped,
    jensen_shannon,
    l_infinity,
    normalize,
    pearson_chi2,
    psi,
    rate_increase_null_threshold,
)

PROPERTY = settings(max_examples=50, deadline=None)


def scipy_bits(p: list[float], q: list[float]) -> float:
    """scipy's JS distance (base 2) squared. For near-identical vectors scipy takes the square
    root of a rounding residue just below zero and returns NaN: that divergence is zero."""
    distance = float(scipy_jensenshannon(p, q, base=2))
    return 0.0 if math.isnan(distance) else distance**2


def weights(size: int) -> st.SearchStrategy[list[float]]:
    """A probability vector of ``size`` entries, zeros included."""
    entry = st.just(0.0) | st.floats(min_value=0.0, max_value=1e3)
    return st.lists(entry, min_size=size, max_size=size).filter(lambda w: sum(w) > 0).map(normalize)


pairs_of_distributions = st.integers(2, 24).flatmap(lambda k: st.tuples(weights(k), weights(k)))


# --- Jensen-Shannon ----------------------------------------------------------------------

HAND_PICKED = [
    ([0.5, 0.5], [0.5, 0.5]),
    ([1.0, 0.0], [0.0, 1.0]),
    ([1.0, 0.0, 0.0], [0.5, 0.5, 0.0]),
    ([0.0, 0.0, 1.0], [0.2, 0.3, 0.5]),
    ([0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]),
    ([0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1]),
    ([0.001, 0.999], [0.999, 0.001]),
    ([1e-12, 1 - 1e-12], [0.5, 0.5]),
    ([0.0, 0.3, 0.0, 0.7], [0.6, 0.0, 0.4, 0.0]),
]


@pytest.mark.parametrize(("p", "q"), HAND_PICKED)
def test_jensen_shannon_in_bits_is_scipys_distance_squared(p: list[float], q: list[float]) -> None:
    assert jensen_shannon(p, q) == pytest.approx(scipy_bits(p, q), abs=1e-9)


@PROPERTY
@given(pairs_of_distributions)
def test_jensen_shannon_in_bits_is_scipys_distance_squared_for_any_distributions(
    pq: tuple[list[float], list[float]],
) -> None:
    p, q = pq
    assert jensen_shannon(p, q) == pytest.approx(scipy_bits(p, q), abs=1e-9)


@PROPERTY
@given(pairs_of_distributions)
def test_jensen_shannon_is_symmetric_and_between_zero_and_one(
    pq: tuple[list[float], list[float]],
) -> None:
    p, q = pq
    assert 0.0 <= jensen_shannon(p, q) <= 1.0
    assert jensen_shannon(p, q) == pytest.approx(jensen_shannon(q, p), abs=1e-12)


@PROPERTY
@given(st.integers(2, 24).flatmap(weights))
def test_jensen_shannon_of_a_distribution_with_itself_is_zero(p: list[float]) -> None:
    assert jensen_shannon(p, p) == 0.0


@PROPERTY
@given(st.integers(1, 12).flatmap(weights), st.integers(1, 12).flatmap(weights))
def test_jensen_shannon_of_disjoint_supports_is_one_bit(a: list[float], b: list[float]) -> None:
    p = a + [0.0] * len(b)
    q = [0.0] * len(a) + b
    assert jensen_shannon(p, q) == pytest.approx(1.0, abs=1e-12)


def test_jensen_shannon_needs_vectors_of_the_same_length() -> None:
    with pytest.raises(ValueError):
        jensen_shannon([0.5, 0.5], [1.0])


# --- L-infinity --------------------------------------------------------------------------


def test_l_infinity_is_the_largest_frequency_difference_and_names_its_category() -> None:
    training = {"ios": 0.45, "android": 0.45, "web": 0.10}
    window = {"ios": 0.42, "android": 0.38, "web": 0.20}
    # by hand: ios 0.03, android 0.07, web 0.10
    distance, category = l_infinity(window, training)
    assert distance == pytest.approx(0.10)
    assert category == "web"
    window = {"ios": 0.60, "android": 0.30, "web": 0.10}
    # by hand: ios 0.15, android 0.15 (a tie up to rounding), web 0
    distance, category = l_infinity(window, training)
    assert distance == pytest.approx(0.15)
    assert category in ("ios", "android")


def test_l_infinity_counts_categories_present_on_one_side_only() -> None:
    window = {"US": 0.5, "BR": 0.3, "DE": 0.2}
    training = {"US": 0.4, "DE": 0.1, "JP": 0.5}
    # by hand: US 0.1, BR 0.3 (new), DE 0.1, JP 0.5 (vanished)
    distance, category = l_infinity(window, training)
    assert distance == pytest.approx(0.5)
    assert category == "JP"
    distance, category = l_infinity({"US": 0.8, "BR": 0.2}, {"US": 0.9, "GB": 0.1})
    assert distance == pytest.approx(0.2)
    assert category == "BR"


def test_l_infinity_breaks_exact_ties_by_the_first_category_in_sorted_order() -> None:
    # 0.25 and 0.75 are exact in binary, so both differences are exactly 0.25
    assert l_infinity({"b": 0.5, "a": 0.5}, {"b": 0.75, "a": 0.25}) == (0.25, "a")


def test_l_infinity_of_identical_or_empty_distributions_is_zero() -> None:
    assert l_infinity({"a": 0.3, "b": 0.7}, {"a": 0.3, "b": 0.7})[0] == 0.0
    assert l_infinity({}, {}) == (0.0, "")


@PROPERTY
@given(
    st.dictionaries(st.sampled_from("abcdefgh"), st.floats(0, 1), max_size=8),
    st.dictionaries(st.sampled_from("abcdefgh"), st.floats(0, 1), max_size=8),
)
def test_l_infinity_is_symmetric_in_value(p: dict[str, float], q: dict[str, float]) -> None:
    assert l_infinity(p, q)[0] == l_infinity(q, p)[0]


# --- PSI ---------------------------------------------------------------------------------


def test_psi_is_the_hand_computed_sum_with_empty_bins_floored_at_epsilon() -> None:
    p = [0.5, 0.3, 0.2, 0.0]
    q = [0.25, 0.25, 0.25, 0.25]
    expected = (
        (0.5 - 0.25) * math.log(0.5 / 0.25)
        + (0.3 - 0.25) * math.log(0.3 / 0.25)
        + (0.2 - 0.25) * math.log(0.2 / 0.25)
        + (1e-4 - 0.25) * math.log(1e-4 / 0.25)  # the empty bin counts as 1e-4
    )
    assert PSI_EPSILON == 1e-4
    assert psi(p, q) == pytest.approx(expected, rel=1e-12)
    assert psi(p, q) == pytest.approx(0.1936 + 1.9552, abs=1e-3)


def test_psi_takes_the_epsilon_it_is_given() -> None:
    assert psi([1.0, 0.0], [0.0, 1.0], epsilon=0.01) == pytest.approx(2 * 0.99 * math.log(100))


@PROPERTY
@given(pairs_of_distributions)
def test_psi_is_symmetric_non_negative_and_zero_for_identical(
    pq: tuple[list[float], list[float]],
) -> None:
    p, q = pq
    assert psi(p, q) >= 0.0
    assert psi(p, q) == pytest.approx(psi(q, p), rel=1e-9, abs=1e-15)
    assert psi(p, p) == 0.0


# --- normalize and sample sizes ----------------------------------------------------------


def test_normalize_turns_counts_into_frequencies_and_nothing_into_zeros() -> None:
    assert normalize([1, 3, 0, 4]) == [0.125, 0.375, 0.0, 0.5]
    assert normalize([0, 0, 0]) == [0.0, 0.0, 0.0]


def test_effective_size_is_n_against_the_reference_and_nm_over_n_plus_m_between_windows() -> None:
    assert effective_size(500) == 500.0
    assert effective_size(300, 600) == pytest.approx(200.0)
    assert effective_size(0, 0) == 0.0


# --- null thresholds ---------------------------------------------------------------------


def test_rate_increase_null_threshold_shrinks_like_one_over_root_n() -> None:
    small, large = (rate_increase_null_threshold(0.1, n, 1e-6) for n in (1_000, 4_000))
    assert large == pytest.approx(small / 2, rel=1e-12)
    assert rate_increase_null_threshold(0.1, 0, 1e-6) == math.inf


def test_rate_increase_null_threshold_is_positive_even_for_a_zero_base_rate() -> None:
    assert rate_increase_null_threshold(0.0, 1_000, 1e-6) > 0.0


def test_coarsened_bins_each_expect_at_least_five_values() -> None:
    probs = [2.5e-5] + [1 / 16] * 16 + [2.5e-5]
    for n in (20, 50, 200, 6_000):
        groups = coarsen(probs, n)
        assert [i for g in groups for i in g] == list(range(len(probs)))
        assert all(sum(probs[i] for i in g) * n >= 5 for g in groups) or len(groups) == 1


def test_small_windows_keep_the_false_alarm_rate_near_alpha() -> None:
    """Pearson's test over bins coarsened to >= 10 expected values keeps a 50-value window's
    false-alarm rate near alpha (the chi-squared reading of Jensen-Shannon fired ~5x too often
    at alpha 1e-3 on such windows, and ~20x at 1e-6)."""
    rng = np.random.default_rng(5)
    probs = [1 / 16] * 16
    n, alpha, trials = 50, 1e-3, 200_000
    groups = coarsen(probs, n, 10)
    q = grouped(probs, groups)
    matrix = np.zeros((16, len(groups)))
    for j, g in enumerate(groups):
        matrix[list(g), j] = 1
    counts = rng.multinomial(n, probs, size=trials) @ matrix
    x2 = ((counts - n * np.array(q)) ** 2 / (n * np.array(q))).sum(axis=1)
    assert goodness_of_fit(list(counts[0]), q) == pytest.approx(x2[0])
    assert (x2 > chi2_critical(len(groups), alpha)).mean() <= 1.5 * alpha


def test_pearson_chi2_of_two_samples_equals_scipys_contingency_test() -> None:
    table = [[10, 20, 30], [15, 25, 20]]
    assert pearson_chi2(table) == pytest.approx(chi2_contingency(table, correction=False)[0])


def test_category_bounds_are_the_larger_of_exact_binomial_and_normal_bounds() -> None:
    bounds = category_null_bounds({"rare": 0.02, "common": 0.5}, 50, 1e-6)
    a = 1e-6 / 4
    normal = norm.isf(a) * math.sqrt(0.5 * 0.5 / 50)
    assert bounds["rare"] == pytest.approx(binom.isf(a, 50, 0.02) / 50 - 0.02)  # binomial wins
    assert bounds["common"] == pytest.approx(
        max(binom.isf(a, 50, 0.5) / 50 - 0.5, 0.5 - binom.ppf(a, 50, 0.5) / 50, normal)
    )
