"""Per-event change detectors: river's Page-Hinkley and ADWIN on values standardized by the
training mean and standard deviation, with calibrated parameters from the baseline.

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

from river.base import DriftDetector
from river.drift import ADWIN, PageHinkley

EWMA_WEIGHT = 1 / 64


@dataclass(frozen=True, slots=True)
class Change:
    detector: str
    seen: int
    shift: float  # recent mean, in training standard deviations from the training mean


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

    def update(self, x: float) -> Change | None:
        z = (x - self.mean) / self.std
        self.seen += 1
        self.recent += EWMA_WEIGHT * (z - self.recent)
        self.detector.update(z)
        if self.detector.drift_detected:
            return Change(self.name, self.seen, self.recent)
        return None


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
