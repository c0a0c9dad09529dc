"""Calibrate change detectors on training data to a false-alarm budget.

River's defaults are tuned for nobody's data: Page-Hinkley at its defaults fires about 65 times
per 100,000 stationary N(0, 1) values. Here the detectors watch the training's own normal
scores (detectors/baseline/scores.py) in time order, so heavy tails and absurd values cannot fool
them, and autocorrelation is learned rather than assumed away:

- Block means. Scores are averaged over blocks of ``b`` consecutive values, ``b`` the smallest
  power of two at which consecutive block means are nearly uncorrelated (lag-1 autocorrelation
  at most ``rho_max``); independent data keeps b = 1. A block adds at most b events of delay.
- Smallest shift. A level that wanders by itself in training (a daily cycle, a slow AR process)
  raises the smallest shift worth an alarm to ``wander_sd`` times the wandering, so the
  detectors do not page on the cycle they were trained on.
- Block bootstrap. No-drift replay streams are cut from the block-mean series in stretches of
  ``bootstrap_block`` means, which keep what autocorrelation is left.

Budgets such as one alarm per billion events cannot be observed directly in a replay, so each
calibration measures where alarms are frequent and extrapolates along the shape theory gives:

- Page-Hinkley (a CUSUM): the maximum of its statistic over a stream has an exponential upper
  tail, so the threshold is a peaks-over-threshold fit of the replayed maxima.
- ADWIN: its cut test is a union bound, so its false-alarm rate falls at least in proportion to
  ``delta``; a delta measured at a loud setting is scaled down to the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from river.drift import ADWIN
from scipy.stats import chi2

# River fades its sums by default (alpha < 1); that turns the statistic into the range of a
# stationary AR(1) process, whose false alarms grow with stream length. alpha = 1 is the true
# CUSUM, whose false-alarm rate per event does not depend on how long it has run.
PH_ALPHA = 1.0
PH_MIN_INSTANCES = 30
ADWIN_CLOCK = 32
PH_MARGIN = 1.5  # measured: without it, 2 alarms in 10M stationary AR(0.99) events (budget 0.01)
MIN_MEANS = 64  # fewest block means to measure a block size's autocorrelation on


@dataclass(frozen=True, slots=True)
class CalibrationOptions:
    budget: float = 1e-9
    min_shift: float = 0.5
    streams: int = 512
    stream_length: int = 20_000
    adwin_events: int = 200_000
    adwin_probe_delta: float = 0.1
    max_block: int = 1024
    rho_max: float = 0.2
    wander_sd: float = 6.0  # twice the 3 sd of natural excursions: the gate is half of it
    bootstrap_block: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.budget < 1e-3:
            raise ValueError(f"budget must be in (0, 1e-3) alarms per event, got {self.budget}")
        if self.min_shift <= 0:
            raise ValueError(
                f"min_shift must be positive (in standard deviations), got {self.min_shift}"
            )
        if self.streams < 4:
            raise ValueError(f"streams must be at least 4 to fit a tail, got {self.streams}")
        if self.stream_length < 10 * PH_MIN_INSTANCES:
            raise ValueError(
                f"stream_length must be at least {10 * PH_MIN_INSTANCES}, got {self.stream_length}"
            )
        if self.adwin_events < 1_000:
            raise ValueError(f"adwin_events must be at least 1000, got {self.adwin_events}")
        if not 0 < self.adwin_probe_delta < 1:
            raise ValueError(f"adwin_probe_delta must be in (0, 1), got {self.adwin_probe_delta}")
        if self.max_block < 1:
            raise ValueError(f"max_block must be at least 1, got {self.max_block}")
        if not 0 < self.rho_max < 1:
            raise ValueError(f"rho_max must be in (0, 1), got {self.rho_max}")
        if self.wander_sd < 0:
            raise ValueError(f"wander_sd must be >= 0, got {self.wander_sd}")
        if self.bootstrap_block < 1:
            raise ValueError(f"bootstrap_block must be at least 1, got {self.bootstrap_block}")


def page_hinkley_maxima(
    streams: NDArray[np.float64],
    delta: float,
    alpha: float = PH_ALPHA,
    min_instances: int = PH_MIN_INSTANCES,
) -> NDArray[np.float64]:
    """The largest two-sided statistic river's PageHinkley reaches on each row of ``streams``,
    computed for all rows at once with river's exact recursion."""
    k, length = streams.shape
    mean = np.zeros(k)
    s_inc, s_dec = np.zeros(k), np.zeros(k)
    min_inc, max_dec = np.full(k, np.inf), np.full(k, -1.0)
    best = np.zeros(k)
    for t in range(length):
        x = streams[:, t]
        mean += (x - mean) / (t + 1)
        dev = x - mean
        s_inc = alpha * s_inc + dev - delta
        s_dec = alpha * s_dec + dev + delta
        np.minimum(min_inc, s_inc, out=min_inc)
        np.maximum(max_dec, s_dec, out=max_dec)
        if t + 1 >= min_instances:
            np.maximum(best, np.maximum(s_inc - min_inc, max_dec - s_dec), out=best)
    return best


def exponential_tail_quantile(maxima: NDArray[np.float64], probability: float) -> float:
    """The level exceeded with ``probability``, from an exponential fit to the top quarter."""
    u = float(np.quantile(maxima, 0.75))
    excess = maxima[maxima > u] - u
    scale = float(excess.mean()) if excess.size else 1.0
    return u + scale * math.log(0.25 / probability)


def block_means(segments: list[NDArray[np.float64]], b: int) -> list[NDArray[np.float64]]:
    """Means of consecutive, non-overlapping blocks of b values within each segment."""
    return [seg[: len(seg) // b * b].reshape(-1, b).mean(axis=1) for seg in segments]


def lag1(series: list[NDArray[np.float64]]) -> float:
    """Lag-1 autocorrelation pooled over segments (pairs never straddle two segments)."""
    mean = float(np.concatenate(series).mean())
    num = sum(float(((s[1:] - mean) * (s[:-1] - mean)).sum()) for s in series)
    den = sum(float(((s - mean) ** 2).sum()) for s in series)
    return num / den if den > 0 else 0.0


def choose_block(segments: list[NDArray[np.float64]], opts: CalibrationOptions) -> int:
    b = 1
    while 2 * b <= opts.max_block:
        means = block_means(segments, b)
        if sum(len(m) for m in means) < 2 * MIN_MEANS or abs(lag1(means)) <= opts.rho_max:
            break
        b *= 2
    return b


def wander(means: list[NDArray[np.float64]], sd: float) -> float:
    """How far the level moves by itself: the largest standard deviation of chunk means beyond
    what noise explains (with a margin for the estimate's own error), over chunks of 1, 2, 4,
    ... block means while at least 16 chunks remain. Zero for independent means."""
    total = sum(len(m) for m in means)
    best, k = 0.0, 1
    while total // k >= 16:
        chunks = np.concatenate([m[: len(m) // k * k].reshape(-1, k).mean(axis=1) for m in means])
        noise = sd * sd / k * (1 + 3 * math.sqrt(2 / (len(chunks) - 1)))
        best = max(best, float(chunks.var(ddof=1)) - noise)
        k *= 2
    return math.sqrt(best)


PEAK_MARGIN = 1.5  # the gate (3 wanderings) at this much past the largest hourly excursion


def level_wander(
    sums: NDArray[np.float64], counts: NDArray[np.float64], noise: float, ceiling: float = math.inf
) -> float:
    """How far the level moves over time: the spread of the scores' mean per time bucket
    (an hour, say) beyond noise: ``noise / n`` for a bucket of n scores (the long-run variance
    per score), never more than ``ceiling`` (the scores' variance); or, when larger, the largest
    bucket's excursion beyond noise times PEAK_MARGIN / 3, so that the gate (three wanderings)
    clears every excursion training had, whatever the cycle's shape."""
    keep = counts > 0
    if keep.sum() < 16:
        return 0.0
    means, n = sums[keep] / counts[keep], counts[keep]
    centre = float((means * n).sum() / n.sum())
    spread = float(((means - centre) ** 2).mean())
    var = np.minimum(noise / n, ceiling)
    expected = float(var.mean()) * (1 + 3 * math.sqrt(2 / (len(n) - 1)))
    rms = math.sqrt(max(0.0, spread - expected))
    # The largest excursion, each bucket's squared one less what noise alone reaches in the
    # largest of that many buckets: a level away one hour a day (a nightly batch) has an rms a
    # fifth of its peak, and the gate at 3 rms (wander_sd / 2) would let that hour page.
    reach = float(chi2.isf(0.01 / len(n), 1))  # noise passes it in 1% of trainings
    peak = math.sqrt(max(0.0, float(((means - centre) ** 2 - reach * var).max())))
    return max(rms, PEAK_MARGIN * peak / 3)


def block_bootstrap(
    rng: np.random.Generator, series: list[NDArray[np.float64]], shape: tuple[int, int], block: int
) -> NDArray[np.float64]:
    """Streams of ``shape`` cut from the series in stretches of ``block`` consecutive values."""
    usable = [s for s in series if len(s) >= block] or [np.concatenate(series)]
    block = min(block, min(len(s) for s in usable))
    starts = [(i, j) for i, s in enumerate(usable) for j in range(len(s) - block + 1)]
    k, length = shape
    n_blocks = -(-length // block)
    picks = rng.integers(len(starts), size=k * n_blocks)
    rows = [usable[starts[p][0]][starts[p][1] : starts[p][1] + block] for p in picks]
    return np.concatenate(rows).reshape(k, n_blocks * block)[:, :length]


@dataclass(frozen=True, slots=True)
class Blocks:
    """The block-mean series a feature's detectors are calibrated on."""

    size: int
    mean: float
    std: float
    shift: float  # smallest shift (normal-score sd) worth an alarm
    series: list[NDArray[np.float64]]  # standardized block means, per segment


Buckets = tuple[NDArray[np.float64], NDArray[np.float64]]  # per time bucket: score sums, counts


def blocks_of(
    segments: list[NDArray[np.float64]], opts: CalibrationOptions, buckets: Buckets | None = None
) -> Blocks:
    b = choose_block(segments, opts)
    means = [m for m in block_means(segments, b) if len(m)]
    pooled = np.concatenate(means)
    mean, sd = float(pooled.mean()), float(pooled.std(ddof=1)) if len(pooled) > 1 else 0.0
    sd = sd if sd > 0 else 1.0
    moves = wander(means, sd)
    if buckets is not None:
        scores = np.concatenate(segments)
        moves = max(moves, level_wander(*buckets, noise=sd * sd * b, ceiling=float(scores.var())))
    rho = lag1(means)
    if rho > opts.rho_max:  # still correlated at the largest block: a level that persists
        moves = max(moves, sd * math.sqrt(rho))
    shift = max(opts.min_shift, opts.wander_sd * moves)
    return Blocks(b, mean, sd, shift, [(m - mean) / sd for m in means])


def calibrate_page_hinkley(blocks: Blocks, opts: CalibrationOptions) -> dict[str, float]:
    rng = np.random.default_rng(opts.seed)
    length = max(10 * PH_MIN_INSTANCES, opts.stream_length // blocks.size)
    streams = block_bootstrap(rng, blocks.series, (opts.streams, length), opts.bootstrap_block)
    delta = blocks.shift / 2 / blocks.std  # CUSUM's reference: half the smallest shift
    maxima = page_hinkley_maxima(streams, delta)
    per_stream = min(0.25, opts.budget * blocks.size * length)
    # The tail of replayed maxima is fitted where alarms are common and extrapolated far; what
    # correlation the block means keep makes it heavier than exponential: a margin for that.
    threshold = PH_MARGIN * exponential_tail_quantile(maxima, per_stream)
    return {
        "delta": delta,
        "threshold": threshold,
        "alpha": PH_ALPHA,
        "min_instances": float(PH_MIN_INSTANCES),
    }


def adwin_alarms(values: NDArray[np.float64], delta: float) -> int:
    detector = ADWIN(delta=delta, clock=ADWIN_CLOCK)
    alarms = 0
    for x in values.tolist():
        detector.update(x)
        alarms += detector.drift_detected
    return alarms


def calibrate_adwin(blocks: Blocks, opts: CalibrationOptions) -> dict[str, float]:
    rng = np.random.default_rng(opts.seed + 1)
    length = max(2_000, opts.adwin_events // blocks.size)
    stream = block_bootstrap(rng, blocks.series, (1, length), opts.bootstrap_block)[0]
    alarms = adwin_alarms(stream, opts.adwin_probe_delta)
    # Fewer than five alarms is too few to measure a rate: bound it as if five had fired.
    rate = max(alarms, 5) / length
    delta = opts.adwin_probe_delta * opts.budget * blocks.size / rate
    return {"delta": float(min(max(delta, 1e-15), 0.01)), "clock": float(ADWIN_CLOCK)}


def calibrate(
    segments: list[NDArray[np.float64]] | NDArray[np.float64],
    opts: CalibrationOptions,
    buckets: Buckets | None = None,
) -> dict[str, dict[str, float]]:
    """Calibrated parameters of every change detector, from the training's normal scores in
    time order (one array, or stretches of it), and per time bucket (an hour) the scores' sum
    and count when the training rows carry their time."""
    series = [segments] if isinstance(segments, np.ndarray) else list(segments)
    n = sum(len(s) for s in series)
    if n < 100:
        raise ValueError(f"need at least 100 training values to calibrate, got {n}")
    blocks = blocks_of(series, opts, buckets)
    return {
        "page_hinkley": calibrate_page_hinkley(blocks, opts),
        "adwin": calibrate_adwin(blocks, opts),
        "blocks": {
            "size": float(blocks.size),
            "mean": blocks.mean,
            "std": blocks.std,
            "shift": blocks.shift,
        },
    }
