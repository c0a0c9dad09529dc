"""The detection engine: serving records in, anomalies and window reports out.

Pure and clock-free: time is the records' event time. Windows are tumbling, per model and
version, ``window_seconds`` long; a window with fewer than ``min_count`` records stays open into
the next period rather than being judged on too little data. The Faust worker and the embedded
runner both drive this same object, so the two paths cannot disagree.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from detectors.anomaly import Anomaly, anomaly_id, iso, severity_for
from detectors.baseline import Baseline
from detectors.change import Change
from detectors.compare import FeatureScore, Finding, compare_feature, violation_finding
from detectors.labels import LabelMonitor, LabelOptions, LabelReport, LabelResult, group_values
from detectors.rates import RateAlarm
from detectors.records import DecodeError, FeedbackRecord, PipelineRecord, ServingRecord
from detectors.schema import PREDICTION
from detectors.scores import ScoreMap
from detectors.skew_monitor import FeatureSkewMonitor, SkewOptions, SkewReport, SkewResult
from detectors.slice_windows import SliceWindows, sliced
from detectors.stages import NEW_COLUMNS, observe
from detectors.stats import OTHER, FeatureWindow
from detectors.validate import CODES
from detectors.watch import FeatureWatch, Signal

# (feature, kind, detector) flagged in a window, to say "ongoing since".
FlagKey = tuple[str, str, str]
DETECTOR_NAMES = {"page_hinkley": "Page-Hinkley", "adwin": "ADWIN"}


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
class WindowReport:
    model: str
    version: str
    start: float
    end: float
    count: int
    late: int
    scores: list[FeatureScore]
    anomalies: list[Anomaly]
    # The closed window's statistics per feature (bins and category counts, never events):
    # what `logdrift report` draws as the current distribution.
    windows: dict[str, FeatureWindow] = field(default_factory=dict)
    # Judged at shutdown on fewer than min_count records: shown, never taken as the verdict.
    partial: bool = False


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


@dataclass(slots=True)
class ModelState:
    baseline: Baseline
    model: str
    version: str
    start: float
    end: float
    count: int = 0
    late: int = 0
    windows: dict[str, FeatureWindow] = field(default_factory=dict)
    new_columns: dict[str, int] = field(default_factory=dict)
    previous: dict[str, FeatureWindow] = field(default_factory=dict)
    watches: dict[str, FeatureWatch] = field(default_factory=dict)
    ongoing: dict[FlagKey, float] = field(default_factory=dict)
    slices: SliceWindows | None = None  # per top-K slice feature windows, when slices are on

    def open_window(self, start: float, end: float) -> None:
        self.start, self.end, self.count, self.late = start, end, 0, 0
        self.windows = {n: r.empty_window() for n, r in self.baseline.references.items()}
        self.new_columns = {}


class Engine:
    def __init__(
        self,
        baselines: list[Baseline],
        options: EngineOptions = EngineOptions(),
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
        state = self._state(record)
        result = Result()
        if record.ts >= state.end:
            result.extend(self._close(state, final=False))
            if state.count == 0:  # closed, not carried over: start the period holding ts
                start = self._align(record.ts)
                state.open_window(start, start + self.options.window_seconds)
            else:  # carried over: it now runs to the end of the period holding ts
                state.end = max(state.end, self._align(record.ts) + self.options.window_seconds)
        if record.ts < state.start:
            state.late += 1
        state.count += 1
        observations = observe(state.baseline, record)
        for name in observations[NEW_COLUMNS].codes:
            self._count_new_column(state, name)
        for name, watch in state.watches.items():
            for signal in watch.observe(state.windows[name], observations[name]):
                result.anomalies.append(signal_anomaly(state, name, signal, record.ts))
        if self.labels is not None:
            result.add_labels(self._hold_for_label(self.labels, state, record))
        if self.skew is not None:
            result.add_skew(self.skew.serving(record))
        return result

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
            (state.model, state.version),
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
            if state.count and state.end <= watermark:
                result.extend(self._close(state, final=False))
        return result

    def close_all(self) -> Result:
        """Judge every open window as it is (shutdown): nothing accounted is left unreported."""
        result = Result()
        for state in self.states.values():
            if state.count:
                result.extend(self._close(state, final=True))
        if self.labels is not None:
            result.add_labels(self.labels.close_until(math.inf))
        if self.skew is not None:
            result.add_skew(self.skew.close_all())
        return result

    def _align(self, ts: float) -> float:
        return math.floor(ts / self.options.window_seconds) * self.options.window_seconds

    def _state(self, record: ServingRecord) -> ModelState:
        key = (record.model, record.version)
        state = self.states.get(key)
        if state is None:
            baseline = self.baseline_for(record.model)
            if len(self.states) >= self.options.max_model_versions:
                raise DecodeError(
                    "model_version",
                    f"state is kept for at most {self.options.max_model_versions} model "
                    "versions; this record would open one more",
                )
            start = self._align(record.ts)
            state = ModelState(baseline, record.model, record.version, start, start)
            state.open_window(start, start + self.options.window_seconds)
            state.watches = {n: FeatureWatch(r) for n, r in baseline.references.items()}
            if self.labels is not None and self.labels.options.slice_key:
                state.slices = SliceWindows(baseline, self.labels.options.slice_key)
            self.states[key] = state
        return state

    def _count_new_column(self, state: ModelState, name: str) -> None:
        if name not in state.new_columns and len(state.new_columns) >= self.options.new_column_cap:
            name = OTHER
        state.new_columns[name] = state.new_columns.get(name, 0) + 1

    def _close(self, state: ModelState, final: bool) -> Result:
        if state.count < self.options.min_count and not final:
            state.end += self.options.window_seconds  # too little data to judge: carry over
            return Result()
        scores, anomalies = [], []
        flagged: dict[FlagKey, float] = {}
        for name, ref in state.baseline.references.items():
            win = state.windows[name]
            score, findings = compare_feature(
                ref, win, state.previous.get(name), self.options.min_count, state.end - state.start
            )
            scores.append(score)
            for f in findings:
                anomalies.append(self._window_anomaly(state, name, f, flagged))
            if win.valid >= self.options.min_count:
                state.previous[name] = win
        thresholds = state.baseline.schema.thresholds.default
        for column, count in sorted(state.new_columns.items()):
            new = violation_finding(
                "SCHEMA_NEW_COLUMN",
                count,
                state.count,
                thresholds.violation_rate,
                thresholds.false_alarm_rate,
            )
            if new is not None:
                anomalies.append(self._window_anomaly(state, column, new, flagged))
        state.ongoing = flagged
        if state.slices is not None:
            anomalies += self._slice_anomalies(state, state.slices)
        report = WindowReport(
            state.model,
            state.version,
            state.start,
            state.end,
            state.count,
            state.late,
            scores,
            anomalies,
            windows=state.windows,  # open_window below starts new ones; these stay as closed
            partial=final and state.count < self.options.min_count,
        )
        state.open_window(state.end, state.end + self.options.window_seconds)
        state.count = 0
        return Result(list(anomalies), [report])

    def _slice_anomalies(self, state: ModelState, slices: SliceWindows) -> list[Anomaly]:
        # "ongoing since" is tracked for the model-wide windows only: start from none here.
        alone = dataclasses.replace(state, ongoing={})
        return [
            sliced(window_anomaly(alone, name, f, {}), slices.key, label)
            for label, name, f in slices.close(self.options.min_count)
        ]

    # Anomaly construction is module-level (below) so the Faust worker's stage functions
    # (detectors/stages.py) build exactly the same anomalies; these keep the Engine's API.
    def _where(self, state: ModelState, feature: str) -> str:
        return where(state, feature)

    def _window_anomaly(
        self,
        state: ModelState,
        feature: str,
        f: Finding,
        flagged: dict[FlagKey, float],
    ) -> Anomaly:
        return window_anomaly(state, feature, f, flagged)


def where(state: ModelState, feature: str) -> str:
    """'feature (model vN)': how messages name what changed; the model's own output is named
    as prediction drift, since its inputs may well be unchanged."""
    version = f" v{state.version}" if state.version else ""
    if feature == PREDICTION:
        return f"prediction drift: the model's output {feature} ({state.model}{version})"
    return f"{feature} ({state.model}{version})"


def window_anomaly(
    state: ModelState,
    feature: str,
    f: Finding,
    flagged: dict[FlagKey, float],
) -> Anomaly:
    key = (feature, f.kind, f.detector)
    since = state.ongoing.get(key, state.start)
    flagged[key] = since
    window = f"window {iso(state.start)} to {iso(state.end)}, {state.count:,} records"
    if since < state.start:
        window += f"; ongoing since {iso(since)}"
    return Anomaly(
        id=anomaly_id(state.model, state.version, feature, f.kind, f.detector, state.start),
        timestamp=state.end,
        kind=f.kind,
        detector=f.detector,
        severity=severity_for(f.statistic / f.threshold if f.threshold > 0 else math.inf),
        model=state.model,
        model_version=state.version,
        feature=feature,
        statistic=f.statistic,
        threshold=f.threshold,
        window_start=state.start,
        window_end=state.end,
        window_count=state.count,
        message=f"{where(state, feature)}: {f.message}; {window}",
        baseline=f.baseline,
        current={**f.current, "since": iso(since)},
    )


def signal_anomaly(state: ModelState, feature: str, signal: Signal, ts: float) -> Anomaly:
    if isinstance(signal, RateAlarm):
        return rate_anomaly(state, feature, signal, ts)
    return change_anomaly(state, feature, signal, ts)


def _per_event(
    state: ModelState, feature: str, kind: str, detector: str, ts: float
) -> dict[str, object]:
    """The fields every per-event anomaly shares: it belongs to the window it fired in."""
    return {
        "id": anomaly_id(state.model, state.version, feature, kind, detector, state.start),
        "timestamp": ts,
        "kind": kind,
        "detector": detector,
        "model": state.model,
        "model_version": state.version,
        "feature": feature,
        "window_start": state.start,
        "window_end": ts,
        "window_count": state.count,
    }


def _into_window(state: ModelState, ts: float) -> str:
    return f"{state.count:,} records into the window that began {iso(state.start)}"


def change_anomaly(state: ModelState, feature: str, change: Change, ts: float) -> Anomaly:
    """A change detector's alarm, said as what moved: the median, in the feature's units."""
    ref = state.baseline.references[feature]
    scores = ref.scores or ScoreMap.linear(ref.mean, ref.std)
    level = change.center + change.shift
    before, now = scores.x(change.center), scores.x(level)
    direction = "rose" if change.shift > 0 else "fell"
    values = "" if ref.spec.sensitive else f" from {before:.4g} to about {now:.4g}"
    name = DETECTOR_NAMES.get(change.detector, change.detector)
    return Anomaly(
        **_per_event(state, feature, "drift", change.detector, ts),  # type: ignore[arg-type]
        severity=severity_for(abs(change.shift) / change.threshold),
        statistic=change.shift,
        threshold=change.threshold,
        message=(
            f"{where(state, feature)}: the median {direction}{values} (recent values centre on "
            f"training's {scores.percentile(level):.0f}th percentile, a shift of "
            f"{change.shift:+.2f} sd; the detectors target {change.threshold:.2f} sd); {name} "
            f"change alarm at {iso(ts)}, {_into_window(state, ts)}"
        ),
        baseline={} if ref.spec.sensitive else {"median": before},
        current={"shift_sd": change.shift, **({} if ref.spec.sensitive else {"median": now})},
    )


def rate_anomaly(state: ModelState, feature: str, alarm: RateAlarm, ts: float) -> Anomaly:
    """A sequential rate test's alarm: a rate that rose, judged as the records arrived."""
    t = state.baseline.references[feature].thresholds
    if alarm.test == "missing":
        kind, what = "data_quality", "missing values"
    elif alarm.test in ("violation", "range"):
        kind, meaning = CODES.get(alarm.what, ("schema_skew", alarm.what))
        what = f"{alarm.what} ({meaning})"
    else:
        kind = "distribution_skew"
        what = "values unseen in training" if alarm.what == OTHER else f"the value {alarm.what!r}"
    tolerance = alarm.tolerated - alarm.baseline
    if tolerance > 0:  # a rise past a floor: the effect in floors (detectors/rates.py rise_of)
        effect = (alarm.rate - alarm.baseline) / (2 * tolerance)
        tolerated = f"tolerated up to about {alarm.baseline + 2 * tolerance:.2%}"
    else:  # a break training never had: the effect against the schema's violation floor
        effect = alarm.rate / max(t.violation_rate, 1e-3)
        tolerated = "training had none"
    return Anomaly(
        **_per_event(state, feature, kind, f"cusum_{alarm.test}", ts),  # type: ignore[arg-type]
        severity=severity_for(max(1.0, effect)),
        statistic=alarm.rate,
        threshold=alarm.tolerated,
        message=(
            f"{where(state, feature)}: {what} rose to {alarm.rate:.1%} of the last "
            f"{alarm.events:,} records vs {alarm.baseline:.2%} in training ({tolerated}); "
            f"sequential test (CUSUM) alarm at {iso(ts)}, {_into_window(state, ts)}"
        ),
        baseline={"rate": alarm.baseline, "test": alarm.test},
        current={"rate": alarm.rate, "events": alarm.events, "value": alarm.what},
    )
