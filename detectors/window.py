"""The one window state machine: every runner's windows open, account, carry over, close,
compare, rotate and report here. The Engine (embedded runner, `logdrift check`) keeps one
``Tumbling`` per model version over every feature's ``FeatureTrack``; the worker's stage two
keeps one per model version and feature, over that feature's track (or the unknown columns).

Windows are tumbling, ``window_seconds`` long, aligned to the epoch. ``Tumbling.feed`` takes a
batch of event times in arrival order, which may span window boundaries: it accounts the run of
records before the first one at or past the window's end, closes the window there and goes on.
A window of fewer than ``min_count`` records is not judged at a close: it stays open into the
next period (carried over), and runs to the end of the period of the record that closed it. A
record older than the open window's start is late: accounted in the open window and counted.
Both runners close a window by that rule, and close an idle stream's windows by
``close_until`` (a watermark past their end) and at shutdown by ``close(final=True)``.

>>> opts = EngineOptions(window_seconds=10.0, min_count=2)
>>> clock = Tumbling(opts, "m", "1")
>>> runs: list[tuple[int, int]] = []
>>> class Nothing:
...     def judge(self, span: Span, flagged: dict[FlagKey, float]) -> Judged:
...         return Judged([], [], {})
...     def rotate(self) -> None: ...
>>> clock.feed([1.0, 12.0, 13.0, 25.0], Nothing(), lambda lo, hi, base: runs.append((lo, hi)) or [])
[]
>>> runs, (clock.start, clock.end, clock.count)  # 1.0 alone was carried over into [0, 20)
([(0, 1), (1, 3), (3, 4)], (20.0, 30.0, 1))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from detectors.anomaly import Anomaly
from detectors.baseline.reference import FeatureReference
from detectors.baseline.schema import Thresholds
from detectors.drift.compare import compare_feature, violation_finding
from detectors.stages import Numbers, Observation, Texts
from detectors.stats import OTHER, FeatureWindow
from detectors.watch import FeatureWatch, Signal
from detectors.window_anomalies import FlagKey, Span, signal_anomaly, window_anomaly
from detectors.window_report import FeatureScore, WindowReport


def align(ts: float, width: float) -> float:
    """The start of the ``width``-second window holding ``ts`` (windows aligned to the epoch):
    the one rule every windowed statistic (features, slices, labels) starts its windows by."""
    return math.floor(ts / width) * width


@dataclass(frozen=True, slots=True)
class EngineOptions:
    window_seconds: float = 60.0
    min_count: int = 200
    new_column_cap: int = 32
    max_model_versions: int = 256  # state per (model, version): bounded even if versions churn

    def __post_init__(self) -> None:
        if not self.window_seconds > 0:
            raise ValueError(f"window_seconds must be positive, got {self.window_seconds}")
        if self.min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {self.min_count}")


@dataclass(slots=True)
class Judged:
    """What a closing window's contents found: scores and windows for the report (none: the
    contents make no report, as the worker's unknown-columns owner), and the anomalies."""

    scores: list[FeatureScore] | None
    anomalies: list[Anomaly]
    windows: dict[str, FeatureWindow]


class Contents(Protocol):
    """What a window holds: judged at its close, then started again."""

    def judge(self, span: Span, flagged: dict[FlagKey, float]) -> Judged: ...

    def rotate(self) -> None: ...


# account(lo, hi, base): records lo..hi of the batch entered the open window, which held
# ``base`` records before them; returns the anomalies they raised, in order.
Account = Callable[[int, int, int], list[Anomaly]]


@dataclass(slots=True)
class Tumbling:
    """The clock of one key's windows and the loop that drives them."""

    options: EngineOptions
    model: str
    version: str
    opened: bool = False
    start: float = 0.0
    end: float = 0.0
    count: int = 0
    late: int = 0
    ongoing: dict[FlagKey, float] = field(default_factory=dict)

    def align(self, ts: float) -> float:
        return align(ts, self.options.window_seconds)

    def open(self, start: float) -> None:
        self.opened = True
        self.start, self.end = start, start + self.options.window_seconds
        self.count, self.late = 0, 0

    def span(self, count: int | None = None) -> Span:
        """The open window as anomalies name it (``count``: records so far, if not all)."""
        n = self.count if count is None else count
        return Span(self.model, self.version, self.start, self.end, n, self.ongoing)

    def feed(
        self,
        ts: Sequence[float],
        contents: Contents,
        account: Account,
        reports: list[WindowReport] | None = None,
    ) -> list[Anomaly]:
        """Account a batch (event times in arrival order), closing windows where it crosses
        their end; the anomalies raised, in order, and each closed window into ``reports``."""
        out: list[Anomaly] = []
        n = len(ts)
        if n and not self.opened:
            self.open(self.align(ts[0]))
        if n == 1:  # one record: no run to look for
            if ts[0] >= self.end:
                out += self._cross(ts[0], contents, reports)
            base = self.count
            self.count += 1
            self.late += ts[0] < self.start
            return out + account(0, 1, base)
        lo = 0
        while lo < n:
            if ts[lo] >= self.end:
                out += self._cross(ts[lo], contents, reports)
            hi, end, start, late = lo, self.end, self.start, 0
            while hi < n and ts[hi] < end:
                late += ts[hi] < start
                hi += 1
            base = self.count
            self.count += hi - lo
            self.late += late
            out += account(lo, hi, base)
            lo = hi
        return out

    def _cross(
        self, ts: float, contents: Contents, reports: list[WindowReport] | None
    ) -> list[Anomaly]:
        """A record at or past the window's end: close the window, then make room for ts."""
        out = self.close(contents, False, reports)
        if self.count == 0:  # closed, not carried over: start the period holding ts
            self.open(self.align(ts))
        else:  # carried over: it now runs to the end of the period holding ts
            self.end = max(self.end, self.align(ts) + self.options.window_seconds)
        return out

    def close(
        self, contents: Contents, final: bool, reports: list[WindowReport] | None = None
    ) -> list[Anomaly]:
        """Judge the open window, or (too few records, not ``final``) carry it over."""
        if self.count < self.options.min_count and not final:
            self.end += self.options.window_seconds
            return []
        flagged: dict[FlagKey, float] = {}
        judged = contents.judge(self.span(), flagged)
        if reports is not None and judged.scores is not None:
            reports.append(
                WindowReport(
                    self.model,
                    self.version,
                    self.start,
                    self.end,
                    self.count,
                    self.late,
                    judged.scores,
                    judged.anomalies,
                    judged.windows,
                    partial=final and self.count < self.options.min_count,
                )
            )
        self.ongoing = flagged
        contents.rotate()
        self.open(self.end)
        return list(judged.anomalies)

    def close_until(
        self, watermark: float, contents: Contents, reports: list[WindowReport] | None = None
    ) -> list[Anomaly]:
        """Close the open window if it ended at or before ``watermark`` (an idle stream's)."""
        if self.count and self.end <= watermark:
            return self.close(contents, False, reports)
        return []

    def alarms(
        self,
        ref: FeatureReference,
        found: list[tuple[int, Signal]],
        lo: int,
        base: int,
        ts: Sequence[float],
    ) -> list[tuple[int, Anomaly]]:
        """Per-value alarms of records ``lo``.. (batch index, signal) as anomalies of the open
        window, each counting the records up to its own."""
        return [(k, signal_anomaly(self.span(base + k - lo + 1), ref, s, ts[k])) for k, s in found]


_NUMBERS = (float, int)  # not bool: type() is exact
_TEXT = (str,)
MIN_COLUMN = 16  # a shorter run of numbers costs more to go columnwise than value by value


class FeatureTrack:
    """One feature's windows: the open one, the last one judged on enough data, and the
    per-value judgement of every value (``FeatureWatch``)."""

    __slots__ = ("min_count", "previous", "ref", "watch", "window")

    def __init__(self, ref: FeatureReference, min_count: int) -> None:
        self.ref, self.min_count = ref, min_count
        self.window = ref.empty_window()
        self.previous: FeatureWindow | None = None
        self.watch = FeatureWatch(ref)

    def account(
        self, observations: Sequence[Observation], lo: int, hi: int
    ) -> list[tuple[int, Signal]]:
        """Observations lo..hi into the open window; (index, signal) of what alarmed. Columns
        checked valid columnwise (``Numbers``, ``Texts``) and runs of plain values (valid
        finite numbers, valid category values) go per run (``FeatureWatch.observe_numbers``,
        ``observe_texts``), the rest (a missing value, a violation) one by one."""
        if hi - lo == 1:  # a batch of one record (fluent-logger sends them one at a time)
            one = self.watch.observe(self.window, observations[lo])
            return [(lo, s) for s in one] if one else []
        win = self.window
        if isinstance(observations, Numbers):
            return self._run(observations.xs[lo:hi], lo)
        if isinstance(observations, Texts) and win.categories is not None:
            return self._run(observations.values[lo:hi], lo)
        if win.bins is None and win.categories is None:
            return self._one_by_one(observations, lo, hi)
        plain = _NUMBERS if win.bins is not None else _TEXT
        out: list[tuple[int, Signal]] = []
        run = lo
        for k in range(lo, hi):
            o = observations[k]
            if o.missing or o.codes or type(o.value) not in plain:
                out += self._plain(observations, run, k)
                out += self._one_by_one(observations, k, k + 1)
                run = k + 1
        return out + self._plain(observations, run, hi)

    def _plain(
        self, observations: Sequence[Observation], lo: int, hi: int
    ) -> list[tuple[int, Signal]]:
        """A run of plain values: per run when long enough to pay (numbers only when all
        finite: inf and nan take the exact path), else one by one."""
        if hi - lo < MIN_COLUMN:
            return self._one_by_one(observations, lo, hi)
        if self.window.bins is None:
            return self._run([o.value for o in observations[lo:hi]], lo)  # type: ignore[misc]
        xs = np.fromiter((o.value for o in observations[lo:hi]), np.float64, hi - lo)
        if not np.isfinite(xs).all():
            return self._one_by_one(observations, lo, hi)
        return self._run(xs, lo)

    def _run(self, values: NDArray[np.float64] | list[str], lo: int) -> list[tuple[int, Signal]]:
        if isinstance(values, list):
            found = self.watch.observe_texts(self.window, values)
        else:
            found = self.watch.observe_numbers(self.window, values)
        return [(lo + i, s) for i, s in found]

    def _one_by_one(
        self, observations: Sequence[Observation], lo: int, hi: int
    ) -> list[tuple[int, Signal]]:
        win, observe = self.window, self.watch.observe
        out: list[tuple[int, Signal]] = []
        for k in range(lo, hi):
            found = observe(win, observations[k])
            if found:
                out += [(k, s) for s in found]
        return out

    def judge(
        self, span: Span, flagged: dict[FlagKey, float]
    ) -> tuple[FeatureScore, list[Anomaly]]:
        seconds = span.end - span.start
        score, findings = compare_feature(
            self.ref, self.window, self.previous, self.min_count, seconds
        )
        return score, [window_anomaly(span, self.ref.name, f, flagged) for f in findings]

    def rotate(self) -> None:
        if self.window.valid >= self.min_count:
            self.previous = self.window
        self.window = self.ref.empty_window()


class NewColumns:
    """Columns the schema does not know, counted per window (at most ``cap`` names, the rest
    as one "other"), each judged as a violation rate of the window's records."""

    __slots__ = ("cap", "counts", "thresholds")

    def __init__(self, thresholds: Thresholds, cap: int) -> None:
        self.thresholds, self.cap = thresholds, cap
        self.counts: dict[str, int] = {}

    def add(self, names: Sequence[str]) -> None:
        for name in names:
            if name not in self.counts and len(self.counts) >= self.cap:
                name = OTHER
            self.counts[name] = self.counts.get(name, 0) + 1

    def judge(self, span: Span, flagged: dict[FlagKey, float]) -> list[Anomaly]:
        t, out = self.thresholds, []
        for column, count in sorted(self.counts.items()):
            new = violation_finding(
                "SCHEMA_NEW_COLUMN", count, span.count, t.violation_rate, t.false_alarm_rate
            )
            if new is not None:
                out.append(window_anomaly(span, column, new, flagged))
        return out

    def rotate(self) -> None:
        self.counts = {}
