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

from detectors.baseline.scores import ScoreMap
from detectors.drift.page_hinkley import update_many as page_hinkley_many

EWMA_WEIGHT = 1 / 64


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
        recent, weight = self.recent, EWMA_WEIGHT
        for z in zs.tolist():
            recent += weight * (z - recent)
        self.recent = recent
        self.seen += len(zs)
        if isinstance(self.detector, PageHinkley):
            return page_hinkley_many(self.detector, zs)
        out = []
        update = self.detector.update
        for i, z in enumerate(zs.tolist()):
            update(z)
            if self.detector.drift_detected:
                out.append(i)
        return out

    def update(self, x: float) -> Change | None:
        z = (x - self.mean) / self.std
        self.seen += 1
        self.recent += EWMA_WEIGHT * (z - self.recent)
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
        self.recent += self.weight * (z - self.center - self.recent)
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
        (Page-Hinkley vectorised, detectors/drift/page_hinkley.py; ADWIN block by block)."""
        if len(xs) == 0:
            return []
        zs = np.interp(xs, self.scores.xs, self.scores.zs).tolist()
        weight, center, block = self.weight, self.center, self.block
        recent, total, filled = self.recent, self.total, self.filled
        means: list[float] = []
        ends: list[int] = []  # index in xs of the value that completed each block
        recents: list[float] = []
        for i, z in enumerate(zs):
            recent += weight * (z - center - recent)
            total += z
            filled += 1
            if filled == block:
                means.append(total / filled)
                ends.append(i)
                recents.append(recent)
                total, filled = 0.0, 0
        seen = self.seen
        self.seen += len(zs)
        self.recent, self.total, self.filled = recent, total, filled
        if not means:
            return []
        alarms: dict[int, str] = {}  # block -> the first detector (in order) that counts
        gate = self.shift / 2
        for d in self.detectors:
            for j in d.update_many(np.asarray(means)):
                if j not in alarms and abs(recents[j]) >= gate:
                    alarms[j] = d.name
        return [
            (ends[j], Change(name, seen + ends[j] + 1, recents[j], self.shift, self.center))
            for j, name in sorted(alarms.items())
        ]

    def _block(self, mean: float, seen: int, recent: float) -> Change | None:
        fired = None
        for d in self.detectors:
            if d.update(mean) is not None and fired is None and abs(recent) >= self.shift / 2:
                fired = Change(d.name, seen, recent, self.shift, self.center)
        return fired


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
