"""Mergeable window statistics: zero, update, merge.

Every accumulator here obeys ``merge(fold(xs), fold(ys)) == fold(xs + ys)``, so partial
summaries from many partitions combine into the same verdict one process would reach.

>>> m = Moments.zero()
>>> for x in (1.0, 2.0, 3.0, 4.0):
...     m.update(x)
>>> m.n, m.mean, m.variance
(4, 2.5, 1.6666666666666667)
>>> b = BinCounts.zero((0.0, 10.0))
>>> for x in (-1.0, 0.0, 5.0, 10.0, 11.0):
...     b.update(x)
>>> b.counts
[1, 2, 2]
"""

from __future__ import annotations

import bisect
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

OTHER = "__other__"


@dataclass(slots=True)
class Moments:
    """Count, mean and sum of squared deviations (Chan et al.'s parallel variance)."""

    n: int
    mean: float
    m2: float
    min: float
    max: float

    @classmethod
    def zero(cls) -> Moments:
        return cls(0, 0.0, 0.0, math.inf, -math.inf)

    def update(self, x: float) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)
        self.min = min(self.min, x)
        self.max = max(self.max, x)

    def merge(self, other: Moments) -> Moments:
        n = self.n + other.n
        if n == 0:
            return Moments.zero()
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n
        m2 = self.m2 + other.m2 + delta * delta * self.n * other.n / n
        return Moments(n, mean, m2, min(self.min, other.min), max(self.max, other.max))

    @property
    def variance(self) -> float:
        return self.m2 / (self.n - 1) if self.n > 1 else 0.0

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)


@dataclass(slots=True)
class BinCounts:
    """Counts over fixed baseline edges: bin 0 is underflow (< edges[0]), the last is
    overflow (>= edges[-1]); bin i holds edges[i-1] <= x < edges[i]."""

    edges: tuple[float, ...]
    counts: list[int]

    @classmethod
    def zero(cls, edges: tuple[float, ...]) -> BinCounts:
        return cls(tuple(edges), [0] * (len(edges) + 1))

    def update(self, x: float) -> None:
        self.counts[bisect.bisect_right(self.edges, x)] += 1

    def merge(self, other: BinCounts) -> BinCounts:
        if self.edges != other.edges:
            raise ValueError("cannot merge histograms over different bin edges")
        return BinCounts(
            self.edges, [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        )

    @property
    def total(self) -> int:
        return sum(self.counts)


def _rank(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")


@dataclass(slots=True)
class CategoryCounts:
    """Exact counts for the baseline's categories; values never seen in training are kept
    exactly for the ``cap`` of them with the smallest hash (a bottom-k sample, which makes
    the cap associative), the rest are counted in ``other``."""

    known: dict[str, int]
    new: dict[str, int]
    other: int
    cap: int

    @classmethod
    def zero(cls, known: tuple[str, ...] | list[str], cap: int = 32) -> CategoryCounts:
        return cls(dict.fromkeys(known, 0), {}, 0, cap)

    def update(self, value: str) -> None:
        if value in self.known:
            self.known[value] += 1
        elif value in self.new:
            self.new[value] += 1
        else:
            self._admit({value: 1})

    def _admit(self, counts: dict[str, int]) -> None:
        self.new.update(counts)
        if len(self.new) > self.cap:
            keep = sorted(self.new, key=_rank)[: self.cap]
            self.other += sum(self.new.values()) - sum(self.new[v] for v in keep)
            self.new = {v: self.new[v] for v in keep}

    def merge(self, other: CategoryCounts) -> CategoryCounts:
        if self.known.keys() != other.known.keys() or self.cap != other.cap:
            raise ValueError("cannot merge category counts over different baselines")
        known = {k: v + other.known[k] for k, v in self.known.items()}
        new = dict(self.new)
        for k, v in other.new.items():
            new[k] = new.get(k, 0) + v
        merged = CategoryCounts(known, {}, self.other + other.other, self.cap)
        merged._admit(new)
        return merged

    @property
    def total(self) -> int:
        return sum(self.known.values()) + sum(self.new.values()) + self.other


def _merge_bins(a: BinCounts | None, b: BinCounts | None) -> BinCounts | None:
    """Either side may lack a histogram (a partition that never saw the feature)."""
    if a is None or b is None:
        present = a if b is None else b
        return None if present is None else present.merge(BinCounts.zero(present.edges))
    return a.merge(b)


def _merge_categories(a: CategoryCounts | None, b: CategoryCounts | None) -> CategoryCounts | None:
    if a is None or b is None:
        present = a if b is None else b
        if present is None:
            return None
        return present.merge(CategoryCounts.zero(list(present.known), present.cap))
    return a.merge(b)


@dataclass(slots=True)
class FeatureWindow:
    """Everything one window knows about one feature."""

    seen: int = 0
    missing: int = 0
    violations: dict[str, int] = field(default_factory=dict)
    moments: Moments = field(default_factory=Moments.zero)
    bins: BinCounts | None = None
    categories: CategoryCounts | None = None

    @property
    def valid(self) -> int:
        """Values that entered the distribution statistics."""
        if self.bins is not None:
            return self.bins.total
        return self.categories.total if self.categories is not None else 0

    def violate(self, code: str) -> None:
        self.violations[code] = self.violations.get(code, 0) + 1

    def merge(self, other: FeatureWindow) -> FeatureWindow:
        violations = dict(self.violations)
        for k, v in other.violations.items():
            violations[k] = violations.get(k, 0) + v
        return FeatureWindow(
            seen=self.seen + other.seen,
            missing=self.missing + other.missing,
            violations=violations,
            moments=self.moments.merge(other.moments),
            bins=_merge_bins(self.bins, other.bins),
            categories=_merge_categories(self.categories, other.categories),
        )

    def to_plain(self) -> dict[str, Any]:
        """Versioned plain data for tables and stores (never a pickle)."""
        m = self.moments
        return {
            "v": 1,
            "seen": self.seen,
            "missing": self.missing,
            "violations": dict(self.violations),
            "moments": [m.n, m.mean, m.m2, m.min, m.max],
            "bins": None if self.bins is None else [list(self.bins.edges), list(self.bins.counts)],
            "categories": None
            if self.categories is None
            else [
                dict(self.categories.known),
                dict(self.categories.new),
                self.categories.other,
                self.categories.cap,
            ],
        }

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> FeatureWindow:
        if data.get("v") != 1:
            raise ValueError(f"unknown window state version {data.get('v')!r}")
        n, mean, m2, lo, hi = data["moments"]
        bins = data["bins"]
        cats = data["categories"]
        return cls(
            seen=data["seen"],
            missing=data["missing"],
            violations=dict(data["violations"]),
            moments=Moments(int(n), mean, m2, lo, hi),
            bins=None if bins is None else BinCounts(tuple(bins[0]), list(bins[1])),
            categories=None
            if cats is None
            else CategoryCounts(dict(cats[0]), dict(cats[1]), int(cats[2]), int(cats[3])),
        )
