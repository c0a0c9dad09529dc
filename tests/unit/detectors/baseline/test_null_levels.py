"""detectors.baseline.null_levels: how much more a window test's statistic varies on the training
data's own chunks than independence predicts, and the window size at which it is read."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2

from detectors.baseline.null_levels import (
    MIN_CHUNK,
    ChunkCounts,
    NullLevels,
    _inflation,
    base_chunk,
)


def ar1_bins(phi: float, n: int, bins: int, seed: int) -> np.ndarray:
    """Equal-mass bin indices of a unit-variance AR(1) series."""
    rng = np.random.default_rng(seed)
    x = np.empty(n)
    x[0] = rng.standard_normal()
    noise = rng.standard_normal(n) * math.sqrt(1 - phi * phi)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + noise[t]
    edges = np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1])
    return np.searchsorted(edges, x, side="right")


def recorded(indices: np.ndarray, bins: int, missing: np.ndarray | None = None) -> ChunkCounts:
    chunks = ChunkCounts(len(indices), bins + 1)
    for position, i in enumerate(indices.tolist()):
        missing_here = missing is not None and missing[position]
        chunks.add(position, bins if missing_here else i)
    return chunks


def test_independent_values_keep_the_iid_levels() -> None:
    rng = np.random.default_rng(1)
    levels = recorded(rng.integers(0, 8, 100_000), 8).levels([1 / 8] * 8)
    assert levels.sizes[0] == MIN_CHUNK
    # within what the tail fit's own noise adds: a fifth to a third less sensitive, no more
    assert max(levels.skew) < 1.4
    assert max(levels.drift) < 1.4


def test_autocorrelated_values_inflate_the_level_about_as_ar1_theory_says() -> None:
    # For AR(1) the variance of a long chunk's mean is (1 + phi) / (1 - phi) times larger;
    # binned counts inherit about that much (a bit less: binning loses correlation).
    levels = recorded(ar1_bins(0.9, 100_000, 8, seed=2), 8).levels([1 / 8] * 8)
    big = levels.at("skew", 2_000)
    assert 5 < big < 25
    assert levels.at("skew", 25) <= big  # never less at a larger size
    assert levels.at("drift", 2_000) > 3


def test_the_mean_ratio_is_the_chunk_statistics_over_their_expectation() -> None:
    stats = np.full(100, 18.0)
    dof = np.full(100, 9.0)
    assert _inflation(stats, dof) == pytest.approx(2.0)
    rng = np.random.default_rng(3)
    iid = chi2.rvs(9, size=400, random_state=rng)
    assert 1.0 <= _inflation(iid, np.full(400, 9.0)) < 1.3


def test_one_extreme_chunk_raises_the_level_to_cover_it() -> None:
    stats = np.full(100, 9.0)
    stats[0] = 500.0  # a seasonal peak: the mean barely moves, the tail does
    assert _inflation(stats, np.full(100, 9.0)) > 500 / chi2.isf(0.25 / 100, 9) * 0.99


def test_bursty_missing_values_inflate_the_missing_level() -> None:
    rng = np.random.default_rng(4)
    n = 50_000
    burst = np.repeat(rng.random(n // 100) < 0.05, 100)  # 5% missing, in runs of 100
    levels = recorded(rng.integers(0, 4, n), 4, missing=burst).levels([0.25] * 4)
    assert levels.at("missing", 1_000) > 20
    scattered = rng.random(n) < 0.05
    calm = recorded(rng.integers(0, 4, n), 4, missing=scattered).levels([0.25] * 4)
    assert calm.at("missing", 1_000) < 1.6


def test_levels_interpolate_in_log_log_and_grow_past_the_largest_size_at_its_slope() -> None:
    levels = NullLevels(sizes=(100.0, 1_000.0), skew=(2.0, 20.0))
    assert levels.at("skew", 10) == 2.0
    assert levels.at("skew", math.sqrt(100 * 1_000)) == pytest.approx(math.sqrt(2 * 20))
    assert levels.at("skew", 10_000) == pytest.approx(200.0)  # slope 1 carried on
    assert levels.effective("skew", 1_000) == pytest.approx(50.0)
    assert NullLevels().at("skew", 1e6) == 1.0  # no table: independence


def test_a_table_read_back_from_json_is_the_same_and_a_bad_one_names_the_key() -> None:
    levels = NullLevels((25.0, 50.0), (1.0, 1.5), (1.0, 1.2), (1.0, 1.0))
    assert NullLevels.from_json(levels.to_json()) == levels
    with pytest.raises(ValueError, match=r"null_levels\.skew"):
        NullLevels.from_json({"sizes": [25.0, 50.0], "skew": [1.0, 0.5]})
    with pytest.raises(ValueError, match=r"null_levels\.sizes"):
        NullLevels.from_json({"sizes": [50.0, 25.0], "skew": [1.0, 1.0]})


def test_the_recorder_is_bounded_whatever_the_file_length() -> None:
    assert base_chunk(1_000) == MIN_CHUNK
    assert base_chunk(100_000_000) == 5_000
    assert len(ChunkCounts(100_000_000, 17).counts) == 20_000


def test_too_few_rows_for_eight_chunks_keep_independence() -> None:
    assert recorded(np.zeros(150, dtype=int), 2).levels([0.5, 0.5]) == NullLevels()
