"""Sample anomalies and window reports for the Elasticsearch and Kibana tests (unit and
integration), built with the detectors' own constructors so they index like the real thing."""

from __future__ import annotations

from detectors.anomaly import Anomaly, anomaly_id, iso
from detectors.window_report import FeatureScore, WindowReport

START = 1_795_860_000.0  # 2026-11-28T10:00:00Z, a minute boundary


def anomaly(
    *,
    window_start: float = START,
    model: str = "ctr",
    feature: str = "price",
    kind: str = "distribution_skew",
    detector: str = "jensen_shannon",
    severity: str = "medium",
    timestamp: float | None = None,
    slice_: dict[str, str] | None = None,
) -> Anomaly:
    end = window_start + 60
    return Anomaly(
        id=anomaly_id(model, "3", feature, kind, detector, window_start, slice_),
        timestamp=end if timestamp is None else timestamp,
        kind=kind,
        detector=detector,
        severity=severity,
        model=model,
        model_version="3",
        feature=feature,
        statistic=0.3,
        threshold=0.1,
        window_start=window_start,
        window_end=end,
        window_count=500,
        message=f"{feature} ({model} v3): moved; window {iso(window_start)} to {iso(end)}",
        slice=dict(slice_ or {}),
        baseline={"mean": 1.0, "bins": [0.1, 0.9]},
        current={"mean": 2.0, "since": iso(window_start)},
    )


def report(window_start: float = START, anomalies: list[Anomaly] | None = None) -> WindowReport:
    scores = [
        FeatureScore("price", 500, 490, 0.02, 0.3, 0.1, 0.05, 0.1, 0.4, 0.0),
        FeatureScore("device", 500, 500, 0.0, 0.02, 0.08, None, None, None, 0.01),
        FeatureScore("age", 500, 0, 1.0, float("nan"), 0.0, None, None, float("inf"), 0.0),
    ]
    return WindowReport(
        "ctr", "3", window_start, window_start + 60, 500, 2, scores, list(anomalies or [])
    )
