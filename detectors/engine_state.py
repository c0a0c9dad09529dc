"""The Engine's state (detectors/engine.py) as versioned plain data, and back: what the embedded
runner checkpoints so that a restart after ``kill -9`` resumes every open window, previous
window and detector where it was (connectors/journal.py replays what came after).

The same rules as the worker's codec (detectors/state_codec.py): parameters come from the
running baselines, a snapshot only fills in counts and detector state, and whatever no longer
fits (another format, another baseline, a model without a baseline) starts fresh with a note
the caller logs; restoring never raises on stored data. Not kept: the label join's pending
predictions (a restart replays those the journal holds; older ones are lost). The label
monitor's windows, detectors and references are kept through detectors/labels/state.py.

Floats may be infinite (an empty window's min and max): encode with a JSON codec that keeps
them (``json.dumps`` with its default ``allow_nan=True``).
"""

from __future__ import annotations

import math
from typing import Any

from detectors.engine import Engine, ModelState
from detectors.labels import state as label_state
from detectors.labels.slice_windows import SliceWindow, SliceWindows
from detectors.records import DecodeError
from detectors.state_codec import restore_watch, restore_window, watch_plain
from detectors.window import FeatureTrack, Tumbling

VERSION = 2  # 2: the one window state machine (detectors/window.py)


def snapshot(engine: Engine) -> dict[str, Any]:
    labels = None if engine.labels is None else label_state.to_plain(engine.labels)
    return {
        "v": VERSION,
        "models": [_model_plain(s) for s in engine.states.values()],
        "labels": labels,
    }


def _model_plain(state: ModelState) -> dict[str, Any]:
    clock = state.clock
    return {
        "model": clock.model,
        "version": clock.version,
        "opened": clock.opened,
        "start": clock.start,
        "end": clock.end,
        "count": clock.count,
        "late": clock.late,
        "ongoing": [[f, k, d, since] for (f, k, d), since in clock.ongoing.items()],
        "tracks": {n: _track_plain(t) for n, t in state.tracks.items()},
        "new_columns": dict(state.columns.counts),
        "slices": None if state.slices is None else _slices_plain(state.slices),
    }


def _track_plain(track: FeatureTrack) -> dict[str, Any]:
    previous = track.previous
    return {
        "window": track.window.to_plain(),
        "previous": None if previous is None else previous.to_plain(),
        "detectors": watch_plain(track),
    }


def _slices_plain(slices: SliceWindows) -> dict[str, Any]:
    def plain(windows: dict[str, SliceWindow]) -> dict[str, Any]:
        return {
            label: {n: w.to_plain() for n, w in wins.items()} for label, wins in windows.items()
        }

    return {"windows": plain(slices.windows), "previous": plain(slices.previous)}


def _restore_slices(
    slices: SliceWindows, data: Any, where: str, notes: list[str], *, whole: bool
) -> dict[str, SliceWindow]:
    """Slice windows from plain data; ``whole``: every feature's window (the open ones)."""
    out: dict[str, SliceWindow] = {}
    for label, wins in (data or {}).items():
        kept: SliceWindow = {}
        for name, ref in slices.baseline.references.items():
            empty = ref.empty_window()
            win = restore_window(wins.get(name), empty, f"{where} slice {label} {name}", notes)
            if win is not None or whole:
                kept[name] = win or empty
        out[str(label)] = kept
    return out


def restore(engine: Engine, data: Any) -> list[str]:
    """Fill ``engine`` (fresh, without state) from a snapshot; returns what started fresh."""
    if not isinstance(data, dict) or data.get("v") != VERSION:
        version = data.get("v") if isinstance(data, dict) else None
        return [f"engine state version {version!r} is not {VERSION}: starting fresh"]
    notes: list[str] = []
    if engine.labels is not None and isinstance(data.get("labels"), dict):
        engine.labels, found = label_state.from_plain(engine.labels.options, data["labels"])
        notes += [f"labels: {n}" for n in found]
    for plain in data.get("models") or []:
        try:
            state = _model_state(engine, plain, notes)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            notes.append(f"damaged model state ({exc!r}): that model starts fresh")
            continue
        if state is not None:
            engine.states[(state.clock.model, state.clock.version)] = state
    return notes


def _model_state(engine: Engine, plain: dict[str, Any], notes: list[str]) -> ModelState | None:
    model, version = str(plain["model"]), str(plain["version"])
    try:
        baseline = engine.baseline_for(model)
    except DecodeError:
        notes.append(f"{model} v{version}: no baseline for it now; its state is left behind")
        return None
    start, end = float(plain["start"]), float(plain["end"])
    if not (math.isfinite(start) and math.isfinite(end) and start <= end):
        notes.append(f"{model} v{version}: window bounds not finite: starting fresh")
        return None
    clock = Tumbling(engine.options, model, version, bool(plain["opened"]), start, end)
    clock.count, clock.late = int(plain["count"]), int(plain["late"])
    clock.ongoing = {(str(f), str(k), str(d)): float(s) for f, k, d, s in plain["ongoing"]}
    slices = None
    if engine.labels is not None and engine.labels.options.slice_key:
        slices = SliceWindows(baseline, engine.labels.options.slice_key)
    state = ModelState(baseline, clock, slices)
    state.columns.counts = {str(k): int(v) for k, v in plain["new_columns"].items()}
    where = f"{model} v{version}"
    for name, track in state.tracks.items():
        kept = plain["tracks"].get(name) or {}
        empty = track.window
        track.window = (
            restore_window(kept.get("window"), empty, f"{where} {name} open", notes) or empty
        )
        track.previous = restore_window(
            kept.get("previous"), empty, f"{where} {name} previous", notes
        )
        found: list[str] = []
        restore_watch(track, kept.get("detectors"), found)
        notes += [f"{where} {name}: {n}" for n in found]
    if slices is not None:
        kept_slices = plain.get("slices") or {}
        slices.windows = _restore_slices(
            slices, kept_slices.get("windows"), where, notes, whole=True
        )
        slices.previous = _restore_slices(
            slices, kept_slices.get("previous"), where, notes, whole=False
        )
    return state
