"""The worker's per-slice feature windows (in its label judge, when slices are on): the
embedded runner's ``SliceWindows``, in windows of event time closed by a watermark instead of
by the model's window, since the judge sees a model's predictions from every partition, each
partition in order but not the partitions among themselves.

A window closes once the prediction watermark is past its end; a prediction older than a
closed window is counted late and left out. Memory: open windows x top-K slices x features x
bins; open windows are bounded by the watermark's lateness (``kafka.max_lateness``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from detectors.anomaly import Anomaly
from detectors.baseline.reference import Baseline
from detectors.labels.slice_windows import Observed, SliceWindow, SliceWindows, sliced
from detectors.state_codec import restore_window
from detectors.window import EngineOptions, align
from detectors.window_anomalies import Span, window_anomaly


@dataclass(slots=True)
class OpenWindow:
    count: int = 0  # predictions of every slice, "other" included
    slices: dict[str, SliceWindow] = field(default_factory=dict)


class SliceFeatures:
    def __init__(
        self, baseline: Baseline, key: str, options: EngineOptions, model: str, version: str
    ) -> None:
        self.windows = SliceWindows(baseline, key)  # holds each slice's previous window
        self.options = options
        self.model, self.version = model, version
        self.open: dict[float, OpenWindow] = {}  # by start
        self.closed_until = -math.inf
        self.late = 0

    def observe(self, ts: float, label: str, values: Observed) -> None:
        if ts < self.closed_until:
            self.late += 1
            return
        window = self.open.setdefault(self._align(ts), OpenWindow())
        window.count += 1
        self.windows.count(label, values, window.slices)

    def close_until(self, watermark: float) -> list[Anomaly]:
        """Judge every window that ends by ``watermark``, oldest first."""
        if not math.isfinite(watermark):
            return []
        width = self.options.window_seconds
        out: list[Anomaly] = []
        for start in sorted(s for s in self.open if s + width <= watermark):
            out += self._judge(start, self.open.pop(start))
        self.closed_until = max(self.closed_until, self._align(watermark))
        return out

    def _align(self, ts: float) -> float:
        return align(ts, self.options.window_seconds)

    def _judge(self, start: float, window: OpenWindow) -> list[Anomaly]:
        end = start + self.options.window_seconds
        view = Span(self.model, self.version, start, end, window.count)
        found = self.windows.close(self.options.min_count, window.slices)
        return [sliced(window_anomaly(view, n, f, {}), self.windows.key, s) for s, n, f in found]


def to_plain(f: SliceFeatures) -> dict[str, Any]:
    def plain(slices: dict[str, SliceWindow]) -> dict[str, Any]:
        return {s: {n: w.to_plain() for n, w in wins.items()} for s, wins in slices.items()}

    return {
        "v": 1,
        "model": f.model,
        "version": f.version,
        "key": f.windows.key,
        "closed_until": f.closed_until if math.isfinite(f.closed_until) else None,
        "late": f.late,
        "open": [[start, w.count, plain(w.slices)] for start, w in sorted(f.open.items())],
        "previous": plain(f.windows.previous),
    }


def from_plain(f: SliceFeatures, data: dict[str, Any]) -> list[str]:
    """Restore into a new ``f``; what had to start fresh (empty when everything fitted)."""
    if data.get("v") != 1 or data.get("key") != f.windows.key:
        return [f"slice windows of version {data.get('v')!r}, key {data.get('key')!r}: fresh"]
    notes: list[str] = []
    try:
        until = data["closed_until"]
        f.closed_until = -math.inf if until is None else float(until)
        f.late = int(data["late"])
        for start, count, slices in data["open"]:
            f.open[float(start)] = OpenWindow(int(count), _slices(f, slices, "open", notes))
        f.windows.previous = _slices(f, data["previous"], "previous", notes)
    except (KeyError, TypeError, ValueError) as exc:
        f.open, f.windows.previous, f.closed_until = {}, {}, -math.inf
        return [f"damaged slice windows ({exc}): starting fresh"]
    return notes


def _slices(
    f: SliceFeatures, data: dict[str, Any], what: str, notes: list[str]
) -> dict[str, SliceWindow]:
    """An open window has every feature (empty when not restored); a previous one only those
    that had enough data to be compared with."""
    out: dict[str, SliceWindow] = {}
    for label, wins in data.items():
        restored: SliceWindow = {}
        for name, ref in f.windows.baseline.references.items():
            empty = ref.empty_window()
            window = restore_window(wins.get(name), empty, f"{what} {label} {name}", notes)
            if window is not None or what == "open":
                restored[name] = window or empty
        out[str(label)] = restored
    return out
