"""detectors.baseline.calibrate: change detectors tuned on training data to a false-alarm budget;
the replayed Page-Hinkley statistic is river's own, and the threshold agrees with CUSUM theory."""

from __future__ import annotations

import math

import numpy as np
import pytest
from river.drift import PageHinkley
from scipy.optimize import brentq

from detectors.baseline.calibrate import (
    PH_ALPHA,
    PH_MARGIN,
    PH_MIN_INSTANCES,
    CalibrationOptions,
    adwin_alarms,
    block_bootstrap,
    block_means,
    calibrate,
    choose_block,
    exponential_tail_quantile,
    lag1,
    level_wander,
    page_hinkley_maxima,
    wander,
)


def river_detects(stream: np.ndarray, delta: float, threshold: float) -> bool:
    detector = PageHinkley(
        min_instances=30, delta=delta, threshold=threshold, alpha=1.0, mode="both"
    )
    for x in stream.tolist():
        detector.update(x)
        if detector.drift_detected:
            return True
    return False


def seeded_streams(seed: int) -> np.ndarray:
    """Stationary rows, and rows whose mean steps up or down halfway."""
    rng = np.random.default_rng(seed)
    streams = rng.standard_normal((4, 1_500))
    streams[1, 750:] += 1.0
    streams[2, 750:] -= 1.0
    streams[3] = rng.exponential(1.0, 1_500) - 1.0  # skewed, like real features
    return streams


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("delta", [0.1, 0.25, 0.5])
def test_page_hinkley_maxima_are_the_largest_statistic_river_reaches(
    seed: int, delta: float
) -> None:
    streams = seeded_streams(seed)
    maxima = page_hinkley_maxima(streams, delta)
    assert maxima.shape == (4,)
    for stream, peak in zip(streams, maxima.tolist(), strict=True):
        assert peak > 0
        assert river_detects(stream, delta, peak * (1 - 1e-7)), "river passed just below the max"
        assert not river_detects(stream, delta, peak * (1 + 1e-7)), "river passed above the max"


def test_page_hinkley_maxima_ignore_the_first_min_instances_values() -> None:
    stream = np.zeros((1, 100))
    stream[0, :10] = 50.0  # a burst the detector is not yet allowed to see as change
    stream[0, 10:] = -50.0
    early = page_hinkley_maxima(stream[:, : PH_MIN_INSTANCES - 1], 0.25)
    assert early.tolist() == [0.0]
    assert page_hinkley_maxima(stream, 0.25)[0] > 0


def siegmund_threshold(k: float, arl0: float) -> float:
    """The CUSUM threshold h with in-control average run length ``arl0`` for N(0, 1) values and
    reference value k (Siegmund's approximation)."""

    def arl(h: float) -> float:
        b = 2 * k * (h + 1.166)
        return (math.exp(b) - b - 1) / (2 * k * k)

    return float(brentq(lambda h: arl(h) - arl0, 0.0, 500.0))


def test_the_page_hinkley_threshold_on_normal_data_agrees_with_cusum_theory(
    standard_normal_calibration: dict[str, dict[str, float]],
) -> None:
    ph = standard_normal_calibration["page_hinkley"]
    theory = siegmund_threshold(k=0.25, arl0=1 / CalibrationOptions().budget)
    assert 30 < theory < 40  # sanity of the formula itself: h ~ 36 for these values
    # the fitted tail agrees with theory; the threshold carries a margin over the fit
    assert ph["threshold"] / PH_MARGIN == pytest.approx(theory, rel=0.25)


def test_calibrated_parameters_are_those_river_needs(
    standard_normal_calibration: dict[str, dict[str, float]],
) -> None:
    ph, ad = standard_normal_calibration["page_hinkley"], standard_normal_calibration["adwin"]
    blocks = standard_normal_calibration["blocks"]
    assert blocks["size"] == 1  # independent values: no block means
    assert blocks["shift"] == CalibrationOptions().min_shift  # no wandering level to allow for
    # CUSUM reference value: half the smallest shift, in units of the block means' spread
    assert ph["delta"] == pytest.approx(blocks["shift"] / 2 / blocks["std"])
    assert (ph["alpha"], ph["min_instances"]) == (PH_ALPHA, PH_MIN_INSTANCES)
    assert PH_ALPHA == 1.0  # no fading: a true CUSUM
    assert 1e-15 <= ad["delta"] <= 0.01
    assert ad["clock"] > 0


def test_a_smaller_budget_gives_a_higher_threshold_and_a_smaller_adwin_delta() -> None:
    values = np.random.default_rng(9).standard_normal(2_000)
    fast = {"streams": 32, "stream_length": 2_000, "adwin_events": 20_000}
    loose = calibrate(values, CalibrationOptions(budget=1e-5, **fast))
    strict = calibrate(values, CalibrationOptions(budget=1e-10, **fast))
    assert strict["page_hinkley"]["threshold"] > loose["page_hinkley"]["threshold"]
    assert strict["adwin"]["delta"] < loose["adwin"]["delta"]


def test_calibration_is_deterministic_for_a_seed() -> None:
    values = np.random.default_rng(4).standard_normal(500)
    opts = CalibrationOptions(streams=16, stream_length=1_000, adwin_events=5_000, seed=3)
    assert calibrate(values, opts) == calibrate(values, opts)


def test_exponential_tail_quantile_extrapolates_an_exponential_tail() -> None:
    sample = np.random.default_rng(11).exponential(2.0, 200_000)
    for p in (1e-3, 1e-6, 1e-9):
        assert exponential_tail_quantile(sample, p) == pytest.approx(
            2.0 * math.log(1 / p), rel=0.05
        )


def test_adwin_alarms_count_alarms_on_a_stream() -> None:
    rng = np.random.default_rng(2)
    steps = np.concatenate([rng.standard_normal(2_000), rng.standard_normal(2_000) + 3.0])
    assert adwin_alarms(steps, 0.002) >= 1
    assert adwin_alarms(np.zeros(2_000), 0.002) == 0


def test_calibrating_on_fewer_than_100_values_raises() -> None:
    with pytest.raises(ValueError, match="100"):
        calibrate(np.zeros(99), CalibrationOptions())


@pytest.mark.parametrize("budget", [0.0, -1e-9, 1e-3, 0.5, 2.0])
def test_options_reject_a_budget_outside_0_to_1e_3_naming_it(budget: float) -> None:
    with pytest.raises(ValueError, match="budget"):
        CalibrationOptions(budget=budget)


@pytest.mark.parametrize("min_shift", [0.0, -0.5])
def test_options_reject_a_non_positive_min_shift_naming_it(min_shift: float) -> None:
    with pytest.raises(ValueError, match="min_shift"):
        CalibrationOptions(min_shift=min_shift)


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("streams", 0),
        ("stream_length", 0),
        ("stream_length", PH_MIN_INSTANCES - 1),  # statistic never evaluated: threshold of noise
        ("adwin_events", 0),
        ("adwin_probe_delta", 0.0),
        ("adwin_probe_delta", 1.5),
    ],
)
def test_options_reject_replays_that_cannot_measure_anything_naming_the_parameter(
    parameter: str, value: float
) -> None:
    # Accepted, these fail later inside calibrate (IndexError, ZeroDivisionError) or,
    # worse, silently calibrate to a meaningless threshold or delta.
    with pytest.raises(ValueError, match=parameter):
        CalibrationOptions(**{parameter: value})  # type: ignore[arg-type]


def ar1(phi: float, n: int, seed: int) -> np.ndarray:
    """A stationary AR(1) series with unit marginal variance."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(n) * math.sqrt(1 - phi * phi)
    out = np.empty(n)
    out[0] = rng.standard_normal()
    for t in range(1, n):
        out[t] = phi * out[t - 1] + noise[t]
    return out


def test_lag1_matches_numpy_on_one_segment_and_never_pairs_across_segments() -> None:
    x = ar1(0.9, 5_000, seed=1)
    assert lag1([x]) == pytest.approx(np.corrcoef(x[1:], x[:-1])[0, 1], abs=0.01)
    # two segments that each rise: a pair across the seam would add a large negative product
    assert lag1([np.arange(10.0), np.arange(10.0)]) == pytest.approx(
        lag1([np.arange(10.0)]), abs=0.01
    )


@pytest.mark.parametrize(("phi", "low", "high"), [(0.0, 1, 1), (0.9, 8, 64), (0.99, 64, 1024)])
def test_the_block_size_grows_with_autocorrelation(phi: float, low: int, high: int) -> None:
    b = choose_block([ar1(phi, 200_000, seed=2)], CalibrationOptions())
    assert low <= b <= high
    assert lag1(block_means([ar1(phi, 200_000, seed=2)], b)) <= 0.3 or b == 1024


def test_a_level_that_moves_by_itself_raises_the_smallest_shift_above_its_moves() -> None:
    rng = np.random.default_rng(3)
    regimes = np.repeat(rng.choice([-0.8, 0.8], size=100), 2_000) + rng.standard_normal(200_000)
    fast = CalibrationOptions(streams=32, stream_length=5_000, adwin_events=20_000)
    assert calibrate(regimes, fast)["blocks"]["shift"] > 2 * 0.8  # wider than the whole swing
    assert calibrate(rng.standard_normal(200_000), fast)["blocks"]["shift"] == 0.5


def test_a_daily_cycle_seen_by_the_hour_raises_the_smallest_shift_above_the_cycle() -> None:
    hours = np.arange(24 * 14)
    rng = np.random.default_rng(6)
    counts = np.full(hours.size, 60.0)  # a row a minute
    sums = counts * (0.8 * np.sin(2 * np.pi * hours / 24)) + rng.standard_normal(hours.size) * 8
    level = level_wander(sums, counts, noise=1.0)
    assert level == pytest.approx(0.8 / math.sqrt(2), rel=0.1)
    values = rng.standard_normal(20_000)
    fast = CalibrationOptions(streams=32, stream_length=5_000, adwin_events=20_000)
    assert calibrate(values, fast, (sums, counts))["blocks"]["shift"] > 2 * 0.8
    flat = rng.standard_normal(hours.size) * math.sqrt(60)
    assert level_wander(flat, counts, noise=1.0) < 0.05


def test_wander_is_zero_for_independent_means_and_the_level_sd_for_a_slow_wave() -> None:
    rng = np.random.default_rng(4)
    assert wander([rng.standard_normal(10_000)], 1.0) < 0.05
    wave = np.repeat(rng.choice([-1.0, 1.0], size=64), 1_000)  # levels +-1 held 1,000 long
    assert wander([wave], 0.0) == pytest.approx(1.0, rel=0.2)


def test_block_bootstrap_keeps_consecutive_values_together() -> None:
    series = [np.arange(1_000.0)]
    out = block_bootstrap(np.random.default_rng(5), series, (3, 160), block=16)
    assert out.shape == (3, 160)
    steps = np.diff(out.reshape(-1, 16), axis=1)
    assert (steps == 1.0).all()  # inside a block, the original order


def test_level_wander_covers_an_hour_a_day_away_whose_rms_is_small() -> None:
    """A nightly batch: the level sits 1.25 sd up one hour in 24 and a hair down otherwise.
    Its rms over the hours is 0.26, so a gate at three rms (0.78) would page every night; the
    peak term puts the gate (3 x level_wander) at 1.5 times the excursion (a little more: the
    largest of the 28 nights' hours carries its noise, about 2 sd of 0.053)."""
    rng = np.random.default_rng(8)
    hours = np.arange(24 * 28)
    counts = np.full(hours.size, 360.0)  # a row every 10 s
    level = np.where(hours % 24 == 2, 1.25, -1.25 / 23)
    sums = counts * level + rng.standard_normal(hours.size) * np.sqrt(counts)
    rms = math.sqrt(float((level**2).mean()))
    assert rms < 0.3
    gate = 3 * level_wander(sums, counts, noise=1.0)
    assert 1.5 * 1.25 <= gate <= 1.5 * (1.25 + 4 * math.sqrt(1 / 360))
    flat = rng.standard_normal(hours.size) * np.sqrt(counts)
    assert level_wander(flat, counts, noise=1.0) < 0.05
