"""Build a baseline from training rows: two streaming passes, then an inferred schema with a
note on every choice, so the person who edits ``schema.yaml`` knows what they are changing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.calibrate import CalibrationOptions, calibrate
from detectors.privacy import keyed_hash
from detectors.profile import (
    ColumnSketch,
    FeatureProfile,
    Profile,
    categorical_profile,
    category_text,
    numeric_profile,
)
from detectors.schema import PREDICTION, FeatureType
from detectors.stats import BinCounts
from detectors.validate import as_float


@dataclass(frozen=True, slots=True)
class BaselineOptions:
    bins: int = 16
    max_vocabulary: int = 50
    range_tolerance: float = 0.25
    prediction_column: str = PREDICTION
    ignore: frozenset[str] = frozenset()
    sensitive: frozenset[str] = frozenset()
    calibration: CalibrationOptions = field(default_factory=CalibrationOptions)
    privacy_key: bytes = b""

    def __post_init__(self) -> None:
        if self.bins < 2:
            raise ValueError(f"bins must be at least 2, got {self.bins}")
        if self.max_vocabulary < 1:
            raise ValueError(f"max_vocabulary must be at least 1, got {self.max_vocabulary}")
        if self.range_tolerance < 0:
            raise ValueError(f"range_tolerance must be >= 0, got {self.range_tolerance}")
        if self.sensitive and not self.privacy_key:
            raise ValueError("privacy_key is required when features are marked sensitive")


def infer_type(sketch: ColumnSketch) -> FeatureType:
    kinds = sketch.kinds
    present = sum(kinds.values())
    if present == 0 or kinds.get("bool", 0) == present:
        return "bool" if present else "float"
    numbers = kinds.get("int", 0) + kinds.get("float", 0)
    if numbers < 0.95 * present:
        return "categorical"
    return "int" if kinds.get("float", 0) == 0 else "float"


@dataclass(slots=True)
class _Column:
    sketch: ColumnSketch
    type: FeatureType = "float"
    bins: BinCounts | None = None
    vocabulary: dict[str, int] = field(default_factory=dict)
    other: int = 0
    distinct: int = 0


class BaselineBuilder:
    """Feed every row to ``first_pass``, call ``fix_bins``, feed every row again to
    ``second_pass``, then ``finish``. Memory: a fixed set of sketches and counters per column."""

    def __init__(self, options: BaselineOptions) -> None:
        self.options = options
        self.columns: dict[str, _Column] = {}
        self.rows = 0

    def _text(self, name: str, value: object) -> str:
        text = category_text(value)
        return (
            keyed_hash(self.options.privacy_key, text) if name in self.options.sensitive else text
        )

    def _values(self, row: dict[str, Any]) -> Iterable[tuple[str, object]]:
        return ((k, v) for k, v in row.items() if k not in self.options.ignore)

    def first_pass(self, row: dict[str, Any]) -> None:
        self.rows += 1
        for name, value in self._values(row):
            column = self.columns.get(name)
            if column is None:
                column = self.columns[name] = _Column(ColumnSketch(seed=len(self.columns)))
                column.sketch.seen = self.rows - 1  # absent from earlier rows: missing there
                column.sketch.missing = self.rows - 1
            if isinstance(value, str | bool) and name in self.options.sensitive:
                value = self._text(name, value)
            column.sketch.update(value)
        for column in self.columns.values():
            if column.sketch.seen < self.rows:
                column.sketch.update(None)

    def fix_bins(self) -> None:
        for column in self.columns.values():
            column.type = infer_type(column.sketch)
            if column.type in ("int", "float"):
                column.bins = BinCounts.zero(tuple(column.sketch.quantile_edges(self.options.bins)))
            else:
                top, column.distinct = column.sketch.top_categories(self.options.max_vocabulary)
                column.vocabulary = dict.fromkeys(top, 0)

    def second_pass(self, row: dict[str, Any]) -> None:
        for name, value in self._values(row):
            column = self.columns.get(name)
            if column is None or value is None:
                continue
            if column.bins is not None:
                numeric = isinstance(value, int | float) and not isinstance(value, bool)
                x = as_float(value) if numeric else math.nan  # type: ignore[arg-type]
                if math.isfinite(x):
                    column.bins.update(x)
            else:
                text = self._text(name, value)
                if text in column.vocabulary:
                    column.vocabulary[text] += 1
                else:
                    column.other += 1

    def finish(self, source: str) -> Profile:
        features = {name: self._feature_profile(c) for name, c in self.columns.items()}
        return Profile(rows=self.rows, source=source, features=features)

    def _feature_profile(self, column: _Column) -> FeatureProfile:
        s = column.sketch
        profile = FeatureProfile(column.type, s.seen, s.missing, s.nan, s.inf)
        if column.bins is not None:
            profile.numeric = numeric_profile(s, column.bins)
            std = profile.numeric.std
            if len(s.reservoir) >= 100 and std > 0:
                z = (np.asarray(s.reservoir) - profile.numeric.mean) / std
                profile.calibration = calibrate(z, self.options.calibration)
        else:
            profile.categorical = categorical_profile(
                column.vocabulary, column.other, column.distinct
            )
        return profile


def build_profile(
    rows: Iterable[dict[str, Any]],
    again: Iterable[dict[str, Any]],
    options: BaselineOptions,
    source: str,
) -> Profile:
    """Both passes over two iterations of the same rows."""
    builder = BaselineBuilder(options)
    for row in rows:
        builder.first_pass(row)
    builder.fix_bins()
    for row in again:
        builder.second_pass(row)
    return builder.finish(source)
