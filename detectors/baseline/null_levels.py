"""Chance levels learned from how the training data itself varies.

A window test's chance level (chi-squared over bins, binomial bounds per category, a rate's
normal bound) assumes independent values. Production features are autocorrelated and seasonal:
a window of 1,000 half-hourly prices carries far less information than 1,000 independent
draws, and the i.i.d. level fires on it every window. So the baseline cuts its training rows,
in time order, into consecutive chunks at several sizes, measures each test's statistic on
every chunk (against the whole file for skew, against the next chunk for drift) and stores how
much larger it runs than independence predicts: an *inflation* per chunk size. At serving time
a window of n records is judged as if it held ``n / inflation(n)`` independent ones.

The inflation at a size is the largest of: 1; the chunks' mean statistic over its expectation
(the variance inflation of autocorrelated counts); and the largest chunk's statistic over what
the largest of that many independent chunks would reach (seasonal chunks have heavy tails).
Between measured sizes it is interpolated in log-log; past the largest it keeps growing at the
last measured slope (capped at proportional growth, which is a cycle longer than the chunks).

>>> levels = NullLevels(sizes=(100.0, 200.0, 400.0), skew=(1.0, 2.0, 4.0))
>>> levels.at("skew", 50), levels.at("skew", 200), round(levels.at("skew", 283), 2)
(1.0, 2.0, 2.83)
>>> levels.at("skew", 1600), levels.at("drift", 1600)
(16.0, 1.0)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import chi2

from detectors.drift.distances import coarsen

MIN_CHUNK = 25  # fewest rows in the smallest chunk
MAX_BASE_CHUNKS = 20_000  # bounds the recorder's memory whatever the file's length
MIN_CHUNKS = 8  # fewest chunks at a size to measure it
MIN_EXPECTED = 10.0  # as in detectors/drift/compare.py: groups must expect this many values
TABLES = ("skew", "drift", "missing")
MIN_TAIL_CHUNKS = 128  # fewest chunks to fit a tail to (fewer: too noisy)
REFERENCE_ALPHA = 1e-6  # the schema's default false-alarm rate per test and window


@dataclass(frozen=True, slots=True)
class NullLevels:
    """Inflation of each window test's statistic over independence, by window size (records).
    Empty tables (no ordered training data) mean independence: today's i.i.d. levels."""

    sizes: tuple[float, ...] = ()
    skew: tuple[float, ...] = ()
    drift: tuple[float, ...] = ()
    missing: tuple[float, ...] = ()

    def at(self, table: str, n: float) -> float:
        values: tuple[float, ...] = getattr(self, table)
        if not values or n <= 0:
            return 1.0
        return _interpolate(self.sizes, values, n)

    def effective(self, table: str, n: float) -> float:
        """How many independent values a window of n records is worth for this test."""
        return n / self.at(table, n)

    def to_json(self) -> dict[str, list[float]]:
        return {"sizes": list(self.sizes), **{t: list(getattr(self, t)) for t in TABLES}}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> NullLevels:
        """Read (and check) a stored table; a person may have edited it."""
        if not data:
            return cls()
        sizes = tuple(float(s) for s in data["sizes"])
        if any(b <= a for a, b in itertools.pairwise(sizes)) or any(s <= 0 for s in sizes):
            raise ValueError("null_levels.sizes must be positive and increasing")
        tables = {}
        for t in TABLES:
            values = tuple(float(v) for v in data.get(t, ()))
            if values and (len(values) != len(sizes) or any(not v >= 1 for v in values)):
                raise ValueError(f"null_levels.{t} needs one value >= 1 per size")
            tables[t] = values
        return cls(sizes, **tables)


def _interpolate(sizes: Sequence[float], values: Sequence[float], n: float) -> float:
    if n <= sizes[0] or len(sizes) == 1:
        return values[0] if n <= sizes[0] else values[-1] * _growth(sizes, values, n)
    if n >= sizes[-1]:
        return values[-1] * _growth(sizes, values, n)
    i = next(i for i, s in enumerate(sizes) if s >= n)
    t = math.log(n / sizes[i - 1]) / math.log(sizes[i] / sizes[i - 1])
    return math.exp((1 - t) * math.log(values[i - 1]) + t * math.log(values[i]))


def _growth(sizes: Sequence[float], values: Sequence[float], n: float) -> float:
    if len(sizes) < 2:
        return 1.0
    slope = math.log(values[-1] / values[-2]) / math.log(sizes[-1] / sizes[-2])
    return float((n / sizes[-1]) ** min(1.0, max(0.0, slope)))


def base_chunk(rows: int) -> int:
    """Rows in the smallest chunk: at least MIN_CHUNK, and few enough chunks to keep."""
    return max(MIN_CHUNK, math.ceil(rows / MAX_BASE_CHUNKS))


@dataclass(slots=True)
class ChunkCounts:
    """Per-chunk counts of one feature over the training rows in time order: column
    ``width - 1`` counts missing values, the others the value's bin or category. Memory is
    bounded by MAX_BASE_CHUNKS x width, never by rows."""

    rows: int
    width: int
    size: int = 0
    counts: NDArray[np.int64] = field(init=False)

    def __post_init__(self) -> None:
        self.size = base_chunk(self.rows)
        self.counts = np.zeros((max(1, self.rows // self.size), self.width), dtype=np.int64)

    def add(self, position: int, column: int) -> None:
        chunk = position // self.size
        if chunk < len(self.counts):  # the last, partial chunk is left out
            self.counts[chunk, column] += 1

    def levels(self, probs: Sequence[float]) -> NullLevels:
        """The inflation tables, with ``probs`` the whole file's smoothed value frequencies
        (bins or categories, missing excluded)."""
        if self.rows < MIN_CHUNKS * self.size:
            return NullLevels()
        q = np.asarray(probs, dtype=np.float64)
        counts, size = self.counts, float(self.size)
        sizes: list[float] = []
        tables: dict[str, list[float]] = {t: [] for t in TABLES}
        missing_rate = (counts[:, -1].sum() + 1) / (counts.sum() + 2)
        while len(counts) >= MIN_CHUNKS:
            sizes.append(size)
            values = counts[:, :-1]
            tables["skew"].append(_skew(values, q))
            tables["drift"].append(_drift(values[: len(values) // 2 * 2]))
            tables["missing"].append(_missing(counts[:, -1], size, missing_rate))
            counts = counts[: len(counts) // 2 * 2].reshape(-1, 2, self.width).sum(axis=1)
            size *= 2
        # Never less inflation at a larger size: a cycle that shows at one size is there after.
        return NullLevels(
            tuple(sizes), **{t: tuple(np.maximum.accumulate(v).tolist()) for t, v in tables.items()}
        )


def _inflation(stats: NDArray[np.float64], dof: NDArray[np.float64]) -> float:
    """Over independent chunks each statistic is chi-squared with ``dof`` degrees of freedom.
    Three readings of how far they run past that, the largest kept: their mean over its
    expectation; the largest over the largest of that many independent chunks; and, with
    enough chunks, their own upper tail (exponential past the upper quartile, as in
    detectors/baseline/calibrate.py) at REFERENCE_ALPHA over chi-squared's there."""
    keep = dof > 0
    if keep.sum() < MIN_CHUNKS:
        return 1.0
    stats, dof = stats[keep], dof[keep]
    mean_ratio = float(stats.sum() / dof.sum())
    tail = float((stats / chi2.isf(0.25 / len(stats), dof)).max())
    fitted = 1.0
    if len(stats) >= MIN_TAIL_CHUNKS:
        u = float(np.quantile(stats, 0.75))
        excess = stats[stats > u] - u
        scale = float(excess.mean()) if excess.size else 0.0
        level = u + scale * math.log(0.25 / REFERENCE_ALPHA)
        fitted = level / float(chi2.isf(REFERENCE_ALPHA, float(np.median(dof))))
    return max(1.0, mean_ratio, tail, fitted)


def _grouping(probs: NDArray[np.float64], n: float) -> NDArray[np.float64]:
    """Indicator matrix (values x groups) of the bin groups the window test would use at n."""
    groups = coarsen(probs.tolist(), n, MIN_EXPECTED)
    out = np.zeros((len(probs), len(groups)))
    for j, g in enumerate(groups):
        out[list(g), j] = 1.0
    return out


def _skew(values: NDArray[np.int64], q: NDArray[np.float64]) -> float:
    n = values.sum(axis=1).astype(np.float64)
    if n.mean() < 1:
        return 1.0
    g = _grouping(q, float(n.mean()))
    observed, expected = values @ g, np.outer(n, q @ g)
    with np.errstate(divide="ignore", invalid="ignore"):
        x2 = np.where(expected > 0, (observed - expected) ** 2 / expected, 0.0).sum(axis=1)
    dof = np.where(n > 0, g.shape[1] - 1, 0).astype(np.float64)
    return _inflation(x2, dof)


def _drift(values: NDArray[np.int64]) -> float:
    """Two-sample chi-squared between consecutive chunks (0 and 1, 2 and 3, ...)."""
    a, b = values[0::2].astype(np.float64), values[1::2].astype(np.float64)
    if len(a) == 0:
        return 1.0
    pooled = (a + b).sum(axis=0)
    if pooled.sum() <= 0:
        return 1.0
    na, nb = a.sum(axis=1), b.sum(axis=1)
    g = _grouping(pooled / pooled.sum(), float(np.minimum(na, nb).mean()))
    ga, gb = a @ g, b @ g
    total = ga + gb
    n = (na + nb)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ea, eb = total * na[:, None] / n, total * nb[:, None] / n
        x2 = (
            np.where(ea > 0, (ga - ea) ** 2 / ea, 0.0) + np.where(eb > 0, (gb - eb) ** 2 / eb, 0.0)
        ).sum(axis=1)
    dof = ((total > 0).sum(axis=1) - 1).clip(min=0).astype(np.float64)
    dof[(na == 0) | (nb == 0)] = 0
    return _inflation(x2, dof)


def _missing(missing: NDArray[np.int64], size: float, rate: float) -> float:
    if missing.sum() == 0:
        return 1.0
    variance = size * rate * (1 - rate)
    x2 = (missing - size * rate) ** 2 / variance
    return _inflation(x2.astype(np.float64), np.ones(len(x2)))


MIN_SEASON_ROWS = 100  # fewest rows in a time chunk to read its divergence from
SEASON_MARGIN = 1.5  # a window may differ from training this much more than its hours did
PEAK_OVER_MEAN = 2.2  # a sinusoid's peak square is twice its mean; a little more for others


@dataclass(frozen=True, slots=True)
class Seasons:
    """How far the training's own stretches of a given duration (an hour, a day) differ from
    the whole, beyond sampling noise: a daily cycle makes every hour differ from the all-day
    distribution, so a window of an hour at any event rate may differ that much by itself.
    ``excess`` is Jensen-Shannon (bits) for numbers, L-infinity for categories, at the peak
    of the swing. A window may swing as far as any longer stretch that holds it: its floor
    reads the largest excess at its duration or longer.

    >>> s = Seasons(seconds=(3600.0, 86400.0), excess=(0.2, 0.01))
    >>> s.floor(60.0, 0.01), s.floor(7 * 86400.0, 0.01), s.floor(0.0, 0.5)
    (0.30000000000000004, 0.015, 0.5)
    """

    seconds: tuple[float, ...] = ()
    excess: tuple[float, ...] = ()
    values: dict[str, tuple[float, ...]] = field(default_factory=dict)  # per category

    def floor(self, seconds: float, floor: float, value: str | None = None) -> float:
        """The effect-size floor for a window of ``seconds`` (0: unknown, the widest), of one
        category's share when ``value`` is given (a share that does not cycle keeps ``floor``)."""
        excess = self.values.get(value, self.excess) if value is not None else self.excess
        if not excess:
            return floor
        i = max(0, sum(1 for s in self.seconds if s <= seconds) - 1)
        return max(floor, SEASON_MARGIN * max(excess[i:]))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seconds": list(self.seconds), "excess": list(self.excess)}
        if self.values:
            out["values"] = {k: list(v) for k, v in self.values.items()}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Seasons:
        if not data:
            return cls()
        seconds = tuple(float(s) for s in data["seconds"])
        excess = tuple(float(v) for v in data["excess"])
        values = {str(k): tuple(float(x) for x in v) for k, v in data.get("values", {}).items()}
        tables = [excess, *values.values()]
        if any(len(t) != len(seconds) or any(v < 0 for v in t) for t in tables):
            raise ValueError("seasons needs one non-negative excess per duration")
        return cls(seconds, excess, values)


@dataclass(slots=True)
class TimeChunks:
    """Per time bucket (an hour) counts of one feature's values (bins or categories; the last
    column counts missing values, left out here). Bounded by the buckets (about 10,000 at most)."""

    buckets: int
    width: int
    seconds: float
    counts: NDArray[np.int64] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros((self.buckets, self.width), dtype=np.int64)

    def add(self, bucket: int, column: int) -> None:
        self.counts[bucket, column] += 1

    def seasons(self, probs: Sequence[float], names: Sequence[str] | None = None) -> Seasons:
        """Numbers when ``names`` is None; else the categories the columns count."""
        q = np.asarray(probs, dtype=np.float64)
        counts, seconds = self.counts[:, :-1], self.seconds
        durations: list[float] = []
        found: list[NDArray[np.float64]] = []
        while len(counts) >= MIN_CHUNKS:
            n = counts.sum(axis=1)
            keep = n >= MIN_SEASON_ROWS
            if keep.sum() >= MIN_CHUNKS:
                durations.append(seconds)
                found.append(_excess(counts[keep], n[keep], q, names is None))
            counts = counts[: len(counts) // 2 * 2].reshape(-1, 2, counts.shape[1]).sum(axis=1)
            seconds *= 2
        excess = tuple(float(f.max()) for f in found)
        if names is None or not found:
            return Seasons(tuple(durations), excess)
        table = np.asarray(found)  # durations x categories
        values = {name: tuple(table[:, i].tolist()) for i, name in enumerate(names)}
        return Seasons(tuple(durations), excess, values)


def _excess(
    counts: NDArray[np.int64], n: NDArray[np.int64], q: NDArray[np.float64], numeric: bool
) -> NDArray[np.float64]:
    """How far a chunk's distribution swings from the whole beyond what independent draws of
    its size explain (Jensen-Shannon for numbers; per category, its share's swing), read from
    the chunks' average (a maximum over hundreds of noisy chunks would mostly measure the
    noise): the peak of a cycle is about twice its mean square. The noise is that of
    independent rows on purpose: the row-chunk levels already hold the cycle, and whatever
    makes an hour differ (a cycle, a slow wander) is the hour's nature."""
    p = counts / n[:, None]
    if numeric:  # Jensen-Shannon over every bin; its noise is about (k - 1) / (8 n ln 2)
        m = (p + q) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p > 0, p * np.log2(p / m), 0.0) + np.where(
                q > 0, q * np.log2(q / m), 0.0
            )
        js = terms.sum(axis=1) / 2
        noise = (len(q) - 1) / (8 * math.log(2) * n)
        return np.asarray([PEAK_OVER_MEAN * max(0.0, float((js - noise).mean()))])
    swing = ((p - q) ** 2).mean(axis=0) - (q * (1 - q) / n[:, None]).mean(axis=0)
    return np.asarray(np.sqrt(PEAK_OVER_MEAN * np.maximum(swing, 0.0)), dtype=np.float64)
