"""Stage one of the partitioned worker: the per-record half of the Engine, run per partition.

``observe`` validates one record into one ``Observation`` per monitored feature: the same
keyed hashing, ``check_value`` and ``structural_violations`` the Engine applies before it
touches its windows. ``SummaryBuilder`` groups observations into bounded micro-batches keyed
model/version/feature, each entry tagged with its source partition and offset: stage two
(``detectors/feature_state.py``) merges the partitions' batches back into one stream per
feature, in event-time order, and skips offsets it has already applied.

>>> from detectors.baseline.reference import Baseline
>>> from detectors.baseline.profile import FeatureProfile, NumericProfile, Profile
>>> from detectors.baseline.schema import Schema
>>> schema = Schema.model_validate({"model": "m", "features": {"x": {"type": "float"}}})
>>> num = NumericProfile(0.0, 1.0, -3.0, 3.0, {}, [0.0], [0.5, 0.5])
>>> profile = Profile(10, "t", {"x": FeatureProfile("float", 10, 0, 0, 0, num)})
>>> b = Baseline.of(schema, profile, b"k")
>>> from detectors.records import ServingRecord
>>> obs = observe(b, ServingRecord(1.0, "m", "1", {"x": "oops", "y": 2}))
>>> obs["x"], obs[NEW_COLUMNS]
(Observation(value=None, missing=False, codes=('FLOAT_TYPE_STRING_NOT_FLOAT',)), \
Observation(value=None, missing=False, codes=('y',)))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any, Generic, TypeVar, overload

import numpy as np
from numpy.typing import NDArray

from detectors.baseline.reference import Baseline, FeatureReference
from detectors.baseline.schema import PREDICTION, FeatureSpec
from detectors.records import MAX_TEXT_CHARS, ServingRecord, bounded_text
from detectors.validate import Checked, structural_violations

SUMMARY_VERSION = 2  # 1: entries [offset, ts, value, missing, codes]; 2: columnar
# A pseudo-feature per model version carrying the names of columns the schema does not know:
# the Engine scores new columns per model, so they need one owner in stage two as well.
NEW_COLUMNS = "__new_columns__"
# Kafka refuses messages over 1 MB (max.message.bytes): summaries are cut into parts under half
# of that (streams.worker.topics.encode_parts), and a record whose observations alone hold more than
# MAX_RECORD_BYTES of text (categories, unknown column names) is refused, so every part fits.
MAX_RECORD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Observation:
    """One record's contribution to one feature's window: a value for the statistics (float or
    category text, None when it cannot enter them), whether it was missing, and violation codes
    (for NEW_COLUMNS: the unknown column names)."""

    value: float | str | None
    missing: bool = False
    codes: tuple[str, ...] = ()


def observe(baseline: Baseline, record: ServingRecord) -> dict[str, Observation]:
    """What one record says about every monitored feature, plus NEW_COLUMNS. Never raises."""
    return observe_values(baseline, record.features, record.prediction)


def observe_values(
    baseline: Baseline, features: dict[str, object], prediction: object
) -> dict[str, Observation]:
    """``observe`` of a record's features and prediction, without the record. Never raises."""
    structural: dict[str, list[str]] = {}
    new: list[str] = []
    for v in structural_violations(baseline.schema, features):
        if v.code == "SCHEMA_NEW_COLUMN":
            new.append(v.feature)
        else:
            structural.setdefault(v.feature, []).append(v.code)
    out: dict[str, Observation] = {}
    for name, ref in baseline.references.items():
        checked = baseline.check(ref, prediction if name == PREDICTION else features.get(name))
        codes = structural.get(name, ())
        if checked.violation is not None:
            codes = (*codes, checked.violation.code)
        out[name] = (
            Observation(checked.value, checked.missing, tuple(codes))
            if codes or checked.missing
            else Observation(checked.value)
        )
    out[NEW_COLUMNS] = Observation(None, False, tuple(new)) if new else _NOTHING_NEW
    return out


_NOTHING_NEW = Observation(None)
V = TypeVar("V", NDArray[np.float64], list[str])
MIN_COLUMN = 16  # a shorter batch costs more to check columnwise than record by record
_ABSENT = object()


class Plain(Sequence[Observation], Generic[V]):
    """A column checked valid as a whole (none missing, no violation), kept as its plain
    values; reads as the Observations ``observe`` would have made, built only when read one
    by one."""

    __slots__ = ("values",)

    def __init__(self, values: V) -> None:
        self.values: V = values

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, k: int) -> Observation: ...

    @overload
    def __getitem__(self, k: slice) -> Sequence[Observation]: ...

    def __getitem__(self, k: int | slice) -> Observation | Sequence[Observation]:
        if isinstance(k, slice):
            return type(self)(self.values[k])
        value = self.values[k]
        return Observation(float(value) if isinstance(value, np.floating) else value)


class Numbers(Plain[NDArray[np.float64]]):
    """A column of valid, finite numbers, kept as one array: what most columns of a batch are."""

    __slots__ = ()

    @property
    def xs(self) -> NDArray[np.float64]:
        return self.values


class Texts(Plain[list[str]]):
    """A column of valid category values, each within MAX_TEXT_CHARS."""

    __slots__ = ()

    def __iter__(self) -> Iterator[Observation]:
        return map(Observation, self.values)


def observe_batch(
    baseline: Baseline, records: Sequence[ServingRecord]
) -> dict[str, Sequence[Observation]]:
    """``observe`` of every record, column by column: a column whose values all pass the
    schema is checked with numpy (numbers) or set operations (categories); any other column
    (a missing value, a violation, a sensitive feature) takes ``observe``'s exact path,
    value by value. Never raises."""
    return observe_columns(baseline, [r.features for r in records], [r.prediction for r in records])


def observe_columns(
    baseline: Baseline, features: Sequence[dict[str, object]], predictions: Sequence[object]
) -> dict[str, Sequence[Observation]]:
    """``observe_batch`` of records given as their feature objects and predictions, side by
    side (the columnar block decoder, detectors/blocks.py, builds no ServingRecord). Never
    raises."""
    if len(features) < MIN_COLUMN:
        rows = [observe_values(baseline, f, p) for f, p in zip(features, predictions, strict=True)]
        return {name: [o[name] for o in rows] for name in (*baseline.references, NEW_COLUMNS)}
    out: dict[str, Sequence[Observation]] = {}
    present = _present_columns(baseline, features)
    for name, ref in baseline.references.items():
        column = _column(baseline, ref, name, present.get(name), features, predictions)
        if column is None:
            column = _exact(baseline, ref, name, features, predictions)
        out[name] = column
    out[NEW_COLUMNS] = _new_columns(baseline, features)
    return out


def _exact(
    baseline: Baseline,
    ref: FeatureReference,
    name: str,
    features: Sequence[dict[str, object]],
    predictions: Sequence[object],
) -> list[Observation]:
    """One column value by value, as ``observe`` checks it (structural codes first)."""
    listed = baseline.schema.features.get(name)
    required = listed is not None and listed.required
    out: list[Observation] = []
    for f, p in zip(features, predictions, strict=True):
        checked = baseline.check(ref, p if name == PREDICTION else f.get(name))
        out.append(
            _observed(checked, ("SCHEMA_MISSING_COLUMN",) if required and name not in f else ())
        )
    return out


def _observed(checked: Checked, codes: tuple[str, ...] = ()) -> Observation:
    if checked.violation is not None:
        codes = (*codes, checked.violation.code)
    if codes or checked.missing:
        return Observation(checked.value, checked.missing, codes)
    return Observation(checked.value)


def _present_columns(
    baseline: Baseline, features: Sequence[dict[str, object]]
) -> dict[str, list[object]]:
    """The schema's features column by column when every record has all of them (one C-level
    lookup per record, not one per feature), else none: each column then looks its own up."""
    names = [n for n in baseline.references if n != PREDICTION]
    if len(names) < 2:
        return {}
    try:
        rows = list(map(itemgetter(*names), features))
    except KeyError:
        return {}
    return dict(zip(names, map(list, zip(*rows, strict=True)), strict=True))


def _column(
    baseline: Baseline,
    ref: FeatureReference,
    name: str,
    present: list[object] | None,
    features: Sequence[dict[str, object]],
    predictions: Sequence[object],
) -> Sequence[Observation] | None:
    spec = ref.spec
    values: list[object]
    if present is not None:
        values = present
    elif name == PREDICTION:
        values = list(predictions)
        listed = baseline.schema.features.get(PREDICTION)
        if listed is not None and listed.required:
            values = []  # then the structural check looks for it among the features: exact path
    else:
        values = [f.get(name, _ABSENT) for f in features]
    if not values or (spec.missing_values and not _none_missing(spec.missing_values, values)):
        return None
    if spec.numeric:
        return _numbers(spec, values, lambda v: _observed(baseline.check(ref, v)))
    if spec.sensitive:
        return None
    if spec.type == "bool":
        return _bools(values)
    return _texts(spec.domain, values)


def _none_missing(missing: list[float | str], values: list[object]) -> bool:
    try:
        return set(missing).isdisjoint(values)
    except TypeError:  # an unhashable value (a list, an object): the exact path says what
        return False


def _numbers(
    spec: FeatureSpec, values: list[object], exact: Callable[[object], Observation]
) -> Sequence[Observation] | None:
    """A column of finite numbers of the right type, or None (the exact path). Values outside
    the schema's range are the only ones checked one by one (``exact``): a long tail puts a few
    in most batches, and the column's other values stay plain."""
    if not set(map(type, values)) <= _NUMBER_TYPES:
        return None
    try:
        xs = np.fromiter(values, np.float64, len(values))
    except OverflowError:
        return None
    if not np.isfinite(xs).all():
        return None
    if spec.type == "int" and not (xs == np.floor(xs)).all():
        return None
    r = spec.range
    outside = np.zeros(len(xs), dtype=bool)
    if r is not None and r.max is not None:
        outside |= xs > r.max
    if r is not None and r.min is not None:
        outside |= xs < r.min
    if not outside.any():
        return Numbers(xs)
    out = [Observation(x) for x in xs.tolist()]
    for k in np.flatnonzero(outside).tolist():
        out[k] = exact(values[k])
    return out


def _texts(domain: list[str] | None, values: list[object]) -> Texts | None:
    if set(map(type, values)) != _TEXT_TYPES:
        return None
    texts: list[str] = values  # type: ignore[assignment]
    if max(map(len, texts)) > MAX_TEXT_CHARS:
        return None
    if domain is not None and not set(texts) <= set(domain):
        return None
    return Texts(texts)


def _bools(values: list[object]) -> Texts | None:
    """A column of JSON booleans as the categories ``check_value`` names them; 0 and 1, and
    anything else, take the exact path."""
    if set(map(type, values)) != _BOOL_TYPES:
        return None
    return Texts([_BOOL_TEXT[v] for v in values])  # type: ignore[index]


_BOOL_TYPES = {bool}
_BOOL_TEXT = {True: "true", False: "false"}
_NUMBER_TYPES = frozenset((float, int))  # type() is exact: bool is not among them
_TEXT_TYPES = {str}


def _new_columns(baseline: Baseline, features: Sequence[dict[str, object]]) -> list[Observation]:
    schema = baseline.schema
    known = schema.features.keys()
    if schema.allow_new_features or known >= set(chain.from_iterable(features)):
        return [_NOTHING_NEW] * len(features)
    out: list[Observation] = []
    for f in features:
        new = f.keys() - known
        if new:  # in the record's own order, as structural_violations lists them
            names = tuple(bounded_text(n) for n in f if n not in known)
            out.append(Observation(None, False, names))
        else:
            out.append(_NOTHING_NEW)
    return out


def most_text(columns: dict[str, Sequence[Observation]]) -> int:
    """An upper bound of ``largest_text``'s total over every record of the columns (the sum of
    each column's largest): when it is within MAX_RECORD_BYTES, every record is."""
    total = 0
    for column in columns.values():
        if isinstance(column, Numbers):
            continue
        if isinstance(column, Texts):
            total += 4 * max(map(len, column.values), default=0)  # UTF-8: at most 4 bytes a char
            continue
        holding = (o for o in column if o.codes or isinstance(o.value, str))  # most hold none
        total += max((largest_text({"": o})[0] for o in holding), default=0)
    return total


def largest_text(observations: dict[str, Observation]) -> tuple[int, str]:
    """Bytes of text (category values, unknown column names) the observations hold, and the
    feature holding most of it: a record over MAX_RECORD_BYTES cannot go into a summary."""
    total, largest, name = 0, -1, ""
    for feature, obs in observations.items():
        n = len(obs.value.encode()) if isinstance(obs.value, str) else 0
        n += sum(len(code.encode()) for code in obs.codes)
        total += n
        if n > largest:
            largest, name = n, feature
    return total, "unknown column names" if name == NEW_COLUMNS else name


def summary_part(summary: dict[str, Any], lo: int, hi: int) -> dict[str, Any]:
    """Entries lo..hi of a summary, a summary itself (stage two reads consecutive parts as
    consecutive batches)."""
    return (
        summary
        | {
            "watermark": max(summary["ts"][:hi]),  # what the partition had seen by its last entry
            "offsets": summary["offsets"][lo:hi],
            "ts": summary["ts"][lo:hi],
            "values": summary["values"][lo:hi],
            "missing": [i - lo for i in summary["missing"] if lo <= i < hi],
            "codes": [[i - lo, codes] for i, codes in summary["codes"] if lo <= i < hi],
        }
    )


def summary_key(model: str, version: str, feature: str) -> str:
    """The feature-summaries key: one stage-two owner per model version and feature."""
    return f"{model}/{version}/{feature}"


@dataclass(slots=True)
class _Columns:
    """One feature's observations in a micro-batch, column by column (compact on the wire)."""

    values: list[float | str | None] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)  # indices of missing values
    codes: list[list[Any]] = field(default_factory=list)  # [index, [code, ...]], sparse


@dataclass(slots=True)
class _Batch:
    """One model version's micro-batch: offsets and event times are shared by its features
    (every record yields an observation of every monitored feature)."""

    offsets: list[int] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    watermark: float = float("-inf")
    features: dict[str, _Columns] = field(default_factory=dict)


@dataclass(slots=True)
class SummaryBuilder:
    """Micro-batches of one source partition's observations, per model/version/feature.

    The caller drains it after a bounded batch (records or seconds); each summary carries the
    newest event time seen on this partition, which stage two uses as the partition's
    watermark when it merges partitions in event-time order. A summary is columnar:
    ``offsets``, ``ts`` and ``values`` side by side, ``missing`` and ``codes`` sparse (by
    index), so it encodes and decodes in one C call each way."""

    partition: int
    partitions: int
    batches: dict[tuple[str, str], _Batch] = field(default_factory=dict)

    def add(self, offset: int, record: ServingRecord, observations: dict[str, Observation]) -> None:
        batch = self.batches.get((record.model, record.version))
        if batch is None:
            batch = self.batches[(record.model, record.version)] = _Batch()
            batch.features = {feature: _Columns() for feature in observations}
        elif observations.keys() != batch.features.keys():  # one baseline per model: a bug
            raise ValueError(f"observations of {sorted(observations)} in a batch of other features")
        i = len(batch.offsets)
        batch.offsets.append(offset)
        batch.ts.append(record.ts)
        if record.ts > batch.watermark:
            batch.watermark = record.ts
        columns = batch.features
        for feature, obs in observations.items():
            col = columns[feature]
            col.values.append(obs.value)
            if obs.missing:
                col.missing.append(i)
            if obs.codes:
                col.codes.append([i, list(obs.codes)])

    def add_columns(
        self,
        offsets: Sequence[int],
        model: str,
        version: str,
        ts: Sequence[float],
        columns: dict[str, Sequence[Observation]],
    ) -> None:
        """``add`` of every record of a block at once: one model version's records (their
        offsets and event times) and ``observe_columns`` of them."""
        batch = self.batches.get((model, version))
        if batch is None:
            batch = self.batches[(model, version)] = _Batch()
            batch.features = {feature: _Columns() for feature in columns}
        elif columns.keys() != batch.features.keys():  # one baseline per model: a bug
            raise ValueError(f"observations of {sorted(columns)} in a batch of other features")
        base = len(batch.offsets)
        batch.offsets += offsets
        batch.ts += ts
        batch.watermark = max(batch.watermark, max(ts, default=batch.watermark))
        for feature, column in columns.items():
            col = batch.features[feature]
            if isinstance(column, Numbers):
                col.values += column.xs.tolist()
                continue
            if isinstance(column, Texts):
                col.values += column.values
                continue
            col.values += [o.value for o in column]
            for i, o in enumerate(column):
                if o.missing:
                    col.missing.append(base + i)
                if o.codes:
                    col.codes.append([base + i, list(o.codes)])

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        """(key, summary) pairs to publish, and an empty builder."""
        out = [
            (
                summary_key(model, version, feature),
                {
                    "v": SUMMARY_VERSION,
                    "model": model,
                    "version": version,
                    "feature": feature,
                    "partition": self.partition,
                    "partitions": self.partitions,
                    "watermark": batch.watermark,
                    "offsets": batch.offsets,
                    "ts": batch.ts,
                    "values": col.values,
                    "missing": col.missing,
                    "codes": col.codes,
                },
            )
            for (model, version), batch in self.batches.items()
            for feature, col in batch.features.items()
        ]
        self.batches = {}
        return out
