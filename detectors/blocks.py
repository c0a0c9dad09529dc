"""Blocks of serving records decoded column by column: what ``decode_record`` does for each
record, done once per block, with no ``ServingRecord`` built.

``decode_block`` takes a block of parsed JSON values (one per line or per Forward entry) and
returns its records grouped by model version, each group as columns (event times, feature
objects, predictions, the block index of each record) — or None when any record in the block
would not decode cleanly or would decode differently than the fast path assumes (a missing or
unparsable ts, a non-object, a bad model id, a dotted field mapping, ...). The caller then takes
the exact per-record path for that block (``decode_record`` one by one), so a bad record is
still dead-lettered alone with its reason, and a clean block gives exactly what that path gives.

>>> groups = decode_block([
...     {"ts": "2026-11-28T10:00:00.5Z", "model": "ctr", "features": {"x": 1}},
...     {"ts": 1795860001, "model": "ctr", "model_version": "2", "features": {"x": 2}},
... ])
>>> [(g.model, g.version, g.ts, g.features, g.index) for g in groups]
[('ctr', '', [1795860000.5], [{'x': 1}], [0]), ('ctr', '2', [1795860001.0], [{'x': 2}], [1])]
>>> decode_block([{"model": "ctr", "features": {"x": 1}}]) is None  # no ts: the exact path
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain, repeat

from detectors.records import (
    LATEST_TS,
    MAX_ID_CHARS,
    FieldMapping,
    ServingRecord,
    decode_record,
    parse_ts,
)

_ABSENT = object()
DEFAULT_MAPPING = FieldMapping()
_UTC_SUFFIX = "+00:00"


@dataclass(slots=True)
class Block:
    """One model version's records of a block, column by column, in arrival order."""

    model: str
    version: str
    ts: list[float] = field(default_factory=list)
    features: list[dict[str, object]] = field(default_factory=list)
    predictions: list[object] = field(default_factory=list)
    index: list[int] = field(default_factory=list)  # each record's position in the block
    # what ``records`` needs to decode the block's records whole (labels, feature skew)
    raws: list[dict[str, object]] = field(default_factory=list)
    default_ts: list[float] | None = None
    mapping: FieldMapping = DEFAULT_MAPPING
    default_model: str | None = None
    _records: list[ServingRecord] | None = None

    def __len__(self) -> int:
        return len(self.ts)

    def records(self) -> list[ServingRecord]:
        """The block's records as ``decode_record`` reads them (the label and feature-skew
        paths hold request ids, slices and predictions past the window), decoded on first
        use. decode_block took only blocks whose every record decodes."""
        if self._records is None:
            defaults: Sequence[float | None] = self.default_ts or [None] * len(self.raws)
            self._records = [
                decode_record(raw, self.mapping, d, self.default_model)
                for raw, d in zip(self.raws, defaults, strict=True)
            ]
        return self._records


def decode_block(
    raws: Sequence[object],
    mapping: FieldMapping = DEFAULT_MAPPING,
    default_model: str | None = None,
    default_ts: Sequence[float] | None = None,
) -> list[Block] | None:
    """The block's records grouped by (model, version) in order of first appearance, or None
    when the block must take the exact path (see the module's docstring). Never raises.

    Only what the Engine reads without labels or feature skew is kept (ts, model, version,
    features, prediction); request ids and slices are checked as ``decode_record`` checks them,
    so a record it would refuse sends the block to the exact path. ``default_ts``: each
    record's transport time (a Forward entry's), taken where the record has no ts of its own."""
    names = (
        mapping.ts,
        mapping.model,
        mapping.model_version,
        mapping.features,
        mapping.prediction,
        mapping.request_id,
        mapping.slice,
    )
    if not raws or any("." in n for n in names):
        return None
    if set(map(type, raws)) != _DICT:
        return None
    objs: Sequence[dict[str, object]] = raws  # type: ignore[assignment]
    found = list(map(dict.get, objs, repeat(mapping.features), repeat(_ABSENT)))
    if set(map(type, found)) != _DICT:
        return None
    features: list[dict[str, object]] = found  # type: ignore[assignment]
    if not set(map(type, chain.from_iterable(features))) <= _STR:
        return None  # (JSON keys always are; a msgpack entry's may not be)
    stamps = _field(objs, mapping.ts)
    if default_ts is not None:
        stamps = [d if t is None else t for t, d in zip(stamps, default_ts, strict=True)]
    ts = _times(stamps)
    if ts is None:
        return None
    models, versions = _field(objs, mapping.model), _field(objs, mapping.model_version)
    try:
        texts = _ids(set(models), default_model)
        version_texts = _ids(set(versions), "")
    except TypeError:  # an unhashable model or version (a list, an object): the exact path
        return None
    if texts is None or version_texts is None or None in texts.values():
        return None
    if not _fine_ids(_field(objs, mapping.request_id)):
        return None
    if not set(map(type, _field(objs, mapping.slice))) <= _SLICE_TYPES:
        return None
    predictions = _field(objs, mapping.prediction)
    groups: dict[tuple[str, str], Block] = {}
    if len(texts) == 1 and len(version_texts) == 1:  # one group: its first record makes it
        models, versions = models[:1], versions[:1]
    for i, (m, v) in enumerate(zip(models, versions, strict=True)):
        key = (texts[m] or "", version_texts[v] or "")
        group = groups.get(key)
        if group is None:
            group = groups[key] = Block(*key, mapping=mapping, default_model=default_model)
        group.index.append(i)
    if len(groups) == 1:
        (only,) = groups.values()
        only.index = list(range(len(objs)))  # one group holds every record
        only.ts, only.features, only.predictions = ts, features, predictions
        only.raws = list(objs)
        only.default_ts = None if default_ts is None else list(default_ts)
        return [only]
    for group in groups.values():
        group.ts = [ts[i] for i in group.index]
        group.features = [features[i] for i in group.index]
        group.predictions = [predictions[i] for i in group.index]
        group.raws = [objs[i] for i in group.index]
        if default_ts is not None:
            group.default_ts = [default_ts[i] for i in group.index]
    return list(groups.values())


_DICT = {dict}  # type() is exact: a dict subclass takes the exact path
_STR = {str}
_SLICE_TYPES = frozenset((dict, type(None)))
_NUMBER_TYPES = frozenset((int, float))  # type() is exact: bool is not among them
_TIME_TYPES = frozenset((int, float, str))


def _field(objs: Sequence[dict[str, object]], name: str) -> list[object]:
    """``o.get(name)`` of every record, in one C-level pass."""
    return list(map(dict.get, objs, repeat(name)))


def _times(values: list[object]) -> list[float] | None:
    """``parse_ts`` of every value, or None if any would fail (or is absent)."""
    kinds = set(map(type, values))
    try:
        if kinds == {str}:
            texts: list[str] = values  # type: ignore[assignment]
            parsed = [datetime.fromisoformat(t.replace("Z", _UTC_SUFFIX)) for t in texts]
            ts = [(p if p.tzinfo else p.replace(tzinfo=UTC)).timestamp() for p in parsed]
        elif kinds <= _NUMBER_TYPES:
            ts = [float(v) for v in values]  # type: ignore[arg-type]
            ts = [t / 1000 if t > 1e11 else t for t in ts]
        elif kinds <= _TIME_TYPES:  # text and numbers mixed: each as the exact path reads it
            ts = [parse_ts(v) for v in values]
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    if not all(0 <= t <= LATEST_TS for t in ts):  # false for nan too
        return None
    return ts


def _ids(values: set[object], default: str | None) -> dict[object, str | None] | None:
    """``_text`` of each distinct model or version value (None or absent: ``default``)."""
    out: dict[object, str | None] = {}
    for v in values:
        if v is None:
            out[v] = default
        elif type(v) in (str, int):
            text = str(v)
            if len(text) > MAX_ID_CHARS:
                return None
            out[v] = text
        else:
            return None
    return out


def _fine_ids(values: list[object]) -> bool:
    """Request ids ``decode_record`` would accept: text or integers up to MAX_ID_CHARS."""
    kinds = set(map(type, values))
    if kinds <= {str, type(None)}:
        return max((len(v) for v in values if v is not None), default=0) <= MAX_ID_CHARS  # type: ignore[arg-type]
    if kinds <= {str, int, type(None)}:
        return all(v is None or len(str(v)) <= MAX_ID_CHARS for v in values)
    return False
