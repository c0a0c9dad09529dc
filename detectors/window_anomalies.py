"""Anomalies built from plain values: the window they belong to (``Span``), the feature's
reference and what was found. Every runner builds its anomalies here, so the same finding in
the same window has the same id, message and fields whichever runner found it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from detectors.anomaly import Anomaly, anomaly_id, iso, severity_for
from detectors.baseline.reference import FeatureReference
from detectors.baseline.schema import PREDICTION
from detectors.baseline.scores import ScoreMap
from detectors.drift.change import Change
from detectors.drift.compare import Finding
from detectors.drift.rates import RateAlarm
from detectors.stats import OTHER
from detectors.validate import CODES
from detectors.watch import Signal

# (feature, kind, detector) flagged in a window, to say "ongoing since".
FlagKey = tuple[str, str, str]
DETECTOR_NAMES = {"page_hinkley": "Page-Hinkley", "adwin": "ADWIN"}


@dataclass(frozen=True, slots=True)
class Span:
    """The window an anomaly belongs to: whose, from when to when, ``count`` records so far,
    and since when each (feature, kind, detector) flagged in the window before has been on."""

    model: str
    version: str
    start: float
    end: float
    count: int
    ongoing: Mapping[FlagKey, float] = field(default_factory=dict)


def where(span: Span, feature: str) -> str:
    """'feature (model vN)': how messages name what changed; the model's own output is named
    as prediction drift, since its inputs may well be unchanged."""
    version = f" v{span.version}" if span.version else ""
    if feature == PREDICTION:
        return f"prediction drift: the model's output {feature} ({span.model}{version})"
    return f"{feature} ({span.model}{version})"


def window_anomaly(
    span: Span,
    feature: str,
    f: Finding,
    flagged: dict[FlagKey, float],
) -> Anomaly:
    key = (feature, f.kind, f.detector)
    since = span.ongoing.get(key, span.start)
    flagged[key] = since
    window = f"window {iso(span.start)} to {iso(span.end)}, {span.count:,} records"
    if since < span.start:
        window += f"; ongoing since {iso(since)}"
    return Anomaly(
        id=anomaly_id(span.model, span.version, feature, f.kind, f.detector, span.start),
        timestamp=span.end,
        kind=f.kind,
        detector=f.detector,
        severity=severity_for(f.statistic / f.threshold if f.threshold > 0 else math.inf),
        model=span.model,
        model_version=span.version,
        feature=feature,
        statistic=f.statistic,
        threshold=f.threshold,
        window_start=span.start,
        window_end=span.end,
        window_count=span.count,
        message=f"{where(span, feature)}: {f.message}; {window}",
        baseline=f.baseline,
        current={**f.current, "since": iso(since)},
    )


def signal_anomaly(span: Span, ref: FeatureReference, signal: Signal, ts: float) -> Anomaly:
    """A per-value alarm (a change detector's or a rate test's) of feature ``ref``."""
    if isinstance(signal, RateAlarm):
        return rate_anomaly(span, ref, signal, ts)
    return change_anomaly(span, ref, signal, ts)


def _per_event(span: Span, feature: str, kind: str, detector: str, ts: float) -> dict[str, object]:
    """The fields every per-event anomaly shares: it belongs to the window it fired in."""
    return {
        "id": anomaly_id(span.model, span.version, feature, kind, detector, span.start),
        "timestamp": ts,
        "kind": kind,
        "detector": detector,
        "model": span.model,
        "model_version": span.version,
        "feature": feature,
        "window_start": span.start,
        "window_end": ts,
        "window_count": span.count,
    }


def _into_window(span: Span, ts: float) -> str:
    return f"{span.count:,} records into the window that began {iso(span.start)}"


def change_anomaly(span: Span, ref: FeatureReference, change: Change, ts: float) -> Anomaly:
    """A change detector's alarm, said as what moved: the median, in the feature's units."""
    feature = ref.name
    scores = ref.scores or ScoreMap.linear(ref.mean, ref.std)
    level = change.center + change.shift
    before, now = scores.x(change.center), scores.x(level)
    direction = "rose" if change.shift > 0 else "fell"
    values = "" if ref.spec.sensitive else f" from {before:.4g} to about {now:.4g}"
    name = DETECTOR_NAMES.get(change.detector, change.detector)
    return Anomaly(
        **_per_event(span, feature, "drift", change.detector, ts),  # type: ignore[arg-type]
        severity=severity_for(abs(change.shift) / change.threshold),
        statistic=change.shift,
        threshold=change.threshold,
        message=(
            f"{where(span, feature)}: the median {direction}{values} (recent values centre on "
            f"training's {scores.percentile(level):.0f}th percentile, a shift of "
            f"{change.shift:+.2f} sd; the detectors target {change.threshold:.2f} sd); {name} "
            f"change alarm at {iso(ts)}, {_into_window(span, ts)}"
        ),
        baseline={} if ref.spec.sensitive else {"median": before},
        current={"shift_sd": change.shift, **({} if ref.spec.sensitive else {"median": now})},
    )


def rate_anomaly(span: Span, ref: FeatureReference, alarm: RateAlarm, ts: float) -> Anomaly:
    """A sequential rate test's alarm: a rate that rose, judged as the records arrived."""
    feature, t = ref.name, ref.thresholds
    if alarm.test == "missing":
        kind, what = "data_quality", "missing values"
    elif alarm.test in ("violation", "range"):
        kind, meaning = CODES.get(alarm.what, ("schema_skew", alarm.what))
        what = f"{alarm.what} ({meaning})"
    else:
        kind = "distribution_skew"
        what = "values unseen in training" if alarm.what == OTHER else f"the value {alarm.what!r}"
    tolerance = alarm.tolerated - alarm.baseline
    if (
        tolerance > 0
    ):  # a rise past a floor: the effect in floors (detectors/drift/rates.py rise_of)
        effect = (alarm.rate - alarm.baseline) / (2 * tolerance)
        tolerated = f"tolerated up to about {alarm.baseline + 2 * tolerance:.2%}"
    else:  # a break training never had: the effect against the schema's violation floor
        effect = alarm.rate / max(t.violation_rate, 1e-3)
        tolerated = "training had none"
    return Anomaly(
        **_per_event(span, feature, kind, f"cusum_{alarm.test}", ts),  # type: ignore[arg-type]
        severity=severity_for(max(1.0, effect)),
        statistic=alarm.rate,
        threshold=alarm.tolerated,
        message=(
            f"{where(span, feature)}: {what} rose to {alarm.rate:.1%} of the last "
            f"{alarm.events:,} records vs {alarm.baseline:.2%} in training ({tolerated}); "
            f"sequential test (CUSUM) alarm at {iso(ts)}, {_into_window(span, ts)}"
        ),
        baseline={"rate": alarm.baseline, "test": alarm.test},
        current={"rate": alarm.rate, "events": alarm.events, "value": alarm.what},
    )
