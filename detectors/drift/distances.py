"""Distances between distributions, and what each looks like when nothing changed.

A distance alone is not a verdict: on 50 events noise alone gives a large one, on 500,000
events a negligible difference is still "significant". So beside the distances live what chance
alone reaches at a window's size (Pearson's chi-squared over coarsened bins, exact binomial
bounds per category, a rate's normal bound); a comparison flags only when the distance passes an
effect-size floor and chance cannot explain it.

>>> d, where = l_infinity({"a": 0.7, "b": 0.2, "c": 0.1}, {"a": 0.4, "b": 0.3, "c": 0.3})
>>> round(d, 12), where
(0.3, 'a')
>>> round(jensen_shannon([1.0, 0.0], [0.0, 1.0]), 12)
1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import binom, chi2, norm

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


def rate_increase_null_threshold(rate: float, n: float, alpha: float) -> float:
    """How far an event rate (missing, violations) may rise above ``rate`` by chance in n events."""
    if n <= 0:
        return math.inf
    z = float(norm.isf(alpha))
    return z * math.sqrt(max(rate * (1 - rate), 1.0 / n) / n)


def coarsen(probs: Sequence[float], n_eff: float, min_expected: float = 5.0) -> list[range]:
    """Adjacent bins grouped so each group expects at least ``min_expected`` values in a sample
    of n_eff: the chi-squared approximation behind the null thresholds holds only then (with
    about 3 expected per bin it fires ~20x more often than its alpha says). Large samples keep
    every bin.

    >>> coarsen([0.25, 0.25, 0.25, 0.25], 12)
    [range(0, 2), range(2, 4)]
    """
    groups: list[range] = []
    start, mass = 0, 0.0
    for i, p in enumerate(probs):
        mass += p
        if mass * n_eff >= min_expected:
            groups.append(range(start, i + 1))
            start, mass = i + 1, 0.0
    if start < len(probs):
        if groups:  # a short tail joins the group before it
            groups[-1] = range(groups[-1].start, len(probs))
        else:
            groups.append(range(start, len(probs)))
    return groups


def grouped(values: Sequence[float], groups: list[range]) -> list[float]:
    return [sum(values[i] for i in g) for g in groups]


def category_null_bounds(q: Mapping[str, float], n: float, alpha: float) -> dict[str, float]:
    """Per category, how far its frequency in n draws moves by chance, with alpha shared over
    the categories and both directions: the larger of the exact binomial quantile (the normal
    approximation is far too tight for rare categories in small windows) and the normal bound
    (which holds for the difference of two small windows, where n is an effective size)."""
    if n < 1 or not q:
        return dict.fromkeys(q, math.inf)
    draws = max(1, round(n))
    a = alpha / (2 * len(q))
    z = float(norm.isf(a))
    ps = np.fromiter(q.values(), np.float64, len(q))  # one scipy call per bound, not per key
    above = binom.isf(a, draws, ps) / draws - ps
    below = ps - binom.ppf(a, draws, ps) / draws
    normal = z * np.sqrt(ps * (1 - ps) / n)
    return dict(zip(q, np.maximum(np.maximum(above, below), normal).tolist(), strict=True))


def pearson_chi2(observed: Sequence[Sequence[float]]) -> float:
    """Pearson's statistic of a contingency table (rows: samples, columns: bin groups); one row
    of expected counts scaled to a sample makes it the one-sample goodness-of-fit test."""
    rows = [sum(r) for r in observed]
    cols = [sum(c) for c in zip(*observed, strict=True)]
    total = sum(rows)
    x2 = 0.0
    for r, row in zip(rows, observed, strict=True):
        for c, o in zip(cols, row, strict=True):
            e = r * c / total if total else 0.0
            if e > 0:
                x2 += (o - e) ** 2 / e
    return x2


def chi2_critical(groups: int, alpha: float) -> float:
    return float(chi2.isf(alpha, groups - 1)) if groups > 1 else math.inf


def goodness_of_fit(counts: Sequence[float], probs: Sequence[float]) -> float:
    """Pearson's statistic of observed counts against reference probabilities."""
    n = sum(counts)
    return sum((c - n * p) ** 2 / (n * p) for c, p in zip(counts, probs, strict=True) if p > 0)
