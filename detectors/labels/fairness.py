"""Group fairness: does one group get a worse model than the best-served one, beyond chance?

Per window and per value of a sensitive attribute: error rate (and positive-prediction rate),
and each group's disparity to the best-served group (lowest error rate). Like every window test
here, each flags only when its statistic passes both an effect-size floor and what it reaches by
chance at this window size (a z-test on Agresti-Caffo adjusted proportions: one pseudo-success
and pseudo-failure per group, so a window of 40 labels cannot look unfair by luck):

- the disparity is above ``threshold`` (an absolute budget a person set);
- the disparity moved away from its value in the reference windows by more than
  ``change_floor``: a group that was always 3 points behind is not news, one that fell 10
  points further behind is. When every group degrades alike the disparity does not move.

>>> from detectors.labels.performance import PerformanceWindow
>>> def win(errors, n):
...     return PerformanceWindow(labelled=n, fp=errors, tn=n - errors)
>>> now = {"f": win(420, 1000), "m": win(300, 1000)}
>>> ref = {"f": win(900, 3000), "m": win(900, 3000)}
>>> [(f.group, f.detector, round(f.statistic, 2)) for f in disparities(now, ref, Fairness())]
[('f', 'error_rate_disparity', 0.12), ('f', 'error_rate_disparity_change', 0.12)]
>>> worse_for_all = {"f": win(420, 1000), "m": win(420, 1000)}
>>> disparities(worse_for_all, ref, Fairness())
[]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import norm

from detectors.labels.performance import PerformanceWindow


@dataclass(frozen=True, slots=True)
class Fairness:
    threshold: float = 0.10  # largest tolerated error-rate gap to the best-served group
    change_floor: float = 0.05  # smallest move of that gap from its reference worth a page
    min_labels: int = 100  # per group and window, before it is judged
    false_alarm_rate: float = 1e-6  # per test, per window

    def __post_init__(self) -> None:
        for name in ("threshold", "change_floor"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}")
        if self.min_labels < 1:
            raise ValueError(f"min_labels must be at least 1, got {self.min_labels}")
        if not 0 < self.false_alarm_rate < 0.5:
            raise ValueError(f"false_alarm_rate must be in (0, 0.5), got {self.false_alarm_rate}")


@dataclass(frozen=True, slots=True)
class Disparity:
    group: str
    best: str
    detector: str
    statistic: float
    threshold: float
    z: float
    rates: dict[str, float]


def _adjusted(w: PerformanceWindow) -> tuple[float, float]:
    """Agresti-Caffo adjusted error rate and its variance."""
    n = w.labelled + 2
    p = (w.errors + 1) / n
    return p, p * (1 - p) / n


def error_rate(w: PerformanceWindow) -> float:
    return w.errors / w.labelled if w.labelled else math.nan


def disparities(
    now: dict[str, PerformanceWindow],
    reference: dict[str, PerformanceWindow],
    opts: Fairness,
) -> list[Disparity]:
    """Groups served clearly worse than the best-served one in this window."""
    judged = {g: w for g, w in now.items() if w.labelled >= opts.min_labels}
    if len(judged) < 2:
        return []
    # The best-served group is picked for being best, so its lead is partly luck: a union bound
    # over which group could have been picked keeps every test at its rate.
    z_alpha = float(norm.isf(opts.false_alarm_rate / len(judged)))
    best = min(judged, key=lambda g: (error_rate(judged[g]), g))
    p_best, v_best = _adjusted(judged[best])
    out = []
    for group in sorted(judged):
        if group == best:
            continue
        p, v = _adjusted(judged[group])
        gap = error_rate(judged[group]) - error_rate(judged[best])
        rates = {
            "error_rate": error_rate(judged[group]),
            "best_error_rate": error_rate(judged[best]),
        }
        z = (p - p_best) / math.sqrt(v + v_best)
        if gap > opts.threshold and z > z_alpha:
            out.append(
                Disparity(group, best, "error_rate_disparity", gap, opts.threshold, z, rates)
            )
        ref_g, ref_b = reference.get(group), reference.get(best)
        if ref_g is None or ref_b is None or min(ref_g.labelled, ref_b.labelled) < opts.min_labels:
            continue
        (q, u), (q_best, u_best) = _adjusted(ref_g), _adjusted(ref_b)
        moved = gap - (error_rate(ref_g) - error_rate(ref_b))
        z = ((p - p_best) - (q - q_best)) / math.sqrt(v + v_best + u + u_best)
        if moved > opts.change_floor and z > z_alpha:
            rates["reference_gap"] = error_rate(ref_g) - error_rate(ref_b)
            out.append(
                Disparity(
                    group, best, "error_rate_disparity_change", moved, opts.change_floor, z, rates
                )
            )
    return out
