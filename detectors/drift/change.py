"""Per-event change detectors: river's Page-Hinkley and ADWIN, with calibrated parameters from
the baseline. A feature's detectors (``FeatureChange``) watch block means of normal scores
(detectors/baseline/calibrate.py says why); the label path's error streams use
``StandardizedChange`` directly.

>>> cal = {"delta": 0.25, "threshold": 40.0, "alpha": 1.0, "min_instances": 30.0}
>>> d = StandardizedChange("page_hinkley", page_hinkley(cal), mean=10.0, std=2.0)
>>> [d.update(10.0 + (i % 3 - 1)) for i in range(300)].count(None)
300
>>> next(c for c in (d.update(14.0) for _ in range(500)) if c).detector
'page_hinkley'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from river.base import DriftDetector
from river.drift import ADWIN, PageHinkley
from scipy.signal import lfilter

from detectors.baseline.scores import ScoreMap
from detectors.drift.adwin import update_many as adwin_many
from detectors.drift.page_hinkley import update_many as page_hinkley_many
from detectors.drift.river_loop import one_by_one

EWMA_WEIGHT = 1 / 64


def ewma(xs: NDArray[np.float64], start: float, weight: float) -> NDArray[np.float64]:
    """The exponentially weighted mean after each of xs, from ``start``: ``weight * x + (1 -
    weight) * previous``, in order. lfilter runs that recurrence in C with the same two
    products and one sum per value, so it equals ``ewma_step`` value by value, to the bit.

    >>> ewma(np.array([1.0, 1.0]), 0.0, 0.5).tolist(), ewma_step(ewma_step(0.0, 1.0, 0.5), 1.0, 0.5)
    ([0.5, 0.75], 0.75)
    """
    if len(xs) == 0:
        return np.empty(0)
    keep = 1.0 - weight
    out, _ = lfilter([weight], [1.0, -keep], xs, zi=[keep * start])
    return np.asarray(out, dtype=np.float64)


def ewma_step(previous: float, x: float, weight: float) -> float:
    return weight * x + (1.0 - weight) * previous


@dataclass(frozen=True, slots=True)
class Change:
    detector: str
    seen: int
    shift: float  # recent mean score minus training's, in training standard deviations
    threshold: float = 0.5  # the smallest shift the detector targets, same units
    center: float = 0.0  # training's mean score (not 0 for ties: mid-ranks of a point mass)


def page_hinkley(cal: dict[str, float]) -> PageHinkley:
    return PageHinkley(
        min_instances=int(cal["min_instances"]),
        delta=cal["delta"],
        threshold=cal["threshold"],
        alpha=cal["alpha"],
        mode="both",
    )


def adwin(cal: dict[str, float]) -> ADWIN:
    return ADWIN(delta=cal["delta"], clock=int(cal["clock"]))


BUILDERS = {"page_hinkley": page_hinkley, "adwin": adwin}


class StandardizedChange:
    """One river detector over (x - mean) / std. The only place that reads river's
    ``drift_detected``: river's detector API has changed shape over the years."""

    def __init__(self, name: str, detector: DriftDetector, mean: float, std: float) -> None:
        if not math.isfinite(mean):
            raise ValueError(f"mean must be finite, got {mean}")
        if not std > 0 or not math.isfinite(std):
            raise ValueError(f"std must be positive and finite, got {std}")
        self.name = name
        self.detector = detector
        self.mean = mean
        self.std = std
        self.seen = 0
        self.recent = 0.0  # exponentially weighted mean of the standardized values

    def update_many(self, xs: NDArray[np.float64]) -> list[int]:
        """``update`` over xs in order; the indices at which the detector fired."""
        zs = (xs - self.mean) / self.std
        if len(zs):
            self.recent = float(ewma(zs, self.recent, EWMA_WEIGHT)[-1])
        self.seen += len(zs)
        if isinstance(self.detector, PageHinkley):
            return page_hinkley_many(self.detector, zs)
        if isinstance(self.detector, ADWIN):
            return adwin_many(self.detector, zs)
        return one_by_one(self.detector, zs)

    def update(self, x: float) -> Change | None:
        z = (x - self.mean) / self.std
        self.seen += 1
        self.recent = ewma_step(self.recent, z, EWMA_WEIGHT)
        self.detector.update(z)
        if self.detector.drift_detected:
            return Change(self.name, self.seen, self.recent)
        return None


class FeatureChange:
    """A numeric feature's change detectors: each value becomes its normal score, scores are
    averaged over blocks of ``block`` values, and each block mean, standardized by the
    training's block means, feeds every detector. An alarm counts only once the recent scores
    (an exponentially weighted mean over about four blocks, at least 64 values) sit at least
    half the smallest targeted shift from training's: a change smaller than what the training
    level wanders by itself is no change.

    >>> cal = {"page_hinkley": {"delta": 0.25, "threshold": 40.0, "alpha": 1.0,
    ...                         "min_instances": 30.0},
    ...        "blocks": {"size": 1.0, "mean": 0.0, "std": 1.0, "shift": 0.5}}
    >>> d = FeatureChange.of(cal, ScoreMap.linear(10.0, 2.0))
    >>> [d.update(10.0 + (i % 3 - 1)) for i in range(300)].count(None)
    300
    >>> next(c for c in (d.update(14.0) for _ in range(500)) if c).detector
    'page_hinkley'
    """

    def __init__(
        self,
        scores: ScoreMap,
        detectors: list[StandardizedChange],
        block: int,
        shift: float,
    ) -> None:
        if block < 1:
            raise ValueError(f"block must be at least 1, got {block}")
        if not shift > 0:
            raise ValueError(f"shift must be positive, got {shift}")
        self.scores = scores
        self.detectors = detectors
        self.block = block
        self.shift = shift
        self.center = detectors[0].mean if detectors else 0.0  # training's mean block score
        self.weight = 1 / max(64, 4 * block)
        self.seen = 0
        self.recent = 0.0
        self.total = 0.0  # scores of the block being filled
        self.filled = 0

    @classmethod
    def of(cls, calibration: dict[str, dict[str, float]], scores: ScoreMap) -> FeatureChange:
        blocks = calibration.get("blocks", {"size": 1.0, "mean": 0.0, "std": 1.0, "shift": 0.5})
        detectors = [
            StandardizedChange(name, BUILDERS[name](params), blocks["mean"], blocks["std"])
            for name, params in calibration.items()
            if name in BUILDERS
        ]
        return cls(scores, detectors, int(blocks["size"]), blocks["shift"])

    def update(self, x: float) -> Change | None:
        z = self.scores.z(x)
        self.seen += 1
        self.recent = ewma_step(self.recent, z - self.center, self.weight)
        self.total += z
        self.filled += 1
        if self.filled < self.block:
            return None
        mean = self.total / self.filled
        self.total, self.filled = 0.0, 0
        fired = None  # _block, inlined: this runs for every value of a record-by-record stream
        for d in self.detectors:
            if d.update(mean) is not None and fired is None and abs(self.recent) >= self.shift / 2:
                fired = Change(d.name, self.seen, self.recent, self.shift, self.center)
        return fired

    def update_many(self, xs: NDArray[np.float64]) -> list[tuple[int, Change]]:
        """``update`` over finite values in order, as (index, change) of the alarms: scores by
        np.interp (``ScoreMap.z`` does numpy's arithmetic), the running mean and block sums in
        the same order; then each detector takes the run's completed block means at once
        (Page-Hinkley vectorised, detectors/drift/page_hinkley.py; ADWIN's core in a loop,
        detectors/drift/adwin.py)."""
        if len(xs) == 0:
            return []
        zs = np.interp(xs, self.scores.xs, self.scores.zs)
        recents = ewma(zs - self.center, self.recent, self.weight)
        means, ends, self.total, self.filled = _block_means(zs, self.block, self.total, self.filled)
        seen = self.seen
        self.seen += len(zs)
        self.recent = float(recents[-1])
        if not means:
            return []
        alarms: dict[int, str] = {}  # block -> the first detector (in order) that counts
        gate = self.shift / 2
        for d in self.detectors:
            for j in d.update_many(np.asarray(means)):
                if j not in alarms and abs(recents[ends[j]]) >= gate:
                    alarms[j] = d.name
        return [
            (
                ends[j],
                Change(name, seen + ends[j] + 1, float(recents[ends[j]]), self.shift, self.center),
            )
            for j, name in sorted(alarms.items())
        ]


def _block_means(
    zs: NDArray[np.float64], block: int, total: float, filled: int
) -> tuple[list[float], list[int], float, int]:
    """The means of the blocks zs completes, given the open block's sum and count, with the
    index of the value that completed each, and the new open block's sum and count. Sums are
    cumulative in order (numpy's accumulate is sequential), as ``update`` adds them."""
    n, first = len(zs), block - filled  # values that complete the open block
    if first > n:
        return [], [], float(np.cumsum(np.concatenate(([total], zs)))[-1]), filled + n
    sums = [float(np.cumsum(np.concatenate(([total], zs[:first])))[-1])]
    whole = (n - first) // block
    rows = zs[first : first + whole * block].reshape(whole, block)
    sums += np.cumsum(rows, axis=1)[:, -1].tolist()
    rest = zs[first + whole * block :]
    open_sum = float(np.cumsum(rest)[-1]) if len(rest) else 0.0
    ends = list(range(first - 1, first + whole * block, block))
    return [t / block for t in sums], ends, open_sum, len(rest)


def feature_change(
    calibration: dict[str, dict[str, float]], scores: ScoreMap | None, mean: float, std: float
) -> FeatureChange | None:
    """A feature's detectors; None when it has no calibration or cannot be scored."""
    if not calibration or not any(n in BUILDERS for n in calibration):
        return None
    if scores is None:
        if not (std > 0 and math.isfinite(std) and math.isfinite(mean)):
            return None
        scores = ScoreMap.linear(mean, std)
    return FeatureChange.of(calibration, scores)


def detectors_for(
    calibration: dict[str, dict[str, float]], mean: float, std: float
) -> list[StandardizedChange]:
    """Every calibrated detector of one feature; none when the feature cannot be standardized."""
    if not (std > 0 and math.isfinite(std) and math.isfinite(mean)):
        return []
    return [
        StandardizedChange(name, BUILDERS[name](params), mean, std)
        for name, params in calibration.items()
        if name in BUILDERS
    ]
