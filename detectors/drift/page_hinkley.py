"""river's Page-Hinkley over a block of values at once: the same alarms at the same indices,
its state kept in the river object itself (so checkpoints, detectors/drift/change_state.py,
read and write it as before).

With alpha = 1 (what calibration uses) river's test is a CUSUM of x - running mean - delta
(and + delta, the other side): the running mean, the sums and their running extremes are
cumulative sums and accumulated minima and maxima. The first alarm of a block ends the
vectorised stretch; river resets on the value after an alarm, and so does this.

>>> from river.drift import PageHinkley
>>> rng = np.random.default_rng(7)
>>> xs = np.concatenate([rng.normal(0, 1, 500), rng.normal(1, 1, 500)])
>>> river_ph = PageHinkley(min_instances=30, delta=0.25, threshold=40.0, alpha=1.0)
>>> one_by_one = [i for i, x in enumerate(xs) if (river_ph.update(x), river_ph.drift_detected)[1]]
>>> ph = PageHinkley(min_instances=30, delta=0.25, threshold=40.0, alpha=1.0)
>>> update_many(ph, xs[:700]) + [700 + i for i in update_many(ph, xs[700:])]
[567]
>>> one_by_one
[567]
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from river.drift import PageHinkley

from detectors.drift.river_loop import one_by_one


def update_many(d: PageHinkley, xs: NDArray[np.float64]) -> list[int]:
    """``d.update(x)`` for each x in order; the indices at which ``d.drift_detected`` was
    True. Any alpha other than 1 (a fading sum) takes river's loop."""
    if d.alpha != 1.0:
        return one_by_one(d, xs)
    out, lo, n = [], 0, len(xs)
    while lo < n:
        at = _stretch(d, xs[lo:])
        if at is None:
            break
        out.append(lo + at)
        lo += at + 1
    return out


def _stretch(d: PageHinkley, xs: NDArray[np.float64]) -> int | None:
    """Advance ``d`` over xs up to and including its first alarm; that alarm's index, or None
    when it took all of xs quietly."""
    if d.drift_detected:
        d._reset()
    mean = d._x_mean
    n0, m0 = float(mean.n), float(mean.get())
    ns = n0 + np.arange(1, len(xs) + 1, dtype=np.float64)
    means = (n0 * m0 + np.cumsum(xs)) / ns
    dev = xs - means
    up = d._sum_increase + np.cumsum(dev - d.delta)
    down = d._sum_decrease + np.cumsum(dev + d.delta)
    low = np.minimum(d._min_increase, np.minimum.accumulate(up))
    high = np.maximum(d._max_decrease, np.maximum.accumulate(down))
    inc, dec = up - low > d.threshold, high - down > d.threshold
    fired = inc | dec if d.mode == "both" else (inc if d.mode == "up" else dec)
    fired &= ns >= d.min_instances
    hits = np.flatnonzero(fired)
    k = int(hits[0]) if len(hits) else len(xs) - 1
    mean.n, mean._mean = float(ns[k]), float(means[k])
    d._sum_increase, d._sum_decrease = float(up[k]), float(down[k])
    d._min_increase, d._max_decrease = float(low[k]), float(high[k])  # type: ignore[assignment]
    d._drift_detected = bool(len(hits))
    return k if len(hits) else None
