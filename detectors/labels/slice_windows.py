"""Feature statistics per top-K slice: a change local to one slice (men's dress shoes) while
the model-wide windows look normal.

Each slice's window of every feature is compared with the same slice's previous window (drift)
by the same tests as the model-wide windows (``compare_feature``), so the same false-alarm
rate holds per test. A slice is not compared with the training baseline: slices differ from the
whole by design, and the baseline holds no per-slice profile. Memory: top-K slices x features x
bins, whatever the traffic.
"""

from __future__ import annotations

import dataclasses

from detectors.anomaly import Anomaly, anomaly_id
from detectors.baseline.reference import Baseline
from detectors.drift.compare import Finding, compare_feature
from detectors.stats import OTHER, FeatureWindow

SliceWindow = dict[str, FeatureWindow]
Observed = dict[str, float | str | None]  # a number or category; None: missing; absent: invalid
_INVALID = object()


def observed(baseline: Baseline, values: dict[str, object]) -> Observed:
    """One record's values as a slice window counts them (sensitive categories as keyed
    hashes): what the worker's label join sends its judge, never a raw sensitive value."""
    out: Observed = {}
    for name, ref in baseline.references.items():
        checked = baseline.check(ref, values.get(name))
        if checked.missing or checked.value is not None:
            out[name] = checked.value
    return out


class SliceWindows:
    def __init__(self, baseline: Baseline, key: str) -> None:
        self.baseline = baseline
        self.key = key
        self.windows: dict[str, SliceWindow] = {}  # the open window of each slice
        self.previous: dict[str, SliceWindow] = {}

    def observe(self, label: str, values: dict[str, object]) -> None:
        """Account one record's values in its slice's window ("other" is not watched)."""
        if label != OTHER:
            self.count(label, observed(self.baseline, values), self.windows)

    def count(self, label: str, values: Observed, windows: dict[str, SliceWindow]) -> None:
        """Account values ``observed`` already in ``windows`` (the open ones, or the worker's
        window of their event time)."""
        if label == OTHER:
            return
        wins = windows.get(label)
        if wins is None:
            refs = self.baseline.references
            wins = windows[label] = {n: r.empty_window() for n, r in refs.items()}
        for name, win in wins.items():
            win.seen += 1
            x = values.get(name, _INVALID)
            if x is None:
                win.missing += 1
            elif isinstance(x, float) and win.bins is not None:
                win.bins.update(x)
                win.moments.update(x)
            elif isinstance(x, str) and win.categories is not None:
                win.categories.update(x)

    def close(
        self, min_count: int, windows: dict[str, SliceWindow] | None = None
    ) -> list[tuple[str, str, Finding]]:
        """(slice, feature, drift finding) of every slice window (the open ones, or ``windows``)
        against the same slice's previous one."""
        out: list[tuple[str, str, Finding]] = []
        for label, wins in sorted((self.windows if windows is None else windows).items()):
            before = self.previous.setdefault(label, {})
            for name, ref in self.baseline.references.items():
                win = wins[name]
                _, findings = compare_feature(ref, win, before.get(name), min_count)
                out += [(label, name, f) for f in findings if f.kind == "drift"]
                if win.valid >= min_count:
                    before[name] = win
        if windows is None:
            self.windows = {}
        return out


def sliced(anomaly: Anomaly, key: str, label: str) -> Anomaly:
    """The model-wide anomaly, moved to one slice: its own id, and a message naming it."""
    where = {key: label}
    return dataclasses.replace(
        anomaly,
        id=anomaly_id(
            anomaly.model,
            anomaly.model_version,
            anomaly.feature,
            anomaly.kind,
            anomaly.detector,
            anomaly.window_start,
            where,
        ),
        slice=where,
        message=f"slice {key}={label}: {anomaly.message}",
    )
