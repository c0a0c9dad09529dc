"""Normal scores: a value's rank among the training values, as a standard normal quantile.

The change detectors watch normal scores, not raw values: a lognormal's tail, a single 1e300
or a point mass at zero cannot dominate a statistic bounded to about +-4, and a shift of the
scores' mean is a shift of the median in training standard deviations, whatever the shape.

>>> m = ScoreMap.from_sample([1.0, 2.0, 3.0, 4.0])
>>> [round(m.z(x), 3) for x in (1.0, 2.5, 4.0, 1e300)]
[-1.15, 0.0, 1.15, 1.15]
>>> m.x(0.0)
2.5
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

KNOTS = 257  # quantile knots kept per feature
SERIES = 200_000  # ordered training scores kept for calibration, in at most SEGMENTS stretches
SEGMENTS = 4

_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class ScoreMap:
    """Piecewise-linear map from values to normal scores through the training quantiles; ties
    score at their mid-rank, values beyond the training range at its ends."""

    xs: tuple[float, ...]
    zs: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.xs) != len(self.zs) or not self.xs:
            raise ValueError("scores need as many knots xs as zs, and at least one")
        if any(b <= a for a, b in itertools.pairwise(self.xs)):
            raise ValueError("score knots xs must increase")

    @classmethod
    def from_sample(cls, values: Sequence[float] | NDArray[np.float64]) -> ScoreMap:
        s = np.sort(np.asarray(values, dtype=np.float64))
        r = len(s)
        unique = np.unique(s)
        if len(unique) > KNOTS:
            unique = np.unique(s[np.linspace(0, r - 1, KNOTS).round().astype(int)])
        lo = np.searchsorted(s, unique, side="left")
        hi = np.searchsorted(s, unique, side="right")
        zs = [_NORMAL.inv_cdf(float(p)) for p in (lo + hi) / (2 * r)]
        if len(unique) == 1:
            zs = [0.0]
        return cls(tuple(unique.tolist()), tuple(zs))

    @classmethod
    def linear(cls, mean: float, std: float) -> ScoreMap:
        """Standardization clipped at 4 sd: for a baseline built before normal scores."""
        return cls((mean - 4 * std, mean + 4 * std), (-4.0, 4.0))

    def z(self, x: float) -> float:
        xs, zs = self.xs, self.zs
        i = bisect.bisect_left(xs, x)
        if i == 0:
            return zs[0]
        if i == len(xs):
            return zs[-1]
        if xs[i] == x:
            return zs[i]
        # numpy.interp's own arithmetic, so a column scored by np.interp matches to the bit
        slope = (zs[i] - zs[i - 1]) / (xs[i] - xs[i - 1])
        return slope * (x - xs[i - 1]) + zs[i - 1]

    def x(self, z: float) -> float:
        """The value whose score is z (the inverse map), for messages."""
        xs, zs = self.xs, self.zs
        i = bisect.bisect_left(zs, z)
        if i == 0:
            return xs[0]
        if i == len(zs):
            return xs[-1]
        if zs[i] == zs[i - 1]:
            return xs[i]
        t = (z - zs[i - 1]) / (zs[i] - zs[i - 1])
        return xs[i - 1] + t * (xs[i] - xs[i - 1])

    def percentile(self, z: float) -> float:
        return 100 * _NORMAL.cdf(z)

    def to_json(self) -> dict[str, list[float]]:
        return {"x": list(self.xs), "z": list(self.zs)}

    @classmethod
    def from_json(cls, data: dict[str, list[float]]) -> ScoreMap:
        return cls(tuple(float(v) for v in data["x"]), tuple(float(v) for v in data["z"]))


@dataclass(slots=True)
class OrderedSample:
    """The training's normal scores in time order, in up to SEGMENTS evenly spaced stretches
    of SERIES / SEGMENTS rows (the whole series when it is shorter): what the change detectors
    are calibrated on, with their autocorrelation intact. Missing rows are skipped."""

    rows: int
    starts: list[int] = field(default_factory=list)
    length: int = 0
    values: list[NDArray[np.float64]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.rows <= SERIES:
            self.starts, self.length = [0], self.rows
        else:
            self.length = SERIES // SEGMENTS
            step = (self.rows - self.length) // (SEGMENTS - 1)
            self.starts = [i * step for i in range(SEGMENTS)]
        self.values = [np.full(self.length, np.nan) for _ in self.starts]

    def add(self, position: int, z: float) -> None:
        """``position`` is the row's place in time order (rows may arrive out of it)."""
        for start, values in zip(self.starts, self.values, strict=True):
            if start <= position < start + self.length:
                values[position - start] = z
                return

    def segments(self) -> list[NDArray[np.float64]]:
        kept = [v[~np.isnan(v)] for v in self.values]
        return [v for v in kept if v.size]
