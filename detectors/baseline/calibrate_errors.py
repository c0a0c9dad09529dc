"""Calibrate the error-stream detectors (ADWIN, DDM) to a false-alarm budget per label.

The error stream is a run of 0/1 bits whose rate is not known before labels arrive, so each
detector is replayed on Bernoulli streams over a grid of error rates and the most cautious
setting wins (as ``detectors/baseline/calibrate.py`` does for features, and for the same reason:
river's defaults are tuned for nobody's data; DDM at its default threshold of 3 fires on most
stationary streams of 20,000 bits).

- ADWIN: its cut test is a union bound, so its false-alarm rate falls at least in proportion to
  ``delta``; a delta measured at a loud setting is scaled down to the budget.
- DDM: its statistic ``(p_i + s_i - p_min) / s_min`` peaks early in a stationary stream and then
  settles, so its drift threshold is a peaks-over-threshold fit of the replayed maxima at the
  per-stream probability the budget allows. Below about 5% errors its warm-up sees too few
  errors for ``s_min`` to mean anything: there ADWIN alone is calibrated.
"""

from __future__ import annotations

import functools
from typing import cast

import numpy as np
from numpy.typing import NDArray
from river.base import DriftDetector
from river.drift import ADWIN
from river.drift.binary import DDM

from detectors.baseline.calibrate import ADWIN_CLOCK, adwin_alarms, exponential_tail_quantile

ERROR_RATES = (0.05, 0.1, 0.25, 0.5)
DDM_WARM_START = 300
STREAMS, STREAM_LENGTH, ADWIN_EVENTS, ADWIN_PROBE_DELTA = 256, 20_000, 1_000_000, 0.1


def build(name: str, cal: dict[str, float]) -> DriftDetector:
    if name == "adwin":
        return ADWIN(delta=cal["delta"], clock=int(cal["clock"]))
    if name == "ddm":
        # A binary detector: same update() and drift_detected as the adapter reads.
        ddm = DDM(warm_start=int(cal["warm_start"]), drift_threshold=cal["drift_threshold"])
        return cast(DriftDetector, ddm)
    raise ValueError(f"unknown error detector {name!r}; one of adwin, ddm")


def ddm_maxima(streams: NDArray[np.float64], warm_start: int) -> NDArray[np.float64]:
    """The largest value river's DDM statistic reaches on each row, all rows at once."""
    n = np.arange(1, streams.shape[1] + 1)
    p = np.cumsum(streams, axis=1) / n
    s = np.sqrt(p * (1 - p) / n)
    k = streams.shape[0]
    ps_min, p_min, s_min, best = np.full(k, np.inf), np.zeros(k), np.zeros(k), np.zeros(k)
    for t in range(warm_start, streams.shape[1]):
        ps = p[:, t] + s[:, t]
        lower = ps <= ps_min
        ps_min = np.where(lower, ps, ps_min)
        p_min = np.where(lower, p[:, t], p_min)
        s_min = np.where(lower, s[:, t], s_min)
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = np.where(s_min > 0, (ps - p_min) / s_min, np.where(ps > p_min, np.inf, 0.0))
        np.maximum(best, stat, out=best)
    return best


@functools.lru_cache(maxsize=8)
def calibrate_errors(budget: float, seed: int = 0) -> dict[str, dict[str, float]]:
    """ADWIN's delta and DDM's drift threshold for at most ``budget`` false alarms per label."""
    if not 0 < budget < 1e-3:
        raise ValueError(f"budget must be in (0, 1e-3) alarms per label, got {budget}")
    rng = np.random.default_rng(seed)
    per_stream = min(0.25, budget * STREAM_LENGTH)
    threshold, rate = 0.0, 0.0
    for p in ERROR_RATES:
        streams = (rng.random((STREAMS, STREAM_LENGTH)) < p).astype(np.float64)
        threshold = max(
            threshold,
            exponential_tail_quantile(ddm_maxima(streams, DDM_WARM_START), per_stream),
        )
        bits = (rng.random(ADWIN_EVENTS) < p).astype(np.float64)
        rate = max(rate, max(adwin_alarms(bits, ADWIN_PROBE_DELTA), 5) / ADWIN_EVENTS)
    delta = min(max(ADWIN_PROBE_DELTA * budget / rate, 1e-15), 0.01)
    return {
        "adwin": {"delta": delta, "clock": float(ADWIN_CLOCK)},
        "ddm": {"warm_start": float(DDM_WARM_START), "drift_threshold": threshold},
    }
