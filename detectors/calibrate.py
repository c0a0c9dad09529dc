"""Calibrate change detectors on training data to a false-alarm budget.

River's defaults are tuned for nobody's data: Page-Hinkley at its defaults fires about 65 times
per 100,000 stationary N(0, 1) values. Here each detector is replayed on bootstrap streams drawn
from the feature's own standardized training values (which carry its real skew and ties) and
its threshold is set so that false alarms stay under ``budget`` per event.

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

# River fades its sums by default (alpha < 1); that turns the statistic into the range of a
# stationary AR(1) process, whose false alarms grow with stream length. alpha = 1 is the true
# CUSUM, whose false-alarm rate per event does not depend on how long it has run.
PH_ALPHA = 1.0
PH_MIN_INSTANCES = 30
ADWIN_CLOCK = 32


@dataclass(frozen=True, slots=True)
class CalibrationOptions:
    budget: float = 1e-9
    min_shift: float = 0.5
    streams: int = 256
    stream_length: int = 20_000
    adwin_events: int = 200_000
    adwin_probe_delta: float = 0.1
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


def calibrate_page_hinkley(
    values: NDArray[np.float64], opts: CalibrationOptions
) -> dict[str, float]:
    rng = np.random.default_rng(opts.seed)
    streams = rng.choice(values, size=(opts.streams, opts.stream_length), replace=True)
    delta = opts.min_shift / 2  # CUSUM's reference value: half the smallest shift to catch
    maxima = page_hinkley_maxima(streams, delta)
    per_stream = min(0.25, opts.budget * opts.stream_length)
    threshold = exponential_tail_quantile(maxima, per_stream)
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


def calibrate_adwin(values: NDArray[np.float64], opts: CalibrationOptions) -> dict[str, float]:
    rng = np.random.default_rng(opts.seed + 1)
    stream = rng.choice(values, size=opts.adwin_events, replace=True)
    alarms = adwin_alarms(stream, opts.adwin_probe_delta)
    # Fewer than five alarms is too few to measure a rate: bound it as if five had fired.
    rate = max(alarms, 5) / opts.adwin_events
    delta = opts.adwin_probe_delta * opts.budget / rate
    return {"delta": float(min(max(delta, 1e-15), 0.01)), "clock": float(ADWIN_CLOCK)}


def calibrate(values: NDArray[np.float64], opts: CalibrationOptions) -> dict[str, dict[str, float]]:
    """Calibrated parameters of every change detector, from standardized training values."""
    if values.size < 100:
        raise ValueError(f"need at least 100 training values to calibrate, got {values.size}")
    return {
        "page_hinkley": calibrate_page_hinkley(values, opts),
        "adwin": calibrate_adwin(values, opts),
    }
