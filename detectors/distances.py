"""Distances between distributions, and what each looks like when nothing changed.

A distance alone is not a verdict: on 50 events noise alone gives a large one, on 500,000
events a negligible difference is still "significant". So each distance comes with
``*_null_threshold``: the value it stays under with probability ``1 - alpha`` when the window is
drawn from the reference, at this window size. A comparison flags only when the distance
passes both that and an effect-size floor.

>>> d, where = l_infinity({"a": 0.7, "b": 0.2, "c": 0.1}, {"a": 0.4, "b": 0.3, "c": 0.3})
>>> round(d, 12), where
(0.3, 'a')
>>> round(jensen_shannon([1.0, 0.0], [0.0, 1.0]), 12)
1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from scipy.stats import chi2, norm

PSI_EPSILON = 1e-4


def normalize(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    return [c / total for c in counts] if total > 0 else [0.0] * len(counts)


def l_infinity(p: Mapping[str, float], q: Mapping[str, float]) -> tuple[float, str]:
    """Largest absolute frequency difference over the union of categories (TFDV's L-infinity),
    and the category where it happens (ties go to the first in sorted order)."""
    best, best_key = 0.0, ""
    for key in sorted(set(p) | set(q)):
        d = abs(p.get(key, 0.0) - q.get(key, 0.0))
        if d > best:
            best, best_key = d, key
    return best, best_key


def jensen_shannon(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon divergence in bits (base 2), in [0, 1]; inputs are probability vectors.

    scipy's ``jensenshannon`` returns the square root of this (the distance)."""
    total = 0.0
    for pi, qi in zip(p, q, strict=True):
        m = (pi + qi) / 2
        if pi > 0:
            total += pi * math.log2(pi / m)
        if qi > 0:
            total += qi * math.log2(qi / m)
    return max(0.0, min(1.0, total / 2))


def psi(p: Sequence[float], q: Sequence[float], epsilon: float = PSI_EPSILON) -> float:
    """Population stability index sum((p - q) * ln(p / q)); empty bins are floored at
    ``epsilon`` so a bin that empties out counts as a large but finite change."""
    total = 0.0
    for pi, qi in zip(p, q, strict=True):
        a, b = max(pi, epsilon), max(qi, epsilon)
        total += (a - b) * math.log(a / b)
    return total


def effective_size(n: int, m: int | None = None) -> float:
    """Sample size of a one-sample test (m is None: the reference is exact) or of a two-sample
    test between windows of n and m events."""
    if m is None:
        return float(n)
    return n * m / (n + m) if n + m else 0.0


def jensen_shannon_null_threshold(bins: int, n_eff: float, alpha: float) -> float:
    """Upper 1 - alpha quantile of the JS divergence (bits) of a sample of effective size n_eff
    from its own distribution over ``bins`` non-empty bins.

    For small differences JS ~= sum((p - q)^2 / q) / 8 nats, and n * sum((p - q)^2 / q) is
    Pearson's statistic, chi-squared with bins - 1 degrees of freedom."""
    if n_eff <= 0 or bins < 2:
        return math.inf
    return float(chi2.isf(alpha, bins - 1)) / (8 * n_eff * math.log(2))


def l_infinity_null_threshold(q: Mapping[str, float], n_eff: float, alpha: float) -> float:
    """Bound on the largest category frequency difference under no change: each frequency is
    within z * sd of its reference, with alpha shared over the categories (Bonferroni)."""
    if n_eff <= 0 or not q:
        return math.inf
    z = float(norm.isf(alpha / (2 * len(q))))
    worst = max(v * (1 - v) for v in q.values())
    return z * math.sqrt(max(worst, 1e-12) / n_eff)


def rate_increase_null_threshold(rate: float, n: int, alpha: float) -> float:
    """How far an event rate (missing, violations) may rise above ``rate`` by chance in n events."""
    if n <= 0:
        return math.inf
    z = float(norm.isf(alpha))
    return z * math.sqrt(max(rate * (1 - rate), 1.0 / n) / n)
