"""Checkpoints of the per-event change detectors (detectors/drift/change.py) as versioned plain
data, for changelog-backed tables: the one place that reads and writes river's detector internals.

Page-Hinkley's and DDM's states are a handful of floats, written out field by field. ADWIN's
lives in a Rust object; its own ``__getstate__`` bytes are kept as an opaque snapshot, tagged
with the river version, a digest and its parameters (the bytes carry them too, so a snapshot
under other parameters is refused rather than loaded). Parameters never come from a snapshot:
the caller builds fresh detectors from the baseline's calibration and a snapshot only fills in
their state. Whatever does not fit (another river version, another baseline, a damaged
snapshot) yields the fresh detector and a reason the caller logs; recovery never crashes on it.

>>> cal = {"delta": 0.25, "threshold": 40.0, "alpha": 1.0, "min_instances": 30.0}
>>> d = StandardizedChange("page_hinkley", page_hinkley(cal), mean=10.0, std=2.0)
>>> _ = [d.update(10.0 + (i % 3 - 1)) for i in range(100)]
>>> fresh = StandardizedChange("page_hinkley", page_hinkley(cal), mean=10.0, std=2.0)
>>> restored, note = restore(snapshot(d), fresh)
>>> note is None, restored.seen, restored.detector._x_mean.n
(True, 100, 100.0)
>>> restore({"v": 99}, fresh)[1]
'unknown detector snapshot version 99'
"""

from __future__ import annotations

import base64
import hashlib
import math
from typing import Any

from river.__version__ import __version__ as RIVER_VERSION
from river.drift import ADWIN, PageHinkley
from river.drift.binary import DDM

from detectors.drift.change import FeatureChange, StandardizedChange, page_hinkley

__all__ = ["page_hinkley", "restore", "restore_feature", "snapshot", "snapshot_feature"]

VERSION = 1
_PH_FIELDS = ("_sum_increase", "_sum_decrease", "_min_increase", "_max_decrease")
_ADWIN_PARAMS = ("delta", "clock", "max_buckets", "min_window_length", "grace_period")


def _page_hinkley_state(d: PageHinkley) -> dict[str, Any]:
    state: dict[str, Any] = {f: float(getattr(d, f)) for f in _PH_FIELDS}
    state["n"] = float(d._x_mean.n)
    state["mean"] = float(d._x_mean.get())
    return state


def _ddm_state(d: DDM) -> dict[str, Any]:
    # _ps_min is not written: river keeps it as _p_min + _s_min (inf until the warm start ends)
    return {
        "n": float(d._p.n),
        "mean": float(d._p.get()),
        "p_min": d._p_min,
        "s_min": d._s_min,
        "warning": bool(d._warning_detected),
    }


def _restore_ddm(state: dict[str, Any], d: DDM) -> None:
    n, mean = float(state["n"]), float(state["mean"])
    if not (n >= 0 and 0 <= mean <= 1):
        raise ValueError(f"DDM error rate {mean} over {n} labels")
    d._p.n, d._p._mean = n, mean
    if state["p_min"] is not None:  # None until the warm start is over
        d._p_min, d._s_min = float(state["p_min"]), float(state["s_min"])
        d._ps_min = d._p_min + d._s_min
        if not math.isfinite(d._ps_min):
            raise ValueError("DDM minimum is not finite")
    d._warning_detected = bool(state["warning"])


def _adwin_state(d: ADWIN) -> dict[str, Any]:
    raw = bytes(d._helper.__getstate__())
    return {
        "bytes": base64.b64encode(raw).decode(),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "params": {p: getattr(d, p) for p in _ADWIN_PARAMS},
    }


def snapshot(d: StandardizedChange) -> dict[str, Any]:
    """Plain, JSON-able state of one detector (floats may be infinite: use a codec that keeps
    them, as the worker's table codec does)."""
    out: dict[str, Any] = {
        "v": VERSION,
        "name": d.name,
        "river": RIVER_VERSION,
        "mean": d.mean,
        "std": d.std,
        "seen": d.seen,
        "recent": d.recent,
        "drift": bool(d.detector.drift_detected),
    }
    if isinstance(d.detector, PageHinkley):
        out["page_hinkley"] = _page_hinkley_state(d.detector)
    elif isinstance(d.detector, ADWIN):
        out["adwin"] = _adwin_state(d.detector)
    elif isinstance(d.detector, DDM):
        out["ddm"] = _ddm_state(d.detector)
    return out


def _mismatch(data: dict[str, Any], fresh: StandardizedChange) -> str | None:
    if data.get("v") != VERSION:
        return f"unknown detector snapshot version {data.get('v')!r}"
    if data.get("name") != fresh.name:
        return f"snapshot is of {data.get('name')!r}, expected {fresh.name!r}"
    if data.get("mean") != fresh.mean or data.get("std") != fresh.std:
        return "the baseline's mean or std changed since the snapshot"
    return None


def _restore_page_hinkley(state: dict[str, Any], d: PageHinkley) -> None:
    for f in _PH_FIELDS:
        setattr(d, f, float(state[f]))
    d._x_mean.n = float(state["n"])
    d._x_mean._mean = float(state["mean"])


def _restore_adwin(data: dict[str, Any], state: dict[str, Any], d: ADWIN) -> str | None:
    if data.get("river") != RIVER_VERSION:
        return f"ADWIN snapshot from river {data.get('river')}, running {RIVER_VERSION}"
    params = {p: getattr(d, p) for p in _ADWIN_PARAMS}
    if state.get("params", params) != params:  # snapshots written before params: as they were
        return "ADWIN snapshot was kept under other parameters"
    raw = base64.b64decode(state["bytes"])
    if hashlib.sha256(raw).hexdigest() != state["sha256"]:
        return "ADWIN snapshot does not match its digest"
    try:
        d._helper.__setstate__(raw)
    except BaseException as exc:  # a Rust panic is a BaseException, not an Exception
        if type(exc).__name__ != "PanicException" and not isinstance(exc, Exception):
            raise
        return f"ADWIN snapshot did not load: {type(exc).__name__}"
    return None


def restore(
    data: dict[str, Any], fresh: StandardizedChange
) -> tuple[StandardizedChange, str | None]:
    """``fresh`` (built from the baseline) carrying the snapshot's state, and None; or
    ``fresh`` untouched and the reason the snapshot could not be used."""
    reason = _mismatch(data, fresh)
    if reason is not None:
        return fresh, reason
    try:
        if isinstance(fresh.detector, PageHinkley) and "page_hinkley" in data:
            _restore_page_hinkley(data["page_hinkley"], fresh.detector)
        elif isinstance(fresh.detector, ADWIN) and "adwin" in data:
            reason = _restore_adwin(data, data["adwin"], fresh.detector)
        elif isinstance(fresh.detector, DDM) and "ddm" in data:
            _restore_ddm(data["ddm"], fresh.detector)
        else:
            reason = f"no state for a {type(fresh.detector).__name__} in the snapshot"
        seen, recent = int(data["seen"]), float(data["recent"])
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        reason = f"damaged detector snapshot: {type(exc).__name__} {exc}"
    if reason is not None:
        return _rebuilt(fresh), reason
    if not math.isfinite(recent):
        return _rebuilt(fresh), "damaged detector snapshot: recent mean is not finite"
    fresh.seen, fresh.recent = seen, recent
    fresh.detector._drift_detected = bool(data.get("drift", False))
    return fresh, None


def _rebuilt(d: StandardizedChange) -> StandardizedChange:
    """A partly written detector is not trusted: the same parameters, empty state."""
    detector = d.detector.clone()
    return StandardizedChange(d.name, detector, d.mean, d.std)


def snapshot_feature(d: FeatureChange) -> dict[str, Any]:
    """A feature's detectors: the partly filled block and recent mean, and each detector."""
    return {
        "v": VERSION,
        "block": d.block,
        "seen": d.seen,
        "recent": d.recent,
        "total": d.total,
        "filled": d.filled,
        "detectors": [snapshot(x) for x in d.detectors],
    }


def restore_feature(data: dict[str, Any], fresh: FeatureChange) -> tuple[FeatureChange, list[str]]:
    """``fresh`` with the snapshot's state where it fits, and what started fresh."""
    if data.get("v") != VERSION or data.get("block") != fresh.block:
        return fresh, ["feature detectors kept under another block size or format: fresh"]
    try:
        seen, recent = int(data["seen"]), float(data["recent"])
        total, filled = float(data["total"]), int(data["filled"])
        by_name = {s.get("name"): s for s in data["detectors"] if isinstance(s, dict)}
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        return fresh, [f"damaged feature detector snapshot ({exc}): fresh"]
    if not (math.isfinite(recent) and math.isfinite(total) and 0 <= filled < fresh.block):
        return fresh, ["damaged feature detector snapshot: fresh"]
    fresh.seen, fresh.recent, fresh.total, fresh.filled = seen, recent, total, filled
    notes = []
    for i, d in enumerate(fresh.detectors):
        if d.name not in by_name:
            notes.append(f"no snapshot of {d.name}: it starts fresh")
            continue
        fresh.detectors[i], note = restore(by_name[d.name], d)
        if note is not None:
            notes.append(f"{d.name} starts fresh: {note}")
    return fresh, notes
