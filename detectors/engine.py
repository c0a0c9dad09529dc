"""The detection engine: serving records in, anomalies and window reports out.

Pure and clock-free: time is the records' event time. Per model and version the Engine keeps
one ``Tumbling`` clock over a ``FeatureTrack`` per monitored feature and the unknown columns
(detectors/window.py, the one window state machine: tumbling windows of ``window_seconds``, a
window of fewer than ``min_count`` records carried into the next period rather than judged on
too little data). The embedded runner and `logdrift check` drive this object; the worker's
stage two drives the same ``Tumbling`` and ``FeatureTrack`` per feature (detectors/
feature_state.py), fed the partitions' records merged back into event-time order, so both
paths account, close and judge windows by the same code.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from detectors.anomaly import Anomaly
from detectors.baseline.reference import Baseline
from detectors.baseline.schema import PREDICTION
from detectors.blocks import Block
from detectors.labels.monitor import (
    LabelMonitor,
    LabelOptions,
    LabelReport,
    LabelResult,
    group_values,
)
from detectors.labels.slice_windows import SliceWindows, sliced
from detectors.records import DecodeError, FeedbackRecord, PipelineRecord, ServingRecord
from detectors.skew.monitor import FeatureSkewMonitor, SkewOptions, SkewReport, SkewResult
from detectors.stages import (
    NEW_COLUMNS,
    Observation,
    observe,
    observe_batch,
    observe_columns,
    observe_values,
)
from detectors.window import (
    EngineOptions,
    FeatureTrack,
    Judged,
    NewColumns,
    Tumbling,
)
from detectors.window_anomalies import FlagKey, Span, window_anomaly
from detectors.window_report import WindowReport

DEFAULTS = EngineOptions()
__all__ = ["Engine", "EngineOptions", "ModelState", "Result"]


@dataclass(slots=True)
class Result:
    anomalies: list[Anomaly] = field(default_factory=list)
    reports: list[WindowReport] = field(default_factory=list)
    labels: list[LabelReport] = field(default_factory=list)  # judged windows of labels
    skew: list[SkewReport] = field(default_factory=list)  # judged windows of feature skew

    def extend(self, other: Result) -> None:
        self.anomalies += other.anomalies
        self.reports += other.reports
        self.labels += other.labels
        self.skew += other.skew

    def add_skew(self, other: SkewResult) -> Result:
        self.anomalies += other.anomalies
        self.skew += other.reports
        return self

    def add_labels(self, other: LabelResult) -> Result:
        self.anomalies += other.anomalies
        self.labels += other.reports
        return self


class ModelState:
    """One model version's windows: the clock, a track per feature, the unknown columns and,
    when slices are on, per-slice windows closed with the model's."""

    def __init__(
        self, baseline: Baseline, clock: Tumbling, slices: SliceWindows | None = None
    ) -> None:
        self.baseline, self.clock, self.slices = baseline, clock, slices
        min_count = clock.options.min_count
        self.tracks = {n: FeatureTrack(r, min_count) for n, r in baseline.references.items()}
        self.columns = NewColumns(baseline.schema.thresholds.default, clock.options.new_column_cap)

    def judge(self, span: Span, flagged: dict[FlagKey, float]) -> Judged:
        scores, anomalies = [], []
        for track in self.tracks.values():
            score, found = track.judge(span, flagged)
            scores.append(score)
            anomalies += found
        anomalies += self.columns.judge(span, flagged)
        if self.slices is not None:
            # "ongoing since" is tracked for the model-wide windows only: start from none here.
            alone = dataclasses.replace(span, ongoing={})
            anomalies += [
                sliced(window_anomaly(alone, name, f, {}), self.slices.key, label)
                for label, name, f in self.slices.close(self.clock.options.min_count)
            ]
        windows = {n: t.window for n, t in self.tracks.items()}  # rotate starts new ones
        return Judged(scores, anomalies, windows)

    def rotate(self) -> None:
        for track in self.tracks.values():
            track.rotate()
        self.columns.rotate()


class Engine:
    def __init__(
        self,
        baselines: list[Baseline],
        options: EngineOptions = DEFAULTS,
        labels: LabelOptions | None = None,
        skew: SkewOptions | None = None,
    ) -> None:
        if not baselines:
            raise ValueError("at least one baseline is required")
        self.options = options
        self.baselines = {b.model: b for b in baselines}
        self.states: dict[tuple[str, str], ModelState] = {}
        # Delayed labels (performance, slices, fairness): on when configured.
        self.labels = LabelMonitor(labels) if labels is not None else None
        # Feature skew (serving against the pipeline's features, by request id): when configured.
        self.skew = FeatureSkewMonitor(skew, self._known) if skew is not None else None

    def _known(self, model: str) -> Baseline | None:
        return self.baselines.get(model) or self.baselines.get(None)

    def baseline_for(self, model: str) -> Baseline:
        baseline = self.baselines.get(model) or self.baselines.get(None)
        if baseline is None:
            known = ", ".join(sorted(str(m) for m in self.baselines))
            raise DecodeError("model", f"no baseline for model {model!r} (have: {known})")
        return baseline

    def process(self, record: ServingRecord) -> Result:
        """Account one record. Raises DecodeError (and nothing else) for a record that cannot be
        accounted: a model without a baseline, or one model version too many."""
        result = Result()
        self._feed(self._state(record), [record], result)
        return result

    def process_batch(
        self, records: Sequence[ServingRecord]
    ) -> tuple[Result, list[tuple[int, DecodeError]]]:
        """Account a batch of records in arrival order; what it raised, and (index, reason) of
        each record that could not be accounted (a model without a baseline, or one model
        version too many), the rest accounted all the same."""
        result = Result()
        refused: list[tuple[int, DecodeError]] = []
        groups: dict[tuple[str, str], list[ServingRecord]] = {}
        errors: dict[tuple[str, str], DecodeError] = {}
        for i, record in enumerate(records):
            key = (record.model, record.version)
            group = groups.get(key)
            if group is None:
                if key not in errors:
                    try:
                        self._state(record)
                        group = groups[key] = []
                    except DecodeError as exc:
                        errors[key] = exc
                if group is None:
                    refused.append((i, errors[key]))
                    continue
            group.append(record)
        for key, group in groups.items():
            self._feed(self.states[key], group, result)
        return result, refused

    def process_blocks(
        self, blocks: Sequence[Block]
    ) -> tuple[Result, list[tuple[int, DecodeError]]]:
        """``process_batch`` of a block decoded column by column (detectors/blocks.py): the
        same verdicts, the same refusals, by each record's index in the block, without a
        ServingRecord per record unless labels or feature skew, which hold each record (its
        request id, slice and prediction) past its window, are on."""
        result = Result()
        refused: list[tuple[int, DecodeError]] = []
        fed: list[tuple[ModelState, Block]] = []
        for block in blocks:
            try:
                fed.append((self._state_of(block.model, block.version), block))
            except DecodeError as exc:
                refused += [(i, exc) for i in block.index]
        whole = self.labels is not None or self.skew is not None
        for state, block in fed:
            if len(block) == 1:
                one = observe_values(state.baseline, block.features[0], block.predictions[0])
                columns: dict[str, Sequence[Observation]] = {n: (o,) for n, o in one.items()}
            else:
                columns = observe_columns(state.baseline, block.features, block.predictions)
            self._account(state, columns, block.ts, block.records() if whole else None, result)
        refused.sort(key=lambda e: e[0])
        return result, refused

    def _feed(self, state: ModelState, records: list[ServingRecord], result: Result) -> None:
        columns: dict[str, Sequence[Observation]]
        if len(records) == 1:  # fluent-logger sends records one at a time: no columns to build
            columns = {n: (o,) for n, o in observe(state.baseline, records[0]).items()}
        else:
            columns = observe_batch(state.baseline, records)
        self._account(state, columns, [r.ts for r in records], records, result)

    def _account(
        self,
        state: ModelState,
        columns: dict[str, Sequence[Observation]],
        ts: Sequence[float],
        records: list[ServingRecord] | None,
        result: Result,
    ) -> None:
        """Observations of a batch into the model version's windows (``records``: needed only
        with labels or feature skew on)."""
        labels = LabelResult()

        tracks = [(f, t, columns[n]) for f, (n, t) in enumerate(state.tracks.items())]

        def account(lo: int, hi: int, base: int) -> list[Anomaly]:
            found: list[tuple[int, int, Anomaly]] = []
            for f, track, column in tracks:
                signals = track.account(column, lo, hi)
                if signals:
                    alarms = state.clock.alarms(track.ref, signals, lo, base, ts)
                    found += [(k, f, a) for k, a in alarms]
            new = columns[NEW_COLUMNS]
            for k in range(lo, hi):
                if new[k].codes:
                    state.columns.add(new[k].codes)
            if self.labels is not None and records is not None:
                for k in range(lo, hi):
                    held = self._hold_for_label(self.labels, state, records[k])
                    labels.anomalies += held.anomalies
                    labels.reports += held.reports
            if not found:
                return []
            found.sort(key=lambda e: (e[0], e[1]))  # record by record, features in order
            return [a for _, _, a in found]

        result.anomalies += state.clock.feed(ts, state, account, result.reports)
        result.add_labels(labels)
        if self.skew is not None and records is not None:
            for record in records:
                result.add_skew(self.skew.serving(record))

    def pipeline(self, record: PipelineRecord) -> Result:
        """Join the pipeline's features of a request to what serving logged (a no-op unless
        feature skew is configured)."""
        return Result() if self.skew is None else Result().add_skew(self.skew.pipeline(record))

    def feedback(self, record: FeedbackRecord) -> Result:
        """Join one label to its prediction (a no-op unless labels are configured)."""
        if self.labels is None:
            return Result()
        return Result().add_labels(self.labels.feedback(record))

    def _hold_for_label(
        self, monitor: LabelMonitor, state: ModelState, record: ServingRecord
    ) -> LabelResult:
        opts = monitor.options
        groups = group_values(state.baseline, record, opts.groups)
        label = monitor.slice_label(record.slice.get(opts.slice_key) if opts.slice_key else None)
        if state.slices is not None:
            state.slices.observe(label, {**record.features, PREDICTION: record.prediction})
        return monitor.observe(
            (state.clock.model, state.clock.version),
            record.request_id,
            record.ts,
            record.prediction,
            label,
            groups,
        )

    def close_until(self, watermark: float) -> Result:
        """Close every feature window that ended at or before ``watermark`` (an idle stream's
        windows would otherwise never close). Windows of labels are left to their own clock:
        labels come hours after the predictions, and a pause in traffic says nothing of them."""
        result = Result()
        for state in self.states.values():
            result.anomalies += state.clock.close_until(watermark, state, result.reports)
        return result

    def close_all(self) -> Result:
        """Judge every open window as it is (shutdown): nothing accounted is left unreported."""
        result = Result()
        for state in self.states.values():
            if state.clock.count:
                result.anomalies += state.clock.close(state, True, result.reports)
        if self.labels is not None:
            result.add_labels(self.labels.close_until(math.inf))
        if self.skew is not None:
            result.add_skew(self.skew.close_all())
        return result

    def _state(self, record: ServingRecord) -> ModelState:
        return self._state_of(record.model, record.version)

    def _state_of(self, model: str, version: str) -> ModelState:
        key = (model, version)
        state = self.states.get(key)
        if state is None:
            baseline = self.baseline_for(model)
            if len(self.states) >= self.options.max_model_versions:
                raise DecodeError(
                    "model_version",
                    f"state is kept for at most {self.options.max_model_versions} model "
                    "versions; this record would open one more",
                )
            slices = None
            if self.labels is not None and self.labels.options.slice_key:
                slices = SliceWindows(baseline, self.labels.options.slice_key)
            clock = Tumbling(self.options, model, version)
            state = self.states[key] = ModelState(baseline, clock, slices)
        return state
