"""The label judge's state (a ``LabelMonitor`` without its pending predictions, which the worker
keeps in a table of their own) as versioned plain data, for a changelog-backed table.

Parameters never come from a snapshot: ``from_plain`` builds a monitor from the options and
fills in counts, windows, detector states and references. State kept under options that shape
it differently (task, window length, slice key and top-K, groups) or another version, or that is
damaged, gives a fresh monitor; a detector whose snapshot does not fit starts fresh alone. Each
comes with a note for the caller to log; restoring never raises on stored data.

The watermark may be -inf: encode with a JSON codec that keeps it (``json.dumps`` does).

>>> import json
>>> m = LabelMonitor(LabelOptions(task="regression"))
>>> m.predicted(("ctr", "3"), 1_800_000_000.0, None, ())
>>> restored, notes = from_plain(m.options, json.loads(json.dumps(to_plain(m))))
>>> notes, list(restored.buckets), restored.watermark
([], [(1, 1800000000.0)], -inf)
>>> from_plain(m.options, {"v": 2})[1]
['label state version 2 is not 1: fresh']
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import math
from typing import Any

import datasketches as ds

from detectors.drift.change_state import restore, snapshot
from detectors.labels.monitor import Bucket, Interner, LabelMonitor, LabelOptions, LabelStats
from detectors.labels.performance import SCORE_BINS, ErrorDetectors, PerformanceWindow

VERSION = 1
# What stored data can look like when it does not fit: caught, noted, started fresh.
DAMAGE = (LookupError, TypeError, ValueError, AttributeError, ArithmeticError, RuntimeError)
_COUNTS = ("predictions", "labelled", "tp", "fp", "tn", "fn", "scored")
_SUMS = ("log_loss", "abs_error", "sq_error")


def to_plain(m: LabelMonitor) -> dict[str, Any]:
    """Plain data sharing nothing with the monitor: str keys, lists, numbers, text."""
    return {
        "v": VERSION,
        "shape": _shape(m.options),
        "models": [list(v) for v in m.models.values],
        "slice_names": list(m.slice_names.values),
        "group_values": [list(v) for v in m.group_values.values],
        "buckets": [_bucket(model_id, b) for (model_id, _), b in m.buckets.items()],
        "detectors": [
            {"model": model_id, "slice": name, "labels": d.labels, "errors": d.errors}
            | {"detectors": [snapshot(c) for c in d.detectors]}
            for (model_id, name), d in m.detectors.items()
        ],
        "reference": [
            {"model": model_id, "attr": attr, "count": count}
            | {"windows": {v: _window(w) for v, w in windows.items()}}
            for (model_id, attr), (count, windows) in m.reference.items()
        ],
        "slice_keys": None if m.slice_keys is None else _slice_keys(m),
        "stats": dataclasses.asdict(m.stats),
        "watermark": m.watermark,
    }


def from_plain(options: LabelOptions, data: dict[str, Any]) -> tuple[LabelMonitor, list[str]]:
    """A monitor built from ``options`` carrying the snapshot's state, and notes on what could
    not be restored (empty when everything fitted)."""
    version = data.get("v") if isinstance(data, dict) else None
    if version != VERSION:
        return LabelMonitor(options), [f"label state version {version!r} is not {VERSION}: fresh"]
    if data.get("shape") != _shape(options):
        return LabelMonitor(options), ["label state was kept under other options: fresh"]
    m = LabelMonitor(options)
    try:
        notes = _fill(m, data)
    except DAMAGE as exc:
        return LabelMonitor(options), [f"damaged label state ({type(exc).__name__} {exc}): fresh"]
    return m, notes


def _shape(options: LabelOptions) -> dict[str, Any]:
    """The options the stored state's layout depends on (the rest apply from now on)."""
    return {
        "task": options.task,
        "window_seconds": options.window_seconds,
        "slice_key": options.slice_key,
        "top_k": options.top_k,
        "groups": list(options.groups),
    }


def _fill(m: LabelMonitor, data: dict[str, Any]) -> list[str]:
    _intern(m.models, [(_text(v[0]), _text(v[1])) for v in data["models"]])
    _intern(m.slice_names, [_text(v) for v in data["slice_names"]])
    _intern(m.group_values, [tuple(_text(x) for x in v) for v in data["group_values"]])
    m.buckets = dict(_restore_bucket(m, b) for b in data["buckets"])
    notes: list[str] = []
    for d in data["detectors"]:
        _restore_detectors(m, d, notes)
    for r in data["reference"]:
        windows = {_text(v): _restore_window(w) for v, w in r["windows"].items()}
        m.reference[(_model_id(m, r["model"]), _text(r["attr"]))] = (_count(r["count"]), windows)
    if m.slice_keys is not None:
        _restore_slice_keys(m, data["slice_keys"])
    # A counter added later (human_labels) reads as 0 from an older snapshot, not as corrupt.
    stats = data["stats"]
    m.stats = LabelStats(*(_count(stats.get(f.name, 0)) for f in dataclasses.fields(LabelStats)))
    m.watermark = _number(data["watermark"], infinite=True)
    wait = m.options.wait_seconds
    m._next_close = min((b.end + wait for b in m.buckets.values()), default=math.inf)
    return notes


def _intern(interner: Interner, values: list[Any]) -> None:
    if values[:1] != interner.values[:1] or len(set(values)) != len(values):
        raise ValueError("interned values do not start with the overflow value or repeat")
    interner.values, interner.ids = values, {v: i for i, v in enumerate(values)}


def _bucket(model_id: int, b: Bucket) -> dict[str, Any]:
    latency = b.latency.serialize()
    return {
        "model": model_id,
        "start": b.start,
        "end": b.end,
        "overall": _window(b.overall),
        "slices": {name: _window(w) for name, w in b.slices.items()},
        "groups": [[a, v, _window(w)] for (a, v), w in b.groups.items()],
        "latency": base64.b64encode(latency).decode(),
        "latency_sha256": hashlib.sha256(latency).hexdigest(),
    }


def _restore_bucket(m: LabelMonitor, b: dict[str, Any]) -> tuple[tuple[int, float], Bucket]:
    start, end = _number(b["start"]), _number(b["end"])  # an int start stays an int, as made
    if end != start + m.options.window_seconds:
        raise ValueError(f"bucket {start}..{end} is not one window long")
    latency = base64.b64decode(b["latency"], validate=True)
    if hashlib.sha256(latency).hexdigest() != b["latency_sha256"]:
        raise ValueError("latency sketch does not match its digest")  # damaged bytes can crash it
    bucket = Bucket(
        start,
        end,
        _restore_window(b["overall"]),
        {_text(name): _restore_window(w) for name, w in b["slices"].items()},
        {(_text(a), _text(v)): _restore_window(w) for a, v, w in b["groups"]},
        ds.kll_floats_sketch.deserialize(latency),
    )
    return (_model_id(m, b["model"]), start), bucket


def _restore_detectors(m: LabelMonitor, d: dict[str, Any], notes: list[str]) -> None:
    """One model's or slice's error detectors; a snapshot that does not fit starts fresh."""
    try:
        key = (_model_id(m, d["model"]), _text(d["slice"]))
        detectors = ErrorDetectors(m.calibration)
        detectors.labels, detectors.errors = _count(d["labels"]), _count(d["errors"])
        if detectors.errors > detectors.labels:
            raise ValueError(f"{detectors.errors} errors in {detectors.labels} labels")
        snapshots = {s.get("name"): s for s in d["detectors"] if isinstance(s, dict)}
    except DAMAGE as exc:
        where = d.get("slice") if isinstance(d, dict) else None
        notes.append(f"error detectors of slice {where!r} not restored ({exc}): fresh")
        return
    for i, fresh in enumerate(detectors.detectors):
        found = snapshots.get(fresh.name)
        note: str | None = "no snapshot of it"
        if found is not None:
            detectors.detectors[i], note = restore(found, fresh)
        if note is not None:
            notes.append(f"{fresh.name} of slice {key[1]!r} starts fresh: {note}")
    m.detectors[key] = detectors


def _slice_keys(m: LabelMonitor) -> dict[str, Any]:
    assert m.slice_keys is not None
    s = m.slice_keys.summary
    return {
        "counts": dict(s.counts),
        "errors": dict(s.errors),
        "n": s.n,
        "monitored": sorted(m.slice_keys.monitored),
    }


def _restore_slice_keys(m: LabelMonitor, data: dict[str, Any]) -> None:
    assert m.slice_keys is not None
    s = m.slice_keys.summary
    counts = {_text(k): _count(v) for k, v in data["counts"].items()}
    errors = {_text(k): _count(v) for k, v in data["errors"].items()}
    if counts.keys() != errors.keys() or len(counts) > s.capacity:
        raise ValueError("slice-key counters do not fit their summary")
    s.counts, s.errors, s.n = counts, errors, _count(data["n"])
    m.slice_keys.monitored = frozenset(_text(v) for v in data["monitored"])


def _window(w: PerformanceWindow) -> dict[str, Any]:
    # by hand: dataclasses.asdict deep-copies field by field, ten times slower here
    plain: dict[str, Any] = {name: getattr(w, name) for name in _COUNTS + _SUMS}
    return plain | {"positives": list(w.positives), "negatives": list(w.negatives)}


def _restore_window(data: dict[str, Any]) -> PerformanceWindow:
    w = PerformanceWindow()
    for name in _COUNTS:
        setattr(w, name, _count(data[name]))
    for name in _SUMS:
        setattr(w, name, _number(data[name]))
    for name in ("positives", "negatives"):
        histogram = [_count(c) for c in data[name]]
        if len(histogram) != SCORE_BINS:
            raise ValueError(f"a {name} histogram of {len(histogram)} bins, not {SCORE_BINS}")
        setattr(w, name, histogram)
    return w


def _model_id(m: LabelMonitor, value: Any) -> int:
    model_id = _count(value)
    if model_id >= len(m.models.values):
        raise IndexError(f"model id {model_id} was never interned")
    return model_id


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a count, got {value!r}")
    return value


def _number(value: Any, *, infinite: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    if math.isnan(value) or not (infinite or math.isfinite(value)):
        raise ValueError(f"expected a finite number, got {value!r}")
    return value
