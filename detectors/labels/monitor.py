"""Delayed labels: join them to their predictions, judge performance, slices and fairness.

    prediction (request id) --> PendingPredictions --label arrives--> joined
      --> error bit --> ADWIN + DDM per model and per top-K slice --> concept_drift anomalies
      --> counts of the prediction's window (event time of the prediction, not of the label)
          --> when the window is ``wait_seconds`` of event time behind the newest record:
              metrics, label coverage and latency per model, slice and group; fairness findings

Pure and clock-free, like the Engine that owns it. Memory: the pending predictions (capped),
open windows (``wait_seconds / window_seconds`` per model) and per-slice detectors (top-K).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import datasketches as ds

from detectors.anomaly import INFO, Anomaly, anomaly_id, direction, iso, severity_for
from detectors.baseline.calibrate_errors import calibrate_errors
from detectors.baseline.profile import category_text
from detectors.baseline.reference import Baseline
from detectors.labels.fairness import Disparity, Fairness, disparities
from detectors.labels.feedback import LATENCY_K, Joined, PendingPredictions
from detectors.labels.performance import ErrorChange, ErrorDetectors, PerformanceWindow
from detectors.labels.slices import SliceKeys
from detectors.privacy import keyed_hash
from detectors.records import FeedbackRecord, ServingRecord, bounded_text
from detectors.stats import OTHER
from detectors.window import align

ERROR_FEATURE = "error_rate"  # feature.name of concept-drift anomalies
ALL = ""  # the slice name of the whole model
SEVERITY_STEP = 0.05  # error-rate rise that counts as one "threshold" for severity


@dataclass(frozen=True, slots=True)
class LabelOptions:
    task: Literal["classification", "regression"] = "classification"
    decision_threshold: float = 0.5  # score >= threshold predicts the positive class
    horizon: float = 86_400.0  # event-time seconds a prediction waits for its label
    max_pending: int = 1_000_000  # hard cap on waiting predictions (about 150 bytes each)
    window_seconds: float = 300.0
    wait_seconds: float = 3_600.0  # a window's metrics are judged this long after it ends
    slice_key: str | None = None
    top_k: int = 20
    groups: tuple[str, ...] = ()  # sensitive attributes, looked up in the slice, then features
    fairness: Fairness = field(default_factory=Fairness)
    reference_windows: int = 3  # first judged windows whose disparities are the reference
    budget: float = 1e-9  # false alarms per label per error detector
    max_interned: int = 1_024  # distinct slice names and group tuples kept; the rest "other"

    def __post_init__(self) -> None:
        for name in ("horizon", "window_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.wait_seconds < 0:
            raise ValueError(f"wait_seconds must be >= 0, got {self.wait_seconds}")
        if not 0 < self.decision_threshold < 1:
            raise ValueError(f"decision_threshold must be in (0, 1), got {self.decision_threshold}")
        if self.reference_windows < 1:
            raise ValueError(f"reference_windows must be at least 1, got {self.reference_windows}")


@dataclass(slots=True)
class Bucket:
    start: float
    end: float
    overall: PerformanceWindow = field(default_factory=PerformanceWindow)
    slices: dict[str, PerformanceWindow] = field(default_factory=dict)
    groups: dict[tuple[str, str], PerformanceWindow] = field(default_factory=dict)
    latency: ds.kll_floats_sketch = field(default_factory=lambda: ds.kll_floats_sketch(LATENCY_K))

    def windows(self, slice_: str, groups: tuple[tuple[str, str], ...]) -> list[PerformanceWindow]:
        out = [self.overall]
        if slice_ != ALL:
            out.append(self.slices.setdefault(slice_, PerformanceWindow()))
        out += [self.groups.setdefault(g, PerformanceWindow()) for g in groups]
        return out


@dataclass(slots=True)
class LabelReport:
    """One judged window of labelled predictions: what the drift-score documents carry."""

    model: str
    version: str
    start: float
    end: float
    metrics: dict[str, float]
    latency: dict[str, float]
    slices: dict[str, dict[str, float]]
    groups: dict[str, dict[str, dict[str, float]]]
    anomalies: list[Anomaly]
    slice_key: str | None = None  # what the names in ``slices`` are values of

    def line(self) -> str:
        """One line per judged window of labels: coverage, the headline metrics, latency."""
        version = f" v{self.version}" if self.version else ""
        m = self.metrics
        shown = [f"{m.get('labelled', 0):,.0f} of {m.get('predictions', 0):,.0f} labelled"]
        shown += [
            f"{k} {m[k]:.3f}" for k in ("accuracy", "auc", "log_loss", "mae", "rmse") if k in m
        ]
        if self.latency:
            shown.append(f"label latency p50 {self.latency['p50']:,.0f} s")
        flagged = sorted({f"{a.kind} {a.feature}" for a in self.anomalies})
        verdict = f"anomalies: {', '.join(flagged)}" if flagged else "no anomaly"
        return (
            f"{iso(self.end)} labels {self.model}{version} "
            f"{iso(self.start)}..{iso(self.end)}: {', '.join(shown)}; {verdict}"
        )


@dataclass(slots=True)
class LabelResult:
    anomalies: list[Anomaly] = field(default_factory=list)
    reports: list[LabelReport] = field(default_factory=list)


@dataclass(slots=True)
class LabelStats:
    skipped: int = 0  # predictions without a request id or a usable number
    bad_labels: int = 0  # classification labels other than 0 and 1
    late_labels: int = 0  # labels whose window was already judged (still feed the detectors)
    human_labels: int = 0  # joined labels that came from raters (source "human"), not process


class Interner:
    """Small ints for values; past ``cap`` values everything new shares ``overflow``'s id."""

    def __init__(self, cap: int, overflow: Any) -> None:
        self.values: list[Any] = [overflow]
        self.ids: dict[Any, int] = {overflow: 0}
        self.cap = cap

    def id(self, value: Any) -> int:
        found = self.ids.get(value)
        if found is None:
            if len(self.values) >= self.cap:
                return 0
            found = self.ids[value] = len(self.values)
            self.values.append(value)
        return found


class LabelMonitor:
    def __init__(self, options: LabelOptions) -> None:
        self.options = options
        self.pending = PendingPredictions(options.horizon, options.max_pending)
        self.slice_keys = SliceKeys(options.top_k) if options.slice_key else None
        classify = options.task == "classification"
        self.calibration = calibrate_errors(options.budget) if classify else {}
        self.models = Interner(2**31, ("", ""))
        self.slice_names = Interner(options.max_interned, ALL)
        self.group_values = Interner(options.max_interned, ())
        self.buckets: dict[tuple[int, float], Bucket] = {}
        self.detectors: dict[tuple[int, str], ErrorDetectors] = {}
        self.reference: dict[tuple[int, str], tuple[int, dict[str, PerformanceWindow]]] = {}
        self.stats = LabelStats()
        self.watermark = -math.inf
        self._next_close = math.inf

    def observe(
        self,
        model: tuple[str, str],
        request_id: str | None,
        ts: float,
        prediction: object,
        slice_: str | None,
        groups: tuple[str, ...],
    ) -> LabelResult:
        """Hold one logged prediction for its label; ``slice_`` is its slice label (from
        ``slice_label``), None when slices are off."""
        score = _number(prediction)
        if request_id is None or score is None:
            self.stats.skipped += 1
            return self._advance(ts)
        model_id, slice_id, groups_id = self._intern(model, slice_, groups)
        self.pending.add(request_id, ts, score, model_id, slice_id, groups_id)
        self._count(model_id, slice_id, groups_id, ts)
        return self._advance(ts)

    # The worker's label judge: predictions and labels joined elsewhere arrive from several
    # partitions out of event-time order, so they do not move the clock; ``advance_to`` does,
    # with a watermark every partition has passed.
    def predicted(
        self, model: tuple[str, str], ts: float, slice_: str | None, groups: tuple[str, ...]
    ) -> None:
        """Count one prediction held for its label elsewhere (the worker's join stage)."""
        self._count(*self._intern(model, slice_, groups), ts)

    def labelled(
        self,
        model: tuple[str, str],
        ts: float,
        prediction: float,
        slice_: str | None,
        groups: tuple[str, ...],
        label: FeedbackRecord,
    ) -> LabelResult:
        """Account one prediction (made at ``ts``) whose label was joined elsewhere; its
        concept-drift anomalies."""
        ids = self._intern(model, slice_, groups)
        joined = Joined(ts, prediction, *ids, latency=max(0.0, label.ts - ts))
        return LabelResult(self._account(joined, label))

    def advance_to(self, watermark: float) -> LabelResult:
        """Judge the windows whose wait has passed at ``watermark``."""
        return self._advance(watermark)

    def _intern(
        self, model: tuple[str, str], slice_: str | None, groups: tuple[str, ...]
    ) -> tuple[int, int, int]:
        slice_id = self.slice_names.id(ALL if slice_ is None else slice_)
        return self.models.id(model), slice_id, self.group_values.id(groups)

    def _count(self, model_id: int, slice_id: int, groups_id: int, ts: float) -> None:
        bucket = self._bucket(model_id, ts)
        if bucket is not None:
            for w in bucket.windows(self.slice_names.values[slice_id], self._groups(groups_id)):
                w.predictions += 1

    def slice_label(self, value: str | None) -> str:
        """The name a slice value is kept under: itself while top-K, else "other"."""
        return ALL if self.slice_keys is None else self.slice_keys.label(value)

    def known_slice(self, value: str | None) -> str:
        """``slice_label`` without counting the value again (a label, not a prediction)."""
        return ALL if self.slice_keys is None else self.slice_keys.peek(value)

    def feedback(self, fb: FeedbackRecord) -> LabelResult:
        return self._accounted(self.pending.join(fb.request_id, fb.ts), fb)

    def _accounted(self, joined: Joined | None, fb: FeedbackRecord) -> LabelResult:
        result = LabelResult()
        if joined is not None:
            result.anomalies += self._account(joined, fb)
        advanced = self._advance(fb.ts)
        result.anomalies += advanced.anomalies
        result.reports += advanced.reports
        return result

    def close_until(self, watermark: float) -> LabelResult:
        """Judge every window whose wait has passed at ``watermark`` (inf: all of them)."""
        result = LabelResult()
        for key in sorted(k for k, b in self.buckets.items() if b.end + self._wait <= watermark):
            report = self._judge(key[0], self.buckets.pop(key))
            result.anomalies += report.anomalies
            result.reports.append(report)
        self._next_close = min(
            (b.end + self._wait for b in self.buckets.values()), default=math.inf
        )
        return result

    @property
    def _wait(self) -> float:
        return self.options.wait_seconds

    def _advance(self, ts: float) -> LabelResult:
        if ts <= self.watermark:
            return LabelResult()
        self.watermark = ts
        self.pending.expire(ts)
        return self.close_until(ts) if ts >= self._next_close else LabelResult()

    def _bucket(self, model_id: int, ts: float) -> Bucket | None:
        size = self.options.window_seconds
        start = align(ts, size)
        bucket = self.buckets.get((model_id, start))
        if bucket is None:
            if start + size + self._wait <= self.watermark:
                return None  # already judged
            bucket = self.buckets[(model_id, start)] = Bucket(start, start + size)
            self._next_close = min(self._next_close, bucket.end + self._wait)
        return bucket

    def _groups(self, groups_id: int) -> tuple[tuple[str, str], ...]:
        return tuple(zip(self.options.groups, self.group_values.values[groups_id], strict=False))

    def _account(self, joined: Joined, fb: FeedbackRecord) -> list[Anomaly]:
        classify = self.options.task == "classification"
        if classify and fb.label not in (0.0, 1.0):
            self.stats.bad_labels += 1
            return []
        if fb.source == "human":
            self.stats.human_labels += 1
        slice_ = self.slice_names.values[joined.slice_]
        start = align(joined.ts, self.options.window_seconds)
        bucket = self.buckets.get((joined.model, start))
        wrong = False
        if bucket is None:
            self.stats.late_labels += 1
        else:
            bucket.latency.update(joined.latency)
            for w in bucket.windows(slice_, self._groups(joined.groups)):
                if classify:
                    wrong = w.update_classification(
                        joined.prediction, int(fb.label), self.options.decision_threshold
                    )
                else:
                    w.update_regression(joined.prediction, fb.label)
        if not classify:
            return []
        if bucket is None:
            wrong = (joined.prediction >= self.options.decision_threshold) != bool(fb.label)
        out = []
        for name in (ALL, slice_) if slice_ not in (ALL, OTHER) else (ALL,):
            detectors = self.detectors.get((joined.model, name))
            if detectors is None:
                detectors = self.detectors[(joined.model, name)] = ErrorDetectors(self.calibration)
            change = detectors.update(wrong)
            if change is not None:
                out.append(self._concept_drift(joined.model, name, change, start, fb.ts, detectors))
        return out

    def _concept_drift(
        self,
        model_id: int,
        slice_: str,
        change: ErrorChange,
        start: float,
        ts: float,
        detectors: ErrorDetectors,
    ) -> Anomaly:
        model, version = self.models.values[model_id]
        where_slice = {} if slice_ == ALL else {str(self.options.slice_key): slice_}
        slice_text = "".join(f", slice {k}={v}" for k, v in where_slice.items())
        longrun = detectors.error_rate
        name = {"adwin": "ADWIN", "ddm": "DDM"}.get(change.detector, change.detector)
        # A change alarm fires whichever way the rate went: the verb and the severity come from
        # the numbers. Errors falling are an improvement, kept on record but paging nobody.
        went = direction(change.recent, longrun)
        severity = severity_for((change.recent - longrun) / SEVERITY_STEP)
        news, went_to = "", f"{went} to" if went != "held" else "held at"
        if went == "fell":
            severity, news = INFO, " (an improvement; not paged)"
        return Anomaly(
            id=anomaly_id(
                model, version, ERROR_FEATURE, "concept_drift", change.detector, start, where_slice
            ),
            timestamp=ts,
            kind="concept_drift",
            detector=change.detector,
            severity=severity,
            model=model,
            model_version=version,
            feature=ERROR_FEATURE,
            statistic=change.recent,
            threshold=longrun,
            window_start=start,
            window_end=start + self.options.window_seconds,
            window_count=change.labels,
            message=(
                f"{ERROR_FEATURE} ({model}{f' v{version}' if version else ''}{slice_text}): "
                f"error rate {went_to} {change.recent:.1%} recently vs {longrun:.1%} over "
                f"{detectors.labels:,} labels{news}; {name} change alarm at {iso(ts)} on labels "
                f"of predictions made from {iso(start)}"
            ),
            slice=where_slice,
            baseline={"error_rate": longrun},
            current={"error_rate": change.recent, "labels": change.labels},
        )

    def _judge(self, model_id: int, bucket: Bucket) -> LabelReport:
        model, version = self.models.values[model_id]
        anomalies = []
        groups: dict[str, dict[str, dict[str, float]]] = {}
        for attr in self.options.groups:
            now = {v: w for (a, v), w in bucket.groups.items() if a == attr}
            groups[attr] = {v: w.metrics() for v, w in now.items()}
            count, ref = self.reference.get((model_id, attr), (0, {}))
            complete = count >= self.options.reference_windows
            for d in disparities(now, ref if complete else {}, self.options.fairness):
                anomalies.append(self._fairness(model, version, attr, d, bucket))
            judged = [w for w in now.values() if w.labelled >= self.options.fairness.min_labels]
            if not complete and len(judged) >= 2:
                merged = {v: ref.get(v, PerformanceWindow()).merge(w) for v, w in now.items()}
                self.reference[(model_id, attr)] = (count + 1, merged)
        latency = {}
        if not bucket.latency.is_empty():
            latency = {f"p{q}": float(bucket.latency.get_quantile(q / 100)) for q in (50, 90, 99)}
        return LabelReport(
            model,
            version,
            bucket.start,
            bucket.end,
            bucket.overall.metrics(),
            latency,
            {s: w.metrics() for s, w in bucket.slices.items()},
            groups,
            anomalies,
            self.options.slice_key,
        )

    def _fairness(
        self, model: str, version: str, attr: str, d: Disparity, bucket: Bucket
    ) -> Anomaly:
        w = bucket.groups[(attr, d.group)]
        gap = d.rates["error_rate"] - d.rates["best_error_rate"]
        reference = d.rates.get("reference_gap")
        if d.detector == "error_rate_disparity_change" and reference is not None:
            verdict = (
                f"the gap {direction(gap, reference)} from {_points(reference)} in the "
                f"reference windows to {_points(gap)}, a move of {_points(d.statistic)} "
                f"(more than the {_points(d.threshold, sign=False)} tolerated)"
            )
        else:
            verdict = (
                f"a gap of {_points(gap)}, {'above' if gap > d.threshold else 'within'} the "
                f"{_points(d.threshold, sign=False)} tolerated"
            )
            if reference is not None:
                verdict += f" ({_points(reference)} in the reference windows)"
        current = {"error_rate": d.rates["error_rate"], "gap": gap, "z": d.z}
        if reference is not None:
            current |= {"reference_gap": reference, "move": gap - reference}
        return Anomaly(
            id=anomaly_id(
                model, version, attr, "fairness", d.detector, bucket.start, {attr: d.group}
            ),
            timestamp=bucket.end,
            kind="fairness",
            detector=d.detector,
            severity=severity_for(d.statistic / d.threshold),
            model=model,
            model_version=version,
            feature=attr,
            statistic=d.statistic,
            threshold=d.threshold,
            window_start=bucket.start,
            window_end=bucket.end,
            window_count=w.labelled,
            message=(
                f"{attr}={d.group} ({model}{f' v{version}' if version else ''}): error rate "
                f"{d.rates['error_rate']:.1%} vs {d.rates['best_error_rate']:.1%} for the "
                f"best-served {attr}={d.best}: {verdict}; z {d.z:.1f}; window "
                f"{iso(bucket.start)} to {iso(bucket.end)}, {w.labelled:,} labels"
            ),
            current=current,
            slice={attr: d.group},
            baseline={"best_group": d.best, "error_rate": d.rates["best_error_rate"]},
        )


def group_values(
    baseline: Baseline, record: ServingRecord, attrs: tuple[str, ...]
) -> tuple[str, ...]:
    """Each sensitive attribute's value, from the slice object, else the features; a feature
    marked sensitive in the schema is named only by its keyed hash."""
    return tuple(_group_value(baseline, record, attr) for attr in attrs)


def _group_value(baseline: Baseline, record: ServingRecord, attr: str) -> str:
    value = record.slice.get(attr, record.features.get(attr))
    if value is None:
        return OTHER
    ref = baseline.references.get(attr)
    if ref is not None and ref.spec.sensitive:
        return keyed_hash(baseline.privacy_key, category_text(value))
    return bounded_text(category_text(value))


def _points(rate: float, *, sign: bool = True) -> str:
    """A difference of two rates in percentage points: '+12.0 points'."""
    return f"{rate * 100:{'+' if sign else ''}.1f} points"


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None
