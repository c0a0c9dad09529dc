"""Sequential tests of event rates: missing values, schema violations, category shares.

A window test of a rate waits for the window to close: a 10% missing spike at 500 events/s in
60 s windows is reported up to 30,000 events late. A Bernoulli CUSUM judges each event as it
arrives: it accumulates the log-likelihood ratio of "rate p1" against "rate p0" and alarms when
the sum passes ``h``. Its false-alarm rate per event is at most exp(-h) (Lorden's bound on the
run length), so h = ln(1 / budget), inflated by how much more the training's own rate varies
than independent events would (detectors/baseline/null_levels.py).

Only hits (a missing value, a violation, one category) move a CUSUM up; between hits it falls
by a constant step, so it is updated lazily at hits from the count of events in between: O(1)
per event for a feature, whatever the number of categories.

>>> c = RateCusum(p0=0.01, p1=0.06, h=math.log(1e9))
>>> any(c.hit(t) for t in range(0, 10_000, 100))  # 1% hits: quiet
False
>>> next(t for t in range(10_000, 20_000, 10) if c.hit(t)) - 10_000  # 10%: caught
150
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

SCALAR_HITS = 64  # after a hit at the cap, this many hits go one by one before numpy again


@dataclass(frozen=True, slots=True)
class RateAlarm:
    test: str  # "missing", "violation" (a type break), "range" or "category"
    what: str  # "missing", the violation code, or the category's value
    rate: float  # hits over events since the CUSUM last stood at zero
    events: int
    baseline: float  # the training's rate
    tolerated: float  # the rate the CUSUM holds as in control (p0)


class RateCusum:
    """A one-sided Bernoulli CUSUM for a rate rising from p0 to at least p1."""

    def __init__(self, p0: float, p1: float, h: float) -> None:
        if not 0 < p0 < p1 < 1:
            raise ValueError(f"need 0 < p0 < p1 < 1, got p0={p0}, p1={p1}")
        if not h > 0:
            raise ValueError(f"h must be positive, got {h}")
        self.p0, self.p1, self.h = p0, p1, h
        self.up = math.log(p1 / p0)
        self.down = math.log((1 - p1) / (1 - p0))  # < 0: each event that is not a hit
        self.s = 0.0
        self.last = -1  # event index of the last hit
        self.run_start = 0  # first event of the current climb
        self.run_hits = 0
        self.armed = True

    def hit(self, t: int) -> bool:
        """Event ``t`` (counting every event of the feature from 0) is a hit; True on alarm.
        One alarm per episode: the sum then stays capped at h, and the test is armed again
        only once the rate has fallen back and the sum with it to zero."""
        s = self.s + self.down * (t - self.last - 1)
        if s <= 0:
            s, self.run_start, self.run_hits, self.armed = 0.0, t, 0, True
        self.s = min(self.h, s + self.up)
        self.run_hits += 1
        self.last = t
        if self.s < self.h or not self.armed:
            return False
        self.armed = False
        return True

    def hits(self, ts: NDArray[np.int64]) -> list[tuple[int, float, int]]:
        """``hit`` at each of the increasing event indices ``ts``: (t, rate, events of the
        climb) of each alarm, as ``hit`` one by one would give them. Between the hits at the
        cap h the recursion is Lindley's, r_j = max(0, r_{j-1} + w_j), which is
        C_j - min(0, min_{i<=j} C_i) for C the cumulative sum of the steps w: a cumsum and a
        minimum.accumulate. A hit that reaches h (an alarm, or the capped sum of an episode)
        and the few after it go through ``hit`` itself.

        >>> c = RateCusum(p0=0.01, p1=0.06, h=math.log(1e9))
        >>> c.hits(np.arange(0, 10_000, 100))  # 1% hits: quiet
        []
        >>> [t - 10_000 for t, _, _ in c.hits(np.arange(10_000, 20_000, 10))]  # 10%: caught
        [150]
        """
        out: list[tuple[int, float, int]] = []
        lo, m = 0, len(ts)
        while lo < m:
            k = self._lindley(ts[lo:])
            lo += k
            stop = min(m, lo + SCALAR_HITS) if lo < m else m
            for t in ts[lo:stop].tolist():
                if self.hit(t):
                    out.append((t, self.rate(t), t - self.run_start + 1))
            lo = stop
        return out

    def _lindley(self, ts: NDArray[np.int64]) -> int:
        """The hits of ``ts`` before the first that reaches h, applied at once; how many."""
        gaps = np.diff(ts, prepend=self.last) - 1
        w = self.down * gaps.astype(np.float64) + self.up
        w[0] = self.s + self.down * float(gaps[0])  # the first step starts from s itself
        c = np.cumsum(w)
        floor = np.minimum.accumulate(np.minimum(c, 0.0))
        r = c - floor  # the sums after any reset, before this hit's +up
        high = np.flatnonzero(r + self.up >= self.h)
        k = int(high[0]) if len(high) else len(ts)
        if k == 0:
            return 0
        before = np.concatenate(([0.0], floor[: k - 1]))
        resets = np.flatnonzero(c[:k] <= before)
        if len(resets):
            j = int(resets[-1])
            self.run_start, self.run_hits, self.armed = int(ts[j]), k - j, True
        else:
            self.run_hits += k
        self.s = float(r[k - 1]) + self.up
        self.last = int(ts[k - 1])
        return k

    def rate(self, t: int) -> float:
        return self.run_hits / max(1, t - self.run_start + 1)

    def to_plain(self) -> list[float]:
        return [self.s, self.last, self.run_start, self.run_hits, float(self.armed)]

    def restore(self, data: list[Any]) -> None:
        s, last, start, hits, armed = (float(v) for v in data)
        if not (math.isfinite(s) and s >= 0):
            raise ValueError(f"CUSUM sum {s} is not a finite non-negative number")
        self.s, self.last, self.run_start, self.run_hits = s, int(last), int(start), int(hits)
        self.armed = bool(armed)


def rise_of(base: float, floor: float) -> tuple[float, float] | None:
    """(p0, p1) for a CUSUM that respects an effect-size floor: in control up to half the floor
    above the training rate, tuned to catch one and a half floors above it, so it alarms on
    rises past about the floor, as the window tests do, and not on smaller ones. None when
    the rate cannot rise by that much (it is nearly every record already) or there is no floor.
    """
    p0, p1 = base + floor / 2, min(0.999, base + 1.5 * floor)
    return (p0, p1) if floor > 0 and p0 < 0.99 and p0 < p1 else None


def onset_of(base: float, floor: float) -> tuple[float, float] | None:
    """(p0, p1) for something training (almost) never had, a type break: any steady rate of it
    is a break, so the test is in control at training's own rate."""
    p1 = min(0.999, max(2 * base, base + floor))
    return (base, p1) if base < p1 else None


def threshold(budget: float, tests: int, inflation: float) -> float:
    """h for a false-alarm budget per event shared by ``tests`` CUSUMs."""
    return math.log(tests / budget) * inflation
