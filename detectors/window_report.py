"""What a closed window reports, as every consumer reads it: the store, Elasticsearch, the
report, the incident feed and the worker's topics. A leaf module (it imports only other leaf
types), so a connector can read a window's report without importing the engine that made it."""

from __future__ import annotations

from dataclasses import dataclass, field

from detectors.anomaly import Anomaly
from detectors.stats import FeatureWindow


@dataclass(slots=True)
class FeatureScore:
    """How far one feature is from its baseline in one window, anomaly or not."""

    feature: str
    seen: int
    valid: int
    missing_rate: float
    skew: float | None = None
    skew_threshold: float | None = None
    drift: float | None = None
    drift_threshold: float | None = None
    psi: float | None = None
    violation_rate: float = 0.0
    out_of_support: float | None = None  # share of values outside the training range


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
