"""Stage two of the partitioned worker: one owner per model/version/feature merges the
partitions' micro-batches (detectors/stages.py) into one stream and feeds it, batch by batch,
to the window state machine the Engine uses (detectors/window.py): the same ``Tumbling`` clock
and the same ``FeatureTrack`` (window accounting, change detectors and rate tests, window-close
comparisons), one per model version and feature. Only the merge is the worker's own.

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
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np

from detectors.anomaly import Anomaly
from detectors.baseline.reference import Baseline
from detectors.stages import NEW_COLUMNS, Numbers, Observation, Texts
from detectors.window import (
    EngineOptions,
    FeatureTrack,
    Judged,
    NewColumns,
    Tumbling,
)
from detectors.window_anomalies import FlagKey, Span
from detectors.window_report import WindowReport

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


class FeatureState:
    """One model version's feature in stage two: its window clock and track (or the unknown
    columns, for NEW_COLUMNS) and the partition merge that feeds them."""

    __slots__ = (
        "buffer",
        "clock",
        "columns",
        "feature",
        "offsets",
        "partitions",
        "track",
        "watermarks",
    )

    def __init__(
        self,
        clock: Tumbling,
        feature: str,
        track: FeatureTrack | None = None,
        columns: NewColumns | None = None,
    ) -> None:
        self.clock, self.feature, self.track, self.columns = clock, feature, track, columns
        self.offsets: dict[int, int] = {}  # source partition -> last applied
        self.watermarks: dict[int, float] = {}  # partition -> newest ts
        self.partitions = 1
        # (ts, partition, offset, value, missing, codes), kept sorted: (ts, partition, offset)
        # is unique, so tuples compare in C and never reach the value
        self.buffer: list[Entry] = []

    @property
    def model(self) -> str:
        return self.clock.model

    @property
    def version(self) -> str:
        return self.clock.version

    @property
    def opened(self) -> bool:
        return self.clock.opened

    @property
    def start(self) -> float:
        return self.clock.start

    @property
    def count(self) -> int:
        return self.clock.count

    def judge(self, span: Span, flagged: dict[FlagKey, float]) -> Judged:
        if self.columns is not None:
            return Judged(None, self.columns.judge(span, flagged), {})
        if self.track is None:  # a feature the baseline does not have: nothing to judge
            return Judged(None, [], {})
        score, found = self.track.judge(span, flagged)
        return Judged([score], found, {self.feature: self.track.window})

    def rotate(self) -> None:
        if self.track is not None:
            self.track.rotate()
        if self.columns is not None:
            self.columns.rotate()


Entry = tuple[float, int, int, Any, bool, tuple[str, ...]]
_NO_CODES: tuple[str, ...] = ()
_TS, _OFFSET, _VALUE, _MISSING, _CODES = map(itemgetter, (0, 2, 3, 4, 5))  # Entry's fields, in C


def _plain_column(track: FeatureTrack, entries: Sequence[Entry]) -> Sequence[Observation] | None:
    """Released entries as one column checked valid (``Numbers``, ``Texts``) when none is
    missing or flagged and their values are of the track's kind: the track takes them per run,
    as the Engine takes a clean column, with no Observation per entry. None otherwise."""
    if len(entries) < 2 or any(map(_MISSING, entries)) or any(map(_CODES, entries)):
        return None
    values = list(map(_VALUE, entries))
    kinds = set(map(type, values))
    if track.window.bins is not None and kinds <= _NUMBER_TYPES:
        xs = np.fromiter(values, np.float64, len(values))
        return Numbers(xs) if np.isfinite(xs).all() else None
    if track.window.categories is not None and kinds == {str}:
        return Texts(values)
    return None


_NUMBER_TYPES = frozenset((float, int))  # type() is exact: bool is not among them


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
        clock = Tumbling(self.options, model, version)
        if feature == NEW_COLUMNS:
            t = self.baseline.schema.thresholds.default
            return FeatureState(clock, feature, columns=NewColumns(t, self.options.new_column_cap))
        ref = self.baseline.references.get(feature)
        track = FeatureTrack(ref, self.options.min_count) if ref is not None else None
        return FeatureState(clock, feature, track)

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
            state.offsets[partition] = max(map(_OFFSET, fresh))
            state.buffer += fresh
            state.buffer.sort()  # two sorted runs, mostly: timsort merges them in linear time
        mark = state.watermarks.get(partition, -math.inf)
        state.watermarks[partition] = max(mark, float(summary["watermark"]))
        return self._release(state, self._watermark(state), reports)

    def flush(
        self, state: FeatureState, reports: list[WindowReport] | None = None
    ) -> list[Anomaly]:
        """Release everything held (shutdown, or a state near its size limit)."""
        return self._release(state, math.inf, reports)

    def idle(self, state: FeatureState, reports: list[WindowReport] | None = None) -> list[Anomaly]:
        """The feature's stream went quiet: release everything held and close the open window
        as the Engine closes an idle stream's (``close_until``: too few records carry over)."""
        out = self._release(state, math.inf, reports)
        return out + state.clock.close_until(math.inf, state, reports)

    def close(
        self, state: FeatureState, reports: list[WindowReport] | None = None
    ) -> list[Anomaly]:
        """Judge the open window as it is (shutdown), like ``Engine.close_all``."""
        return state.clock.close(state, True, reports) if state.clock.count else []

    def _watermark(self, state: FeatureState) -> float:
        heard = [state.watermarks.get(p) for p in range(state.partitions)]
        slowest = -math.inf if None in heard else min(w for w in heard if w is not None)
        return max(slowest, max(state.watermarks.values()) - self.merge.max_lateness)

    def _release(
        self, state: FeatureState, mark: float, reports: list[WindowReport] | None
    ) -> list[Anomaly]:
        """Feed the entries up to ``mark`` (and any over the buffer's bound) as one batch."""
        n = bisect.bisect_right(state.buffer, mark, key=_TS)
        n = max(n, len(state.buffer) - self.merge.max_buffer)
        if n == 0:
            return []
        released = state.buffer[:n]
        del state.buffer[:n]
        ts = list(map(_TS, released))
        track, columns = state.track, state.columns

        def account(lo: int, hi: int, base: int) -> list[Anomaly]:
            if columns is not None:
                for k in range(lo, hi):
                    columns.add(released[k][5])
                return []
            if track is None:
                return []
            chunk = released[lo:hi]
            observations = _plain_column(track, chunk) or [
                Observation(e[3], e[4], e[5]) for e in chunk
            ]
            found = [(k + lo, s) for k, s in track.account(observations, 0, hi - lo)]
            return [a for _, a in state.clock.alarms(track.ref, found, lo, base, ts)]

        return state.clock.feed(ts, state, account, reports)
