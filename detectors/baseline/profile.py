"""The training profile: what each feature looked like, built in two streaming passes in memory
bounded by features x bins.

Pass one sees every value once (types, moments, a frequent-items sketch and
a fixed-size seeded reservoir); the reservoir's quantiles fix the bin edges. Pass two counts the
training values exactly in those bins and categories, so baseline frequencies carry no sketch
error.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any

import datasketches as ds
import numpy as np

from detectors.stats import OTHER, BinCounts, Moments
from detectors.validate import as_float

RESERVOIR_SIZE = 20_000


@dataclass(slots=True)
class NumericProfile:
    mean: float
    std: float
    min: float
    max: float
    quantiles: dict[str, float]
    edges: list[float]
    frequencies: list[float]


@dataclass(slots=True)
class CategoricalProfile:
    frequencies: dict[str, float]
    other: float
    distinct: int
    complete: bool


@dataclass(slots=True)
class FeatureProfile:
    type: str
    count: int
    missing: int
    nan: int
    inf: int
    numeric: NumericProfile | None = None
    categorical: CategoricalProfile | None = None
    calibration: dict[str, dict[str, float]] = field(default_factory=dict)
    # Normal-score knots ({"x": [...], "z": [...]}, detectors/baseline/scores.py), the window tests'
    # inflation over independence by window size and the floors cycles need per duration
    # (detectors/baseline/null_levels.py); each optional (baselines built before them have none).
    scores: dict[str, list[float]] = field(default_factory=dict)
    null_levels: dict[str, list[float]] = field(default_factory=dict)
    seasons: dict[str, Any] = field(default_factory=dict)

    @property
    def missing_rate(self) -> float:
        return self.missing / self.count if self.count else 0.0


@dataclass(slots=True)
class Profile:
    rows: int
    source: str
    features: dict[str, FeatureProfile]
    version: int = 1
    order: str = "file"  # how the rows were ordered when the chance levels were learned

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Profile:
        if data.get("version") != 1:
            raise ValueError(f"profile version {data.get('version')!r} is not supported (1 is)")
        features = {}
        for name, f in data["features"].items():
            num, cat = f.get("numeric"), f.get("categorical")
            features[name] = FeatureProfile(
                type=f["type"],
                count=f["count"],
                missing=f["missing"],
                nan=f["nan"],
                inf=f["inf"],
                numeric=NumericProfile(**num) if num else None,
                categorical=CategoricalProfile(**cat) if cat else None,
                calibration=f.get("calibration", {}),
                scores=f.get("scores", {}),
                null_levels=f.get("null_levels", {}),
                seasons=f.get("seasons", {}),
            )
        return cls(
            rows=data["rows"],
            source=data["source"],
            features=features,
            order=str(data.get("order", "file")),
        )


def json_kind(value: object) -> str:
    """The JSON type of a value as a serving app logged it: bool, int, float, str or other."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "other"


@dataclass(slots=True)
class ColumnSketch:
    """Pass one over one column."""

    seed: int
    kinds: dict[str, int] = field(default_factory=dict)
    seen: int = 0
    missing: int = 0
    nan: int = 0
    inf: int = 0
    moments: Moments = field(default_factory=Moments.zero)
    frequent: Any = field(default_factory=lambda: ds.frequent_strings_sketch(12))
    reservoir: list[float] = field(default_factory=list)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def update(self, value: object) -> None:
        self.seen += 1
        if value is None:
            self.missing += 1
            return
        kind = json_kind(value)
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if kind in ("int", "float"):
            self._update_number(as_float(value))  # type: ignore[arg-type]
        elif kind in ("str", "bool"):
            self.frequent.update(category_text(value))

    def _update_number(self, x: float) -> None:
        if math.isnan(x):
            self.nan += 1
            return
        if math.isinf(x):
            self.inf += 1
            return
        self.moments.update(x)
        # Algorithm R: a uniform sample of the training values, for detector calibration.
        if len(self.reservoir) < RESERVOIR_SIZE:
            self.reservoir.append(x)
        else:
            j = self.rng.randrange(self.moments.n)
            if j < RESERVOIR_SIZE:
                self.reservoir[j] = x

    def sample_quantiles(self, probs: list[float]) -> list[float]:
        """Quantiles of the seeded reservoir: the same training rows give the same edges on
        every build (a KLL sketch's random compaction did not)."""
        return [float(q) for q in np.quantile(np.asarray(self.reservoir), probs)]

    def quantile_edges(self, bins: int, tolerance: float = 0.25) -> list[float]:
        """Inner bin edges at equal-mass quantiles, duplicates removed (discrete features), with
        the ends of the training's support: the first bin holds values below it, the last those
        above, so out-of-support mass (a constant feature coming alive) shows as such. The
        support is the sample's range within p0.1..p99.9 widened by ``tolerance`` (as the
        schema's range is): one absurd training value does not stretch it to 1e300."""
        if not self.reservoir:
            return []
        qs = self.sample_quantiles([i / bins for i in range(1, bins)])
        lo, hi = self.inlier_bounds(tolerance)
        sample = np.asarray(self.reservoir)
        inside = sample[(sample >= lo) & (sample <= hi)]
        low, high = (float(inside.min()), float(inside.max())) if inside.size else (lo, hi)
        support = {low, math.nextafter(high, math.inf)}
        return sorted({float(q) for q in qs if low <= q <= high} | support)

    def inlier_bounds(self, tolerance: float) -> tuple[float, float]:
        lo, hi = self.sample_quantiles([0.001, 0.999])
        pad = tolerance * (hi - lo) if hi > lo else tolerance * max(abs(hi), 1.0)
        return lo - pad, hi + pad

    def top_categories(self, limit: int) -> tuple[list[str], int]:
        """The most frequent categories (at most ``limit``) and the number of distinct ones."""
        items = self.frequent.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_POSITIVES)
        distinct = self.frequent.num_active_items
        ranked = sorted(items, key=lambda it: (-it[1], it[0]))
        return [it[0] for it in ranked[:limit]], int(distinct)


def category_text(value: object) -> str:
    """The category string for a value: booleans are lower-case JSON literals."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def frequencies(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [c / total for c in counts] if total else [0.0] * len(counts)


def numeric_profile(
    sketch: ColumnSketch, bins: BinCounts, moments: Moments | None = None
) -> NumericProfile:
    """``moments`` of the values within the support (default: of every finite value)."""
    m = moments if moments is not None and moments.n else sketch.moments
    probs = (0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999)
    qs = sketch.sample_quantiles(list(probs)) if m.n else [math.nan] * len(probs)
    return NumericProfile(
        mean=m.mean if m.n else math.nan,
        std=m.std,
        min=m.min if m.n else math.nan,
        max=m.max if m.n else math.nan,
        quantiles={f"p{p * 100:g}": float(q) for p, q in zip(probs, qs, strict=True)},
        edges=list(bins.edges),
        frequencies=frequencies(bins.counts),
    )


def categorical_profile(counts: dict[str, int], other: int, distinct: int) -> CategoricalProfile:
    total = sum(counts.values()) + other
    return CategoricalProfile(
        frequencies={k: v / total for k, v in counts.items()} if total else {},
        other=other / total if total else 0.0,
        distinct=distinct,
        complete=other == 0,
    )


__all__ = [
    "OTHER",
    "CategoricalProfile",
    "ColumnSketch",
    "FeatureProfile",
    "NumericProfile",
    "Profile",
    "categorical_profile",
    "category_text",
    "json_kind",
    "numeric_profile",
]
