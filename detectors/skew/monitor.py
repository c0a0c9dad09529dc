"""Feature skew as it streams: serving records and the pipeline's feature records joined by
request id, compared per feature, judged per window.

    serving record ──┐ KeyedJoin (detectors/keyed_join.py: horizon, cap; joined, expired,
    pipeline record ─┘   evicted, unmatched counted)
      ──▶ SkewWindows: per model, version and window of the serving time, per feature a
          SkewWindow (detectors/skew/feature_skew.py)
      ──▶ when every partition's two sides have passed the window's end by ``wait_seconds``
          (``keyed_join.complete_watermark``; at most ``horizon`` behind the newest): the test per
          feature, feature_skew anomalies and a SkewReport per window

The embedded runner's Engine owns a FeatureSkewMonitor (join and windows in one); the Kafka
worker joins per partition and feeds the joined pairs to a SkewWindows per model. Both call
``SkewWindows.add`` and ``advance_to``: the same comparisons, the same anomalies.

>>> from detectors.records import PipelineRecord, ServingRecord
>>> m = FeatureSkewMonitor(SkewOptions(window_seconds=60.0, wait_seconds=0.0), lambda m: None)
>>> m.serving(ServingRecord(0.0, "ctr", "3", {"price": 12.5}, 0.1, "r1")).reports
[]
>>> m.pipeline(PipelineRecord(5.0, "r1", "ctr", {"price": 1250.0})).reports  # joined, waits
[]
>>> m.join.stats.joined, m.windows.stats.no_baseline  # (no baseline here: not compared)
(1, 1)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from detectors.anomaly import Anomaly, anomaly_id, iso, severity_for
from detectors.baseline.reference import Baseline
from detectors.baseline.schema import PREDICTION
from detectors.keyed_join import KeyedJoin, MemoryStore, PendingStore, complete_watermark
from detectors.records import PipelineRecord, ServingRecord
from detectors.skew.feature_skew import SkewWindow, judge, skew_threshold

KIND = "feature_skew"
DETECTOR = "request_join"


@dataclass(frozen=True, slots=True)
class SkewOptions:
    window_seconds: float = 300.0  # by the serving record's event time
    wait_seconds: float = 600.0  # a window is judged once both sides are this far past its end
    horizon: float = 3_600.0  # event-time seconds a serving record waits for its pipeline's
    max_pending: int = 100_000  # hard cap on waiting serving records (the rest are evicted)

    def __post_init__(self) -> None:
        for name in ("window_seconds", "horizon"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.wait_seconds < 0:
            raise ValueError(f"wait_seconds must be >= 0, got {self.wait_seconds}")
        if self.max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {self.max_pending}")


@dataclass(frozen=True, slots=True)
class ServingSide:
    """A serving record waiting for the pipeline's features of the same request."""

    ts: float
    partition: int
    model: str
    version: str
    features: dict[str, object]


@dataclass(frozen=True, slots=True)
class PipelineSide:
    """The pipeline's features of a request, waiting for its serving record."""

    ts: float
    partition: int
    model: str
    features: dict[str, object]


@dataclass(slots=True)
class SkewBucket:
    start: float
    end: float
    joined: int = 0
    features: dict[str, SkewWindow] = field(default_factory=dict)


@dataclass(slots=True)
class SkewReport:
    """One judged window of joined requests: what the drift-score documents carry."""

    model: str
    version: str
    start: float
    end: float
    joined: int
    features: dict[str, dict[str, float | int | None]]
    anomalies: list[Anomaly]

    def line(self) -> str:
        version = f" v{self.version}" if self.version else ""
        flagged = sorted(a.feature for a in self.anomalies)
        verdict = f"feature skew on {', '.join(flagged)}" if flagged else "no feature skew"
        return (
            f"{iso(self.end)} feature skew {self.model}{version} {iso(self.start)}..{iso(self.end)}"
            f": {self.joined:,} joined requests, {verdict}"
        )


@dataclass(slots=True)
class SkewResult:
    anomalies: list[Anomaly] = field(default_factory=list)
    reports: list[SkewReport] = field(default_factory=list)

    def extend(self, other: SkewResult) -> SkewResult:
        self.anomalies += other.anomalies
        self.reports += other.reports
        return self


@dataclass(slots=True)
class SkewStats:
    late: int = 0  # joined after their window was judged: left out of it
    no_baseline: int = 0  # joined pairs of a model without a baseline
    model_mismatch: int = 0  # the two sides name different models: not compared


ModelKey = tuple[str, str]


class SkewWindows:
    """Joined pairs into windows per model and version; judged once the watermark is past."""

    def __init__(self, options: SkewOptions, baseline_for: Callable[[str], Baseline | None]):
        self.options = options
        self.baseline_for = baseline_for
        self.buckets: dict[tuple[ModelKey, float], SkewBucket] = {}
        self.judged_until: dict[ModelKey, float] = {}  # window starts below this are judged
        self.stats = SkewStats()

    def add(
        self,
        model: ModelKey,
        ts: float,
        serving: dict[str, object],
        pipeline: dict[str, object],
    ) -> None:
        """One joined request: its serving time, and the two sides' features."""
        baseline = self.baseline_for(model[0])
        if baseline is None:
            self.stats.no_baseline += 1
            return
        width = self.options.window_seconds
        start = math.floor(ts / width) * width
        if start < self.judged_until.get(model, -math.inf):
            self.stats.late += 1
            return
        bucket = self.buckets.get((model, start))
        if bucket is None:
            bucket = self.buckets[(model, start)] = SkewBucket(start, start + width)
        bucket.joined += 1
        for name, ref in baseline.references.items():
            if name == PREDICTION:
                continue  # the model's output is not a feature either pipeline computes
            w = bucket.features.get(name)
            if w is None:
                w = bucket.features[name] = SkewWindow()
            sensitive = ref.spec.sensitive
            t, key = ref.thresholds, baseline.privacy_key
            w.add(serving.get(name), pipeline.get(name), t, ref.numeric, sensitive, key)

    def advance_to(self, watermark: float) -> SkewResult:
        """Judge every window both sides have passed by ``wait_seconds``."""
        due = [k for k, b in self.buckets.items() if b.end + self.options.wait_seconds <= watermark]
        return self._judge(sorted(due, key=lambda k: (k[1], k[0])))

    def close_all(self) -> SkewResult:
        return self._judge(sorted(self.buckets, key=lambda k: (k[1], k[0])))

    def _judge(self, keys: list[tuple[ModelKey, float]]) -> SkewResult:
        result = SkewResult()
        for key in keys:
            model, _ = key
            bucket = self.buckets.pop(key)
            self.judged_until[model] = max(self.judged_until.get(model, -math.inf), bucket.end)
            baseline = self.baseline_for(model[0])
            if baseline is not None:
                result.reports.append(judge_bucket(baseline, model, bucket))
        for report in result.reports:
            result.anomalies += report.anomalies
        return result


def judge_bucket(baseline: Baseline, model: ModelKey, bucket: SkewBucket) -> SkewReport:
    anomalies = []
    for name, w in sorted(bucket.features.items()):
        ref = baseline.references[name]
        # A disagreement is a per-record rate, as a missing value is: the training's measured
        # clustering of missing values says what a window of joined requests is worth.
        effective = ref.null.effective("missing", w.joined)
        found = judge(w, ref.thresholds, effective, ref.spec.sensitive)
        if found is not None:
            anomalies.append(
                skew_anomaly(
                    model,
                    name,
                    bucket,
                    found.statistic,
                    found.threshold,
                    found.message,
                    found.current,
                )
            )
    summaries = {}
    for name, w in sorted(bucket.features.items()):
        ref = baseline.references[name]
        s = summaries[name] = w.summary()
        s["threshold"] = skew_threshold(ref.thresholds, ref.null.effective("missing", w.joined))
        if ref.spec.sensitive:
            s["median_difference"] = None  # counts and ratios only
    return SkewReport(*model, bucket.start, bucket.end, bucket.joined, summaries, anomalies)


def skew_anomaly(
    model: ModelKey,
    feature: str,
    bucket: SkewBucket,
    statistic: float,
    threshold: float,
    message: str,
    current: dict[str, Any],
) -> Anomaly:
    name, version = model
    shown = f"{feature} ({name}{f' v{version}' if version else ''})"
    window = f"window {iso(bucket.start)} to {iso(bucket.end)}, {bucket.joined:,} joined requests"
    return Anomaly(
        id=anomaly_id(name, version, feature, KIND, DETECTOR, bucket.start),
        timestamp=bucket.end,
        kind=KIND,
        detector=DETECTOR,
        severity=severity_for(statistic / threshold if threshold > 0 else math.inf),
        model=name,
        model_version=version,
        feature=feature,
        statistic=statistic,
        threshold=threshold,
        window_start=bucket.start,
        window_end=bucket.end,
        window_count=bucket.joined,
        message=f"{shown}: {message}; {window}",
        baseline={"share": 0.0},
        current=current,
    )


class FeatureSkewMonitor:
    """The join and the windows in one process (the embedded runner, ``logdrift check``)."""

    def __init__(
        self,
        options: SkewOptions,
        baseline_for: Callable[[str], Baseline | None],
        store: PendingStore | None = None,
    ) -> None:
        self.options = options
        self.join: KeyedJoin[ServingSide, PipelineSide] = KeyedJoin(
            store if store is not None else MemoryStore(),
            options.horizon,
            options.max_pending,
            ServingSide,
            PipelineSide,
        )
        self.windows = SkewWindows(options, baseline_for)
        self.skipped = 0  # serving records without a request id: they cannot be joined

    def serving(self, record: ServingRecord) -> SkewResult:
        if record.request_id is None:
            self.skipped += 1
            return SkewResult()
        side = ServingSide(record.ts, 0, record.model, record.version, record.features)
        found = self.join.hold(record.request_id, side)
        if found is not None:
            self._pair(side, found)
        return self._advance()

    def pipeline(self, record: PipelineRecord) -> SkewResult:
        side = PipelineSide(record.ts, 0, record.model, record.features)
        found = self.join.match(record.request_id, side)
        if found is not None:
            self._pair(found, side)
        return self._advance()

    def close_all(self) -> SkewResult:
        return self.windows.close_all()

    def _pair(self, serving: ServingSide, pipeline: PipelineSide) -> None:
        if serving.model != pipeline.model:
            self.windows.stats.model_mismatch += 1
            return
        model = (serving.model, serving.version)
        self.windows.add(model, serving.ts, serving.features, pipeline.features)

    def _advance(self) -> SkewResult:
        clocks = self.join.clocks()
        return self.windows.advance_to(complete_watermark(clocks, 1, self.options.horizon))
