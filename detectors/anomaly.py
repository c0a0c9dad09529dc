"""The anomaly record (DESIGN section 5): deterministic id, severity, a message for on-call.

>>> a = anomaly_id("ctr", "3", "price", "drift", "jensen_shannon", 1795860000.0)
>>> a == anomaly_id("ctr", "3", "price", "drift", "jensen_shannon", 1795860000.0)
True
>>> a == anomaly_id("ctr", "3", "price", "distribution_skew", "jensen_shannon", 1795860000.0)
False
>>> severity_for(1.2), severity_for(3.0), severity_for(5.0), severity_for(20.0)
('low', 'medium', 'high', 'critical')
>>> direction(0.075, 0.186), direction(0.3, 0.1), direction(0.1, 0.1)
('fell', 'rose', 'held')
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Kind = Literal[
    "schema_skew",
    "distribution_skew",
    "drift",
    "concept_drift",
    "data_quality",
    "fairness",
    "feature_skew",
]
# Least to most severe. "info" records a change worth keeping that pages nobody (errors fell,
# an improvement); every paging rule starts at "high", every listing filter at a named level.
SEVERITIES = ("info", "low", "medium", "high", "critical")
INFO = "info"


def anomaly_id(
    model: str,
    version: str,
    feature: str,
    kind: str,
    detector: str,
    window_start: float,
    slice_: dict[str, str] | None = None,
) -> str:
    """Same inputs, same id: a re-delivered anomaly overwrites instead of duplicating. The kind
    is part of it because one distance serves both skew (vs training) and drift (vs the
    previous window)."""
    slice_key = ",".join(f"{k}={v}" for k, v in sorted((slice_ or {}).items()))
    key = "\x1f".join([model, version, feature, kind, detector, f"{window_start:.3f}", slice_key])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def severity_for(ratio: float) -> str:
    """Severity from how far a statistic passed its threshold (statistic / threshold)."""
    if ratio >= 8:
        return "critical"
    if ratio >= 4:
        return "high"
    if ratio >= 2:
        return "medium"
    return "low"


def direction(now: float, before: float) -> str:
    """How a rate went, from its numbers: "rose", "fell" or "held". Messages take their verb
    from here, never from which detector fired (a change alarm fires both ways)."""
    if now > before:
        return "rose"
    if now < before:
        return "fell"
    return "held"


def iso(ts: float) -> str:
    """Epoch seconds as an ISO-8601 UTC string with milliseconds."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Anomaly:
    id: str
    timestamp: float
    kind: str
    detector: str
    severity: str
    model: str
    model_version: str
    feature: str
    statistic: float
    threshold: float
    window_start: float
    window_end: float
    window_count: int
    message: str
    slice: dict[str, str] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    current: dict[str, Any] = field(default_factory=dict)

    def to_document(self) -> dict[str, Any]:
        """The indexed document: ECS-style field names where ECS has them."""
        return {
            "@timestamp": iso(self.timestamp),
            "anomaly": {
                "id": self.id,
                "kind": self.kind,
                "detector": self.detector,
                "severity": self.severity,
            },
            "model": {"name": self.model, "version": self.model_version},
            "feature": {"name": self.feature},
            "slice": dict(self.slice),
            "statistic": self.statistic,
            "threshold": self.threshold,
            "window": {
                "start": iso(self.window_start),
                "end": iso(self.window_end),
                "count": self.window_count,
            },
            "baseline": self.baseline,
            "current": self.current,
            "message": self.message,
        }

    def to_dict(self) -> dict[str, Any]:
        """Flat plain data, for stores and topics."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Anomaly:
        return cls(**data)

    def line(self) -> str:
        """One readable line for a terminal or a log."""
        when = iso(self.timestamp)
        return (
            f"{when} {self.severity.upper():8} {self.kind:17} {self.model}/{self.feature} "
            f"[{self.detector}] {self.message}"
        )
