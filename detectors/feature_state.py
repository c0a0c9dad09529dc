"""Stage two of the partitioned worker: one owner per model/version/feature merges the
partitions' micro-batches (detectors/stages.py) into one stream and runs the Engine's per-feature
half on it — window accounting, change detectors and rate tests through the Engine's own
``FeatureWatch`` (detectors/watch.py), window-close comparisons.

Why merge before detecting: a change detector fed a quarter of the events (one partition)
needs about four times as many events to fire. Here every detector sees every event of its
feature. The merge releases entries in event-time order once every source partition's watermark
(its newest event time) has passed them, so 1 and 4 partitions feed the detectors the same
sequence and raise the same anomalies, with the same ids, as the Engine on the ordered stream.
A partition that lags more than ``max_lateness`` seconds of event time stops holding the
others back (its entries then count as late, as the Engine counts late records).

Replays are idempotent: per source partition the state keeps the last offset applied, and an
entry at or below it is skipped. The whole state round-trips through ``to_plain``/``from_plain``
(versioned plain data) for a changelog-backed table.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.anomaly import Anomaly
from detectors.baseline import Baseline, FeatureReference
from detectors.compare import FeatureScore, compare_feature, violation_finding
from detectors.engine import (
    EngineOptions,
    FlagKey,
    ModelState,
    WindowReport,
    signal_anomaly,
    window_anomaly,
)
from detectors.stages import NEW_COLUMNS, Observation
from detectors.stats import OTHER, FeatureWindow
from detectors.watch import FeatureWatch

STATE_VERSION = 2  # 1 kept the merge buffer as a list of entries


@dataclass(frozen=True, slots=True)
class MergeOptions:
    max_lateness: float = 60.0  # event-time seconds a silent partition may hold the rest back
    max_buffer: int = 5_000  # entries held for ordering; bounds the changelog record size

    def __post_init__(self) -> None:
        if not self.max_lateness >= 0:
            raise ValueError(f"max_lateness must be >= 0, got {self.max_lateness}")
        if self.max_buffer < 0:
            raise ValueError(f"max_buffer must be >= 0, got {self.max_buffer}")


@dataclass(slots=True)
class FeatureState:
    model: str
    version: str
    feature: str
    opened: bool = False
    start: float = 0.0
    end: float = 0.0
    count: int = 0
    late: int = 0
    window: FeatureWindow = field(default_factory=FeatureWindow)
    previous: FeatureWindow | None = None
    watch: FeatureWatch | None = None  # None for NEW_COLUMNS and features not in the baseline
    ongoing: dict[FlagKey, float] = field(default_factory=dict)
    new_columns: dict[str, int] = field(default_factory=dict)
    offsets: dict[int, int] = field(default_factory=dict)  # source partition -> last applied
    watermarks: dict[int, float] = field(default_factory=dict)  # partition -> newest ts
    partitions: int = 1
    # (ts, partition, offset, value, missing, codes), kept sorted: (ts, partition, offset) is
    # unique, so tuples compare in C and never reach the value
    buffer: list[Entry] = field(default_factory=list)


Entry = tuple[float, int, int, Any, bool, tuple[str, ...]]
_NO_CODES: tuple[str, ...] = ()


def entries_of(summary: dict[str, Any], after: int) -> list[Entry]:
    """A summary's entries with an offset above ``after``, as buffer entries. Reads the columnar
    summary (detectors/stages.py, version 2) and version 1's list of [offset, ts, value,
    missing, codes]."""
    p = int(summary["partition"])
    if "entries" in summary:  # version 1
        return [
            (e[1], p, e[0], e[2], bool(e[3]), tuple(e[4]))
            for e in summary["entries"]
            if e[0] > after
        ]
    offsets: list[int] = summary["offsets"]
    first = bisect.bisect_right(offsets, after)  # offsets ascend within a partition's batch
    if first == len(offsets):
        return []
    n = len(offsets)
    missing = [False] * n
    for i in summary["missing"]:
        missing[i] = True
    codes = [_NO_CODES] * n
    for i, found in summary["codes"]:
        codes[i] = tuple(found)
    ts, values = summary["ts"], summary["values"]
    return list(
        zip(
            ts[first:],
            [p] * (n - first),
            offsets[first:],
            values[first:],
            missing[first:],
            codes[first:],
            strict=True,
        )
    )


class CompareStep:
    """The stage-two step for one baseline: pure, clock-free, no I/O."""

    def __init__(
        self, baseline: Baseline, options: EngineOptions, merge: MergeOptions = MergeOptions()
    ) -> None:
        self.baseline = baseline
        self.options = options
        self.merge = merge

    # ---- state ------------------------------------------------------------------------
    def new_state(self, model: str, version: str, feature: str) -> FeatureState:
        state = FeatureState(model, version, feature)
        ref = self._ref(feature)
        if ref is not None:
            state.window = ref.empty_window()
            state.watch = FeatureWatch(ref)
        return state

    def _ref(self, feature: str) -> FeatureReference | None:
        return self.baseline.references.get(feature)

    # ---- merging partitions -------------------------------------------------------------
    def receive(
        self,
        state: FeatureState,
        summary: dict[str, Any],
        reports: list[WindowReport] | None = None,
    ) -> list[Anomaly]:
        """Apply one micro-batch; returns the anomalies the released entries raised, and adds
        each window it closed to ``reports`` (the drift-score documents), when given."""
        partition = int(summary["partition"])
        state.partitions = max(state.partitions, int(summary["partitions"]))
        fresh = entries_of(summary, state.offsets.get(partition, -1))
        if fresh:
            state.offsets[partition] = max(e[2] for e in fresh)
            state.buffer += fresh
            state.buffer.sort()  # two sorted runs, mostly: timsort merges them in linear time
        mark = state.watermarks.get(partition, -math.inf)
        state.watermarks[partition] = max(mark, float(summary["watermark"]))
        return self._release(state, self._watermark(state), reports)

    def flush(
        self, state: FeatureState, reports: list[WindowReport] | None = None
    ) -> list[Anomaly]:
        """Release everything held (an idle stream, or shutdown)."""
        return self._release(state, math.inf, reports)

    def _watermark(self, state: FeatureState) -> float:
        heard = [state.watermarks.get(p) for p in range(state.partitions)]
        slowest = -math.inf if None in heard else min(w for w in heard if w is not None)
        return max(slowest, max(state.watermarks.values()) - self.merge.max_lateness)

    def _release(
        self, state: FeatureState, mark: float, reports: list[WindowReport] | None
    ) -> list[Anomaly]:
        n = bisect.bisect_right(state.buffer, mark, key=lambda e: e[0])
        n = max(n, len(state.buffer) - self.merge.max_buffer)
        out: list[Anomaly] = []
        for ts, _, _, value, missing, codes in state.buffer[:n]:
            out += self.step(state, ts, value, missing, codes, reports)
        del state.buffer[:n]
        return out

    # ---- the Engine's per-feature half, in the Engine's order --------------------------
    def step(
        self,
        state: FeatureState,
        ts: float,
        value: object,
        missing: bool,
        codes: Sequence[str],
        reports: list[WindowReport] | None = None,
    ) -> list[Anomaly]:
        out: list[Anomaly] = []
        if not state.opened:
            self._open(state, self._align(ts))
            state.opened = True
        if ts >= state.end:
            out += self._close(state, final=False, reports=reports)
            if state.count == 0:  # closed, not carried over: start the period holding ts
                self._open(state, self._align(ts))
            else:  # carried over: it now runs to the end of the period holding ts
                state.end = max(state.end, self._align(ts) + self.options.window_seconds)
        if ts < state.start:
            state.late += 1
        state.count += 1
        if state.feature == NEW_COLUMNS:
            for name in codes:
                self._count_new_column(state, name)
            return out
        if state.watch is not None:
            observation = Observation(value, missing, tuple(codes))  # type: ignore[arg-type]
            view = None
            for signal in state.watch.observe(state.window, observation):
                view = view or self._view(state)
                out.append(signal_anomaly(view, state.feature, signal, ts))
        return out

    def close(
        self, state: FeatureState, reports: list[WindowReport] | None = None
    ) -> list[Anomaly]:
        """Judge the open window as it is (shutdown), like ``Engine.close_all``."""
        return self._close(state, final=True, reports=reports) if state.count else []

    def _align(self, ts: float) -> float:
        return math.floor(ts / self.options.window_seconds) * self.options.window_seconds

    def _open(self, state: FeatureState, start: float) -> None:
        state.start, state.end = start, start + self.options.window_seconds
        state.count, state.late = 0, 0
        ref = self._ref(state.feature)
        state.window = ref.empty_window() if ref is not None else FeatureWindow()
        state.new_columns = {}

    def _count_new_column(self, state: FeatureState, name: str) -> None:
        if name not in state.new_columns and len(state.new_columns) >= self.options.new_column_cap:
            name = OTHER
        state.new_columns[name] = state.new_columns.get(name, 0) + 1

    def _view(self, state: FeatureState) -> ModelState:
        """The Engine's model state as the anomaly builders read it."""
        return ModelState(
            self.baseline,
            state.model,
            state.version,
            state.start,
            state.end,
            state.count,
            state.late,
            ongoing=state.ongoing,
        )

    def _close(
        self, state: FeatureState, final: bool, reports: list[WindowReport] | None = None
    ) -> list[Anomaly]:
        if state.count < self.options.min_count and not final:
            state.end += self.options.window_seconds  # too little data to judge: carry over
            return []
        flagged: dict[FlagKey, float] = {}
        view = self._view(state)
        anomalies: list[Anomaly] = []
        ref = self._ref(state.feature)
        if state.feature == NEW_COLUMNS:
            t = self.baseline.schema.thresholds.default
            for column, count in sorted(state.new_columns.items()):
                new = violation_finding(
                    "SCHEMA_NEW_COLUMN", count, state.count, t.violation_rate, t.false_alarm_rate
                )
                if new is not None:
                    anomalies.append(window_anomaly(view, column, new, flagged))
        elif ref is not None:
            score, findings = compare_feature(
                ref, state.window, state.previous, self.options.min_count, state.end - state.start
            )
            anomalies += [window_anomaly(view, state.feature, f, flagged) for f in findings]
            if reports is not None:
                partial = final and state.count < self.options.min_count
                reports.append(self._report(state, score, anomalies, partial))
            if state.window.valid >= self.options.min_count:
                state.previous = state.window
        state.ongoing = flagged
        self._open(state, state.end)
        return anomalies

    @staticmethod
    def _report(
        state: FeatureState, score: FeatureScore, raised: list[Anomaly], partial: bool
    ) -> WindowReport:
        """The Engine's window report, cut down to this one feature."""
        return WindowReport(
            state.model,
            state.version,
            state.start,
            state.end,
            state.count,
            state.late,
            [score],
            raised,
            {state.feature: state.window},
            partial=partial,
        )
