"""The Engine's state (detectors/engine.py) as versioned plain data, and back: what the embedded
runner checkpoints so that a restart after ``kill -9`` resumes every open window, previous
window and detector where it was (connectors/journal.py replays what came after).

The same rules as the worker's codec (detectors/state_codec.py): parameters come from the
running baselines, a snapshot only fills in counts and detector state, and whatever no longer
fits (another format, another baseline, a model without a baseline) starts fresh with a note
the caller logs; restoring never raises on stored data. Not kept: the label join's pending
predictions (a restart replays those the journal holds; older ones are lost). The label
monitor's windows, detectors and references are kept through detectors/label_state.py.

Floats may be infinite (an empty window's min and max): encode with a JSON codec that keeps
them (``json.dumps`` with its default ``allow_nan=True``).
"""

from __future__ import annotations

import math
from typing import Any

from detectors import label_state
from detectors.change_state import restore_feature, snapshot_feature
from detectors.engine import Engine, ModelState
from detectors.records import DecodeError
from detectors.slice_windows import SliceWindow, SliceWindows
from detectors.state_codec import restore_window
from detectors.watch import FeatureWatch

VERSION = 1


def snapshot(engine: Engine) -> dict[str, Any]:
    labels = None if engine.labels is None else label_state.to_plain(engine.labels)
    return {
        "v": VERSION,
        "models": [_model_plain(s) for s in engine.states.values()],
        "labels": labels,
    }


def _model_plain(state: ModelState) -> dict[str, Any]:
    return {
        "model": state.model,
        "version": state.version,
        "start": state.start,
        "end": state.end,
        "count": state.count,
        "late": state.late,
        "windows": {n: w.to_plain() for n, w in state.windows.items()},
        "previous": {n: w.to_plain() for n, w in state.previous.items()},
        "new_columns": dict(state.new_columns),
        "ongoing": [[f, k, d, since] for (f, k, d), since in state.ongoing.items()],
        "watches": {n: _watch_plain(w) for n, w in state.watches.items()},
        "slices": None if state.slices is None else _slices_plain(state.slices),
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


def _watch_plain(watch: FeatureWatch) -> dict[str, Any]:
    change = None if watch.change is None else snapshot_feature(watch.change)
    return {"change": change, "rates": watch.rates_to_plain()}


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
            engine.states[(state.model, state.version)] = state
    return notes


def _model_state(engine: Engine, plain: dict[str, Any], notes: list[str]) -> ModelState | None:
    model, version = str(plain["model"]), str(plain["version"])
    try:
        baseline = engine.baseline_for(model)
    except DecodeError:
        notes.append(f"{model} v{version}: no baseline for it now; its state is left behind")
        return None
    start, end = float(plain["start"]), float(plain["end"])
    if not (math.isfinite(start) and math.isfinite(end) and start < end):
        notes.append(f"{model} v{version}: window bounds not finite: starting fresh")
        return None
    state = ModelState(baseline, model, version, start, end)
    state.open_window(start, end)
    state.count, state.late = int(plain["count"]), int(plain["late"])
    state.new_columns = {str(k): int(v) for k, v in plain["new_columns"].items()}
    state.ongoing = {(str(f), str(k), str(d)): float(s) for f, k, d, s in plain["ongoing"]}
    where = f"{model} v{version}"
    for name, empty in state.windows.items():
        win = plain["windows"].get(name)
        state.windows[name] = restore_window(win, empty, f"{where} {name} open", notes) or empty
        before = restore_window(
            plain["previous"].get(name), empty, f"{where} {name} previous", notes
        )
        if before is not None:
            state.previous[name] = before
    state.watches = {
        n: _restored_watch(FeatureWatch(r), plain["watches"].get(n), f"{where} {n}", notes)
        for n, r in baseline.references.items()
    }
    if engine.labels is not None and engine.labels.options.slice_key:
        state.slices = SliceWindows(baseline, engine.labels.options.slice_key)
        kept = plain.get("slices") or {}
        state.slices.windows = _restore_slices(
            state.slices, kept.get("windows"), where, notes, whole=True
        )
        state.slices.previous = _restore_slices(
            state.slices, kept.get("previous"), where, notes, whole=False
        )
    return state


def _restored_watch(watch: FeatureWatch, data: Any, where: str, notes: list[str]) -> FeatureWatch:
    if not isinstance(data, dict):
        notes.append(f"{where}: no detector state: its detectors start fresh")
        return watch
    if watch.change is not None and isinstance(data.get("change"), dict):
        watch.change, found = restore_feature(data["change"], watch.change)
        notes += [f"{where}: {n}" for n in found]
    try:
        watch.restore_rates(data["rates"])
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        notes.append(f"{where}: rate tests start fresh ({exc})")
        fresh = FeatureWatch(watch.ref)
        fresh.change = watch.change
        return fresh
    return watch
