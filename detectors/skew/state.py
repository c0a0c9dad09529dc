"""The feature-skew judge's state (``SkewWindows``: open windows per model, what was judged, the
counters) as versioned plain data, for the worker's changelog-backed table.

Options never come from a snapshot. State of another version, kept under another window
length, or damaged, gives fresh windows and a note for the caller to log; restoring never
raises on stored data.

>>> import json
>>> from detectors.skew.monitor import SkewOptions, SkewWindows
>>> w = SkewWindows(SkewOptions(window_seconds=60.0), lambda m: None)
>>> w.judged_until[("ctr", "3")] = 120.0
>>> restored, notes = from_plain(w.options, w.baseline_for, json.loads(json.dumps(to_plain(w))))
>>> notes, restored.judged_until
([], {('ctr', '3'): 120.0})
>>> from_plain(w.options, w.baseline_for, {"v": 9})[1]
['feature skew state version 9 is not 1: fresh']
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

import datasketches as ds

from detectors.baseline.reference import Baseline
from detectors.skew.feature_skew import MAX_COMMON, OTHER_KEY, SkewWindow
from detectors.skew.monitor import SkewBucket, SkewOptions, SkewStats, SkewWindows

VERSION = 1
DAMAGE = (LookupError, TypeError, ValueError, AttributeError, ArithmeticError, RuntimeError)
_COUNTS = ("joined", "differ", "serving_only", "pipeline_only", "numeric_differ")


def to_plain(w: SkewWindows) -> dict[str, Any]:
    return {
        "v": VERSION,
        "window_seconds": w.options.window_seconds,
        "buckets": [
            {"model": list(model), "start": b.start, "joined": b.joined}
            | {"features": {name: _window(s) for name, s in b.features.items()}}
            for (model, _), b in w.buckets.items()
        ],
        "judged_until": [[*model, until] for model, until in w.judged_until.items()],
        "stats": dataclasses.asdict(w.stats),
    }


def from_plain(
    options: SkewOptions, baseline_for: Callable[[str], Baseline | None], data: Any
) -> tuple[SkewWindows, list[str]]:
    fresh = SkewWindows(options, baseline_for)
    version = data.get("v") if isinstance(data, dict) else None
    if version != VERSION:
        return fresh, [f"feature skew state version {version!r} is not {VERSION}: fresh"]
    if data.get("window_seconds") != options.window_seconds:
        return fresh, ["feature skew state was kept with another window length: fresh"]
    w = SkewWindows(options, baseline_for)
    try:
        for b in data["buckets"]:
            model = (_text(b["model"][0]), _text(b["model"][1]))
            start = float(b["start"])
            bucket = SkewBucket(start, start + options.window_seconds, _count(b["joined"]))
            bucket.features = {_text(k): _restore_window(v) for k, v in b["features"].items()}
            w.buckets[(model, start)] = bucket
        w.judged_until = {(_text(m), _text(v)): float(t) for m, v, t in data["judged_until"]}
        w.stats = SkewStats(*(_count(data["stats"][f.name]) for f in dataclasses.fields(SkewStats)))
    except DAMAGE as exc:
        return fresh, [f"damaged feature skew state ({type(exc).__name__} {exc}): fresh"]
    return w, []


def _window(s: SkewWindow) -> dict[str, Any]:
    plain: dict[str, Any] = {name: getattr(s, name) for name in _COUNTS}
    plain["common"] = dict(s.common)
    for name in ("ratios", "differences"):
        raw = getattr(s, name).serialize()
        plain[name] = base64.b64encode(raw).decode()
        plain[f"{name}_sha256"] = hashlib.sha256(raw).hexdigest()
    return plain


def _restore_window(data: dict[str, Any]) -> SkewWindow:
    s = SkewWindow()
    for name in _COUNTS:
        setattr(s, name, _count(data[name]))
    common = {_text(k): _count(v) for k, v in data["common"].items()}
    if len([k for k in common if k != OTHER_KEY]) > MAX_COMMON:
        raise ValueError(f"{len(common)} common values, over {MAX_COMMON}")
    s.common = common
    for name in ("ratios", "differences"):
        raw = base64.b64decode(data[name], validate=True)
        if hashlib.sha256(raw).hexdigest() != data[f"{name}_sha256"]:
            raise ValueError(f"{name} sketch does not match its digest")  # damaged bytes crash it
        setattr(s, name, ds.kll_floats_sketch.deserialize(raw))
    return s


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a count, got {value!r}")
    return value
