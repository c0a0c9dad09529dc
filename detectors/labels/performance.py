"""Model performance once labels arrive: per-window metrics, and the error stream's detectors.

Window metrics are mergeable counts. AUC comes from score histograms over fixed bins (ties in a
bin count a half), so it equals the Mann-Whitney U / (n1 * n2) of the binned scores exactly and
memory does not grow with events.

>>> w = PerformanceWindow.zero()
>>> for score, label in [(0.9, 1), (0.8, 1), (0.3, 0), (0.6, 0), (0.2, 1)]:
...     wrong = w.update_classification(score, label, threshold=0.5)
>>> m = w.metrics()
>>> m["accuracy"], round(m["precision"], 4), round(m["recall"], 4), round(m["auc"], 4)
(0.6, 0.6667, 0.6667, 0.6667)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from detectors.baseline.calibrate_errors import build
from detectors.drift.change import Change, StandardizedChange

SCORE_BINS = 100
EPS = 1e-15  # log loss clips probabilities, as every library does


@dataclass(slots=True)
class PerformanceWindow:
    """Counts of one window (or slice, or group) of labelled predictions."""

    predictions: int = 0  # logged, labelled or not: the denominator of label coverage
    labelled: int = 0
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0
    log_loss: float = 0.0
    scored: int = 0  # predictions strictly between 0 and 1: AUC needs scores, not classes
    positives: list[int] = field(default_factory=lambda: [0] * SCORE_BINS)
    negatives: list[int] = field(default_factory=lambda: [0] * SCORE_BINS)
    abs_error: float = 0.0
    sq_error: float = 0.0

    @classmethod
    def zero(cls) -> PerformanceWindow:
        return cls()

    def update_classification(self, score: float, label: int, threshold: float) -> bool:
        """Account one labelled prediction; True when it was wrong."""
        self.labelled += 1
        predicted = score >= threshold
        if label:
            self.tp += predicted
            self.fn += not predicted
        else:
            self.fp += predicted
            self.tn += not predicted
        p = min(max(score, EPS), 1 - EPS)
        self.log_loss -= math.log(p) if label else math.log(1 - p)
        if 0 < score < 1:
            self.scored += 1
        hist = self.positives if label else self.negatives
        hist[min(int(score * SCORE_BINS), SCORE_BINS - 1) if score > 0 else 0] += 1
        return predicted != bool(label)

    def update_regression(self, prediction: float, label: float) -> float:
        self.labelled += 1
        error = prediction - label
        self.abs_error += abs(error)
        self.sq_error += error * error
        return abs(error)

    def merge(self, other: PerformanceWindow) -> PerformanceWindow:
        return PerformanceWindow(
            self.predictions + other.predictions,
            self.labelled + other.labelled,
            self.tp + other.tp,
            self.fp + other.fp,
            self.tn + other.tn,
            self.fn + other.fn,
            self.log_loss + other.log_loss,
            self.scored + other.scored,
            [a + b for a, b in zip(self.positives, other.positives, strict=True)],
            [a + b for a, b in zip(self.negatives, other.negatives, strict=True)],
            self.abs_error + other.abs_error,
            self.sq_error + other.sq_error,
        )

    @property
    def errors(self) -> int:
        return self.fp + self.fn

    @property
    def positive_predictions(self) -> int:
        return self.tp + self.fp

    def metrics(self) -> dict[str, float]:
        """Every metric this window can support; absent rather than a made-up number."""
        out: dict[str, float] = {"predictions": self.predictions, "labelled": self.labelled}
        if self.predictions:
            out["label_coverage"] = self.labelled / self.predictions
        classified = self.tp + self.fp + self.tn + self.fn
        if classified:
            out["accuracy"] = (self.tp + self.tn) / classified
            out["error_rate"] = self.errors / classified
            out["positive_rate"] = self.positive_predictions / classified
            out["log_loss"] = self.log_loss / classified
            if self.positive_predictions:
                out["precision"] = self.tp / self.positive_predictions
            if self.tp + self.fn:
                out["recall"] = self.tp / (self.tp + self.fn)
            if self.scored and self.tp + self.fn and self.tn + self.fp:
                out["auc"] = binned_auc(self.positives, self.negatives)
        elif self.labelled:
            out["mae"] = self.abs_error / self.labelled
            out["rmse"] = math.sqrt(self.sq_error / self.labelled)
        return out


def binned_auc(positives: list[int], negatives: list[int]) -> float:
    """P(score of a positive > score of a negative), a tie counting a half.

    >>> binned_auc([0, 1, 1], [1, 1, 0])  # positives in bins 1, 2; negatives in 0, 1
    0.875
    """
    below = 0.0
    wins = 0.0
    for pos, neg in zip(positives, negatives, strict=True):
        wins += pos * (below + neg / 2)
        below += neg
    return wins / (sum(positives) * below)


@dataclass(frozen=True, slots=True)
class ErrorChange:
    detector: str
    labels: int  # labels this detector had seen when it fired
    recent: float  # recent error rate (exponentially weighted)


class ErrorDetectors:
    """ADWIN and DDM over one 0/1 error stream, with calibrated parameters (see
    ``detectors/baseline/calibrate_errors.py``). River is reached through the one adapter in
    change.py; its value is the raw bit, so the adapter's recent mean is the recent error rate."""

    def __init__(self, calibration: dict[str, dict[str, float]]) -> None:
        self.labels = 0
        self.errors = 0
        self.detectors = [
            StandardizedChange(n, build(n, c), 0.0, 1.0) for n, c in calibration.items()
        ]

    def update(self, error: bool) -> ErrorChange | None:
        self.labels += 1
        self.errors += error
        fired: Change | None = None
        for detector in self.detectors:
            fired = detector.update(float(error)) or fired
        if fired is None:
            return None
        return ErrorChange(fired.detector, fired.seen, fired.shift)

    @property
    def error_rate(self) -> float:
        """Over every label seen: the level a change alarm is news against."""
        return self.errors / self.labels if self.labels else 0.0
