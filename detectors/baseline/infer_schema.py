"""Infer a schema document from a training profile, with a note explaining each feature, and
keep a person's edits when the baseline is built again.

>>> merge_edits({"a": 1, "b": 2}, previous={"a": 1, "b": 1}, current={"a": 1, "b": 5})
{'a': 1, 'b': 5}
>>> merge_edits({"a": 1, "b": 2}, previous={"a": 1, "b": 1}, current={"a": 1, "b": 1})
{'a': 1, 'b': 2}
"""

from __future__ import annotations

import math
from typing import Any

from detectors.baseline.null_levels import NullLevels
from detectors.baseline.profile import FeatureProfile, Profile
from detectors.baseline.schema import PREDICTION

_UNSET = object()


def _range(f: FeatureProfile, tolerance: float) -> dict[str, float] | None:
    num = f.numeric
    if num is None or not math.isfinite(num.min):
        return None
    lo, hi = num.quantiles["p0.1"], num.quantiles["p99.9"]
    pad = tolerance * (hi - lo) if hi > lo else tolerance * max(abs(hi), 1.0)
    low, high = lo - pad, hi + pad
    if num.min >= 0:
        low = max(low, 0.0)  # never negative in training: a negative value is a bug, not drift
    if f.type == "int":
        low, high = math.floor(low), math.ceil(high)
    return {"min": float(low), "max": float(high)}


def _feature(f: FeatureProfile, tolerance: float, sensitive: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": f.type, "required": f.missing == 0}
    if f.numeric is not None:
        spec["range"] = _range(f, tolerance)
        spec["allow_nan"] = f.nan > 0
        spec["allow_inf"] = f.inf > 0
    elif f.categorical is not None and f.type == "categorical":
        cat = f.categorical
        spec["domain"] = sorted(cat.frequencies) if cat.complete else None
    spec["sensitive"] = sensitive
    return spec


def _presence(missing: int, rows: int) -> str:
    """How often a feature was there, never rounded to 100% when it was missing somewhere (the
    note would then contradict ``required: false``).

    >>> _presence(0, 20_000)
    'present in 100.0% of 20,000 training rows'
    >>> _presence(1, 20_000)
    'missing in 1 of 20,000 training rows'
    >>> _presence(5_000, 20_000)
    'present in 75.0% of 20,000 training rows'
    """
    present = 1 - missing / rows if rows else 0.0
    if missing and f"{present:.1%}" == "100.0%":
        return f"missing in {missing:,} of {rows:,} training rows"
    return f"present in {present:.1%} of {rows:,} training rows"


def _note(name: str, f: FeatureProfile, rows: int) -> str:
    parts = [f"{name}: {f.type}, {_presence(f.missing, rows)}"]
    if f.numeric is not None:
        parts.append("range = training p0.1..p99.9 widened by the tolerance")
        if f.calibration:
            ph, ad = f.calibration["page_hinkley"], f.calibration["adwin"]
            blocks = f.calibration.get("blocks", {"size": 1.0, "shift": 0.5})
            parts.append(
                f"change detectors calibrated on means of {blocks['size']:.0f} consecutive "
                f"values, for shifts from {blocks['shift']:.2f} sd: page_hinkley threshold "
                f"{ph['threshold']:.1f}, adwin delta {ad['delta']:.2e}"
            )
    if f.null_levels:
        levels = NullLevels.from_json(f.null_levels)
        n = min(1_000.0, float(rows))
        parts.append(
            f"chance levels learned from the training rows' own variation: a window of "
            f"{n:,.0f} records counts as {levels.effective('skew', n):,.0f} independent ones"
        )
    if f.categorical is not None:
        cat = f.categorical
        if cat.complete:
            parts.append(f"domain closed: all {len(cat.frequencies)} training values")
        else:
            parts.append(
                f"domain open: {cat.distinct}+ distinct values, top {len(cat.frequencies)} "
                f"tracked ({cat.other:.1%} of rows in 'other')"
            )
    return "; ".join(parts)


def infer_schema(
    profile: Profile,
    *,
    model: str | None,
    tolerance: float,
    sensitive: frozenset[str],
) -> tuple[dict[str, Any], dict[str, str]]:
    """The schema document (plain data, ready for YAML) and a note per feature. The profile
    names the model's output ``prediction`` whatever the training column was called."""
    features: dict[str, Any] = {}
    notes: dict[str, str] = {}
    prediction: dict[str, Any] | None = None
    for name, f in profile.features.items():
        spec = _feature(f, tolerance, name in sensitive)
        if name == PREDICTION:
            prediction = spec
        else:
            features[name] = spec
        notes[name] = _note(name, f, profile.rows)
    doc: dict[str, Any] = {"version": 1, "model": model, "features": features}
    if prediction is not None:
        doc["prediction"] = prediction
    return doc, notes


def merge_edits(inferred: Any, previous: Any, current: Any) -> Any:
    """Where the current file differs from what was inferred last time, a person edited it:
    keep their value. Elsewhere take the new inference. Keys a person deleted stay deleted."""
    if current is _UNSET:
        return inferred
    if isinstance(inferred, dict) and isinstance(current, dict):
        prev = previous if isinstance(previous, dict) else {}
        merged: dict[str, Any] = {}
        for key, value in inferred.items():
            if key in prev and key not in current:
                continue  # deleted by a person
            merged[key] = merge_edits(value, prev.get(key, _UNSET), current.get(key, _UNSET))
        for key, value in current.items():
            untouched = key in prev and prev[key] == value
            if key not in merged and key not in inferred and not untouched:
                merged[key] = value  # added or changed by a person
        return merged
    if previous is _UNSET or current != previous:
        return current
    return inferred
