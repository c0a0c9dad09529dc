"""detectors.baseline.scores: a value's rank among the training values as a normal score, bounded
whatever the tails, ties at their mid-rank, and the training's order kept for calibration."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.baseline.scores import SERIES, OrderedSample, ScoreMap


def test_scores_of_a_normal_sample_are_close_to_its_standardized_values() -> None:
    sample = np.random.default_rng(1).normal(10.0, 2.0, 20_000)
    m = ScoreMap.from_sample(sample)
    for x in (6.0, 9.0, 10.0, 12.0, 13.5):
        assert m.z(x) == pytest.approx((x - 10.0) / 2.0, abs=0.05)


def test_heavy_tails_and_absurd_values_stay_bounded() -> None:
    m = ScoreMap.from_sample(np.random.default_rng(2).lognormal(0.0, 1.5, 20_000))
    assert m.z(1e300) == m.z(1e6) == m.zs[-1]
    assert m.zs[-1] < 4.1  # the largest training value's mid-rank among 20,000
    assert m.z(-1e12) == m.zs[0] > -4.1


def test_a_point_mass_scores_at_its_mid_rank() -> None:
    values = [0.0] * 600 + list(np.linspace(1, 10, 400))
    m = ScoreMap.from_sample(values)
    assert m.z(0.0) == pytest.approx(NormalDist().inv_cdf(0.3))


def test_the_inverse_maps_a_score_back_to_its_value() -> None:
    m = ScoreMap.from_sample(np.random.default_rng(3).exponential(1.0, 10_000))
    for x in (0.1, 0.7, 2.0):
        assert m.x(m.z(x)) == pytest.approx(x, rel=1e-6)
    assert m.percentile(0.0) == pytest.approx(50.0)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=300), st.floats(allow_nan=False))
def test_scores_are_monotone_and_finite_for_any_sample_and_value(
    sample: list[float], x: float
) -> None:
    m = ScoreMap.from_sample(sample)
    z = m.z(x)
    assert math.isfinite(z)
    assert m.z(x) <= m.z(math.nextafter(x, math.inf)) + 1e-12
    assert ScoreMap.from_json(m.to_json()) == m


def test_knots_must_increase() -> None:
    with pytest.raises(ValueError, match="increase"):
        ScoreMap((1.0, 1.0), (0.0, 1.0))


def test_an_ordered_sample_keeps_time_order_when_rows_arrive_out_of_it() -> None:
    sample = OrderedSample(rows=5)
    for position, z in [(3, 3.0), (0, 0.0), (4, 4.0), (1, 1.0)]:  # row 2 was missing
        sample.add(position, z)
    assert [s.tolist() for s in sample.segments()] == [[0.0, 1.0, 3.0, 4.0]]


def test_a_long_file_is_sampled_in_evenly_spaced_stretches() -> None:
    sample = OrderedSample(rows=10 * SERIES)
    assert len(sample.starts) == 4
    assert sample.starts[-1] + sample.length == 10 * SERIES
    assert sum(len(v) for v in sample.values) == SERIES
