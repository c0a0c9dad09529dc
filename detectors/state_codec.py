"""Stage-two state (detectors/feature_state.py) as versioned plain data, and back.

Parameters come from the running baseline, never from stored state: a snapshot only fills in
counts and detector state. What no longer fits the baseline (another version of this format,
other bin edges or categories, a detector snapshot that does not load) starts fresh, and the
reasons are returned for the caller to log; restoring never raises on stored data.

Floats may be infinite (an empty window's min and max): encode with a JSON codec that keeps
them, e.g. ``json.dumps`` with its default ``allow_nan=True``. The merge buffer (``BUFFER``),
most of the bytes, holds only what summaries brought (see ``streams.worker.tables``).
"""

from __future__ import annotations

import math
from itertools import compress
from typing import Any

from detectors.drift.change_state import restore_feature, snapshot_feature
from detectors.feature_state import STATE_VERSION, CompareStep, Entry, FeatureState
from detectors.stats import FeatureWindow
from detectors.watch import FeatureWatch
from detectors.window import FeatureTrack

BUFFER = "buffer"  # the merge buffer's key


def to_plain(state: FeatureState) -> dict[str, Any]:
    clock, track = state.clock, state.track
    window = track.window if track is not None else FeatureWindow()
    previous = track.previous if track is not None else None
    return {
        "v": STATE_VERSION,
        "model": clock.model,
        "version": clock.version,
        "feature": state.feature,
        "opened": clock.opened,
        "start": clock.start,
        "end": clock.end,
        "count": clock.count,
        "late": clock.late,
        "window": window.to_plain(),
        "previous": None if previous is None else previous.to_plain(),
        "detectors": watch_plain(track),
        "ongoing": [[f, k, d, since] for (f, k, d), since in clock.ongoing.items()],
        "new_columns": dict(state.columns.counts) if state.columns is not None else {},
        "offsets": {str(p): o for p, o in state.offsets.items()},
        "watermarks": {str(p): w for p, w in state.watermarks.items()},
        "partitions": state.partitions,
        BUFFER: _buffer_columns(state.buffer),
    }


def watch_plain(track: FeatureTrack | None) -> dict[str, Any] | None:
    """A track's per-value judgement (change detectors and rate tests) as plain data."""
    if track is None:
        return None
    watch = track.watch
    change = None if watch.change is None else snapshot_feature(watch.change)
    return {"change": change, "rates": watch.rates_to_plain()}


def restore_watch(track: FeatureTrack | None, data: Any, notes: list[str]) -> None:
    """Put stored detectors and rate tests back into ``track``; what does not fit starts fresh
    (said in ``notes``)."""
    if track is None:
        return
    watch = track.watch
    if not isinstance(data, dict):
        notes.append("no detector state (an older format): detectors start fresh")
        return
    if watch.change is not None:
        if isinstance(data.get("change"), dict):
            watch.change, found = restore_feature(data["change"], watch.change)
            notes += found
        else:
            notes.append("no change-detector state: the detectors start fresh")
    try:
        watch.restore_rates(data["rates"])
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        notes.append(f"rate tests start fresh ({exc})")
        track.watch = FeatureWatch(watch.ref)
        track.watch.change = watch.change


def _buffer_columns(buffer: list[Entry]) -> dict[str, Any]:
    """The merge buffer column by column, missing and codes sparse: most of a state's bytes."""
    if not buffer:
        return {"ts": [], "partition": [], "offset": [], "value": [], "missing": [], "codes": []}
    ts, partition, offset, value, missing, codes = zip(*buffer, strict=True)
    n = range(len(buffer))
    coded = zip(compress(n, codes), filter(None, codes), strict=True)
    return {
        "ts": ts,
        "partition": partition,
        "offset": offset,
        "value": value,
        "missing": list(compress(n, missing)),
        "codes": [[i, list(c)] for i, c in coded],
    }


def _buffer(data: dict[str, Any] | list[Any]) -> list[Entry]:
    if isinstance(data, list):  # state version 1: a list of entries
        return [(float(e[0]), int(e[1]), int(e[2]), e[3], bool(e[4]), tuple(e[5])) for e in data]
    n = len(data["ts"])
    missing = [False] * n
    for i in data["missing"]:
        missing[i] = True
    codes: list[tuple[str, ...]] = [()] * n
    for i, found in data["codes"]:
        codes[i] = tuple(str(c) for c in found)
    columns = zip(
        map(float, data["ts"]),
        map(int, data["partition"]),
        map(int, data["offset"]),
        data["value"],
        missing,
        codes,
        strict=True,
    )
    return sorted(columns)


def _fits(window: FeatureWindow, empty: FeatureWindow) -> bool:
    """Same bin edges or the same known categories as the baseline's empty window."""
    if (window.bins is None) != (empty.bins is None):
        return False
    if window.bins is not None and empty.bins is not None:
        return window.bins.edges == empty.bins.edges
    if window.categories is not None and empty.categories is not None:
        return window.categories.known.keys() == empty.categories.known.keys()
    return window.categories is None and empty.categories is None


def restore_window(
    data: dict[str, Any] | None, empty: FeatureWindow, what: str, notes: list[str]
) -> FeatureWindow | None:
    if data is None:
        return None
    try:
        window = FeatureWindow.from_plain(data)
    except (KeyError, TypeError, ValueError) as exc:
        notes.append(f"{what} window not restored ({exc}); starting it empty")
        return None
    if not _fits(window, empty):
        notes.append(f"{what} window was kept over another baseline; starting it empty")
        return None
    return window


def from_plain(step: CompareStep, data: dict[str, Any]) -> tuple[FeatureState, list[str]]:
    """The restored state and what had to start fresh (empty when everything fitted)."""
    try:
        model, version, feature = str(data["model"]), str(data["version"]), str(data["feature"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"stage-two state without a key: {exc}") from None
    state = step.new_state(model, version, feature)
    if data.get("v") not in (1, STATE_VERSION):  # 1 differs only in the buffer's layout
        return state, [f"state version {data.get('v')!r} is not {STATE_VERSION}: starting fresh"]
    notes: list[str] = []
    clock = state.clock
    try:
        opened = bool(data["opened"])
        start, end = float(data["start"]), float(data["end"])
        clock.count, clock.late = int(data["count"]), int(data["late"])
        clock.ongoing = {(f, k, d): float(s) for f, k, d, s in data["ongoing"]}
        counts = {str(k): int(v) for k, v in data["new_columns"].items()}
        state.offsets = {int(p): int(o) for p, o in data["offsets"].items()}
        state.watermarks = {int(p): float(w) for p, w in data["watermarks"].items()}
        state.partitions = int(data["partitions"])
        state.buffer = _buffer(data["buffer"])
        snapshots = data["detectors"]
    except (KeyError, TypeError, ValueError) as exc:
        return step.new_state(model, version, feature), [f"damaged state ({exc}): starting fresh"]
    if not (math.isfinite(start) and math.isfinite(end)):
        return step.new_state(model, version, feature), ["window bounds not finite: fresh"]
    clock.opened, clock.start, clock.end = opened, start, end
    if state.columns is not None:
        state.columns.counts = counts
    track = state.track
    if track is not None:
        empty = track.window
        track.window = restore_window(data.get("window"), empty, "open", notes) or empty
        track.previous = restore_window(data.get("previous"), empty, "previous", notes)
    restore_watch(track, snapshots, notes)
    return state, notes
