"""Build a baseline from training rows: two streaming passes, then an inferred schema with a
note on every choice, so the person who edits ``schema.yaml`` knows what they are changing.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors.baseline.calibrate import CalibrationOptions, calibrate
from detectors.baseline.null_levels import ChunkCounts, TimeChunks
from detectors.baseline.profile import (
    ColumnSketch,
    FeatureProfile,
    Profile,
    categorical_profile,
    category_text,
    numeric_profile,
)
from detectors.baseline.reference import smoothed
from detectors.baseline.schema import PREDICTION, FeatureType
from detectors.baseline.scores import OrderedSample, ScoreMap
from detectors.privacy import keyed_hash
from detectors.records import parse_ts
from detectors.stats import OTHER, BinCounts, Moments
from detectors.validate import as_float

BUCKET_SECONDS = 3_600.0  # the level's movement over time is measured hour by hour
MIN_BUCKETS = 16
MAX_BUCKETS = 10_000  # wider buckets for longer files: memory stays bounded


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
    # The column that orders the rows in time (not profiled); rows without it: file order.
    time_column: str | None = "ts"

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
    index: dict[str, int] = field(default_factory=dict)  # category -> its chunk column
    chunks: ChunkCounts | None = None
    scores: ScoreMap | None = None
    ordered: OrderedSample | None = None
    hourly: NDArray[np.float64] | None = None  # score sums and counts per time bucket
    timed: TimeChunks | None = None  # value counts per time bucket
    inner: Moments = field(default_factory=Moments.zero)  # moments within the support


class BaselineBuilder:
    """Feed every row to ``first_pass``, call ``fix_bins``, feed every row again to
    ``second_pass``, then ``finish``. Memory: a fixed set of sketches and counters per column."""

    def __init__(self, options: BaselineOptions) -> None:
        self.options = options
        self.columns: dict[str, _Column] = {}
        self.rows = 0
        self.times: array[float] | None = array("d")  # None once a row lacks a usable time
        self.hours: NDArray[np.int64] | None = None  # each row's time bucket (pass two)
        self.positions: NDArray[np.int64] | None = None  # each row's place in time order
        self.order = "file"
        self.bucket_seconds = BUCKET_SECONDS
        self._second = 0

    def _text(self, name: str, value: object) -> str:
        text = category_text(value)
        return (
            keyed_hash(self.options.privacy_key, text) if name in self.options.sensitive else text
        )

    def _values(self, row: dict[str, Any]) -> Iterable[tuple[str, object]]:
        skip = self.options.ignore
        return ((k, v) for k, v in row.items() if k not in skip and k != self.options.time_column)

    def _named(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with the model's output under ``prediction``: whatever the training file
        calls it, the profile, schema.yaml and serving records (through the field mapping)
        all name it so, and one name holds everywhere after training."""
        column = self.options.prediction_column
        if column == PREDICTION or column not in row:
            return row
        if PREDICTION in row:
            raise ValueError(
                f"the training data has both a {PREDICTION!r} column and the prediction "
                f"column {column!r}: rename one of them"
            )
        return {(PREDICTION if k == column else k): v for k, v in row.items()}

    def _note_time(self, row: dict[str, Any]) -> None:
        if self.times is None:
            return
        try:
            self.times.append(parse_ts(row[self.options.time_column]))  # type: ignore[index]
        except (KeyError, ValueError):
            self.times = None

    def first_pass(self, row: dict[str, Any]) -> None:
        row = self._named(row)
        self.rows += 1
        self._note_time(row)
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

    def _fix_order(self) -> None:
        if self.options.time_column is None or not self.times or len(self.times) != self.rows:
            return
        self.order = f"time ({self.options.time_column})"
        times = np.asarray(self.times)
        if (np.diff(times) < 0).any():
            ranks = np.empty(self.rows, dtype=np.int64)
            ranks[np.argsort(times, kind="stable")] = np.arange(self.rows)
            self.positions = ranks
        span = float(times.max() - times.min())
        if span >= MIN_BUCKETS * BUCKET_SECONDS:  # enough hours to see the level move
            self.bucket_seconds = max(BUCKET_SECONDS, span / MAX_BUCKETS)
            self.hours = ((times - times.min()) // self.bucket_seconds).astype(np.int64)
        self.times = None

    def fix_bins(self) -> None:
        self._fix_order()
        for column in self.columns.values():
            column.type = infer_type(column.sketch)
            column.ordered = OrderedSample(self.rows)
            if column.type in ("int", "float") and self.hours is not None:
                column.hourly = np.zeros((2, int(self.hours.max()) + 1))
            if column.type in ("int", "float"):
                edges = column.sketch.quantile_edges(
                    self.options.bins, self.options.range_tolerance
                )
                column.bins = BinCounts.zero(tuple(edges))
                column.chunks = ChunkCounts(self.rows, len(column.bins.counts) + 1)
                self._time_chunks(column, len(column.bins.counts) + 1)
                if column.sketch.reservoir:
                    column.scores = ScoreMap.from_sample(column.sketch.reservoir)
            else:
                top, column.distinct = column.sketch.top_categories(self.options.max_vocabulary)
                column.vocabulary = dict.fromkeys(top, 0)
                column.index = {v: i for i, v in enumerate(top)}
                column.chunks = ChunkCounts(self.rows, len(top) + 2)  # + other + missing
                self._time_chunks(column, len(top) + 2)

    def _time_chunks(self, column: _Column, width: int) -> None:
        if self.hours is not None:
            buckets = int(self.hours.max()) + 1
            column.timed = TimeChunks(buckets, width, self.bucket_seconds)

    def second_pass(self, row: dict[str, Any]) -> list[str]:
        """Account the row; the numeric columns in which it holds something else (text in a
        number column: a bad row for the caller to report, whose value counts in no bin)."""
        row = self._named(row)
        i = self._second
        position = i if self.positions is None else int(self.positions[i])
        hour = -1 if self.hours is None else int(self.hours[i])
        self._second += 1
        not_numbers: list[str] = []
        for name, column in self.columns.items():
            value = None if name in self.options.ignore else row.get(name)
            assert column.chunks is not None
            if value is None:
                slot: int | None = column.chunks.width - 1
                column.chunks.add(position, column.chunks.width - 1)
            elif column.bins is not None:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    not_numbers.append(name)
                slot = self._second_number(column, value, position, hour)
            else:
                text = self._text(name, value)
                if text in column.vocabulary:
                    column.vocabulary[text] += 1
                else:
                    column.other += 1
                slot = column.index.get(text, len(column.index))
                column.chunks.add(position, slot)
            if column.timed is not None and slot is not None:
                column.timed.add(hour, slot)
        return not_numbers

    @staticmethod
    def _second_number(column: _Column, value: object, position: int, hour: int) -> int | None:
        """Account one number; its bin, or None when it is not a finite number."""
        assert column.bins is not None and column.chunks is not None
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        x = as_float(value) if numeric else math.nan  # type: ignore[arg-type]
        if not math.isfinite(x):
            return None
        i = bisect.bisect_right(column.bins.edges, x)
        column.bins.counts[i] += 1
        column.chunks.add(position, i)
        if 0 < i < len(column.bins.counts) - 1:  # within the support: no absurd value
            column.inner.update(x)
        if column.scores is not None and column.ordered is not None:
            z = column.scores.z(x)
            column.ordered.add(position, z)
            if column.hourly is not None:
                column.hourly[0, hour] += z
                column.hourly[1, hour] += 1
        return i

    def finish(self, source: str) -> Profile:
        features = {name: self._feature_profile(c) for name, c in self.columns.items()}
        return Profile(rows=self.rows, source=source, features=features, order=self.order)

    def _feature_profile(self, column: _Column) -> FeatureProfile:
        s = column.sketch
        profile = FeatureProfile(column.type, s.seen, s.missing, s.nan, s.inf)
        assert column.chunks is not None and column.ordered is not None
        if column.bins is not None:
            profile.numeric = numeric_profile(s, column.bins, column.inner)
            counts = column.bins.counts
            probs = smoothed(profile.numeric.frequencies, sum(counts))
            if column.scores is not None:
                profile.scores = column.scores.to_json()
            segments = column.ordered.segments()
            if sum(len(z) for z in segments) >= 100 and profile.numeric.std > 0:
                hourly = None if column.hourly is None else (column.hourly[0], column.hourly[1])
                profile.calibration = calibrate(segments, self.options.calibration, hourly)
        else:
            profile.categorical = categorical_profile(
                column.vocabulary, column.other, column.distinct
            )
            counts = [*column.vocabulary.values(), column.other]
            total = sum(counts)
            probs = tuple(c / total for c in counts) if total else ()
        if probs:
            levels = column.chunks.levels(probs)
            profile.null_levels = levels.to_json()
            if column.timed is not None:
                names = None if column.bins is not None else [*column.vocabulary, OTHER]
                seasons = column.timed.seasons(probs, names)
                profile.seasons = seasons.to_json()
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
