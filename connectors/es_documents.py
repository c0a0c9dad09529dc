"""What goes into Elasticsearch, and where: documents, ids, daily index names, templates.

Pure apart from reading the template files. Four kinds of document, each in daily indices
behind an alias (the integ-test distribution has no ILM or data streams, and a plain index per
day works on every distribution):

* ``<prefix>-anomalies-YYYY.MM.DD``: ``Anomaly.to_document()``, ``_id`` = the anomaly id;
* ``<prefix>-drift-scores-YYYY.MM.DD``: one document per model, feature and window, anomaly or
  not, ``_id`` = hash of model, version, feature and window start; and with labels on, one per
  judged window of labels (feature ``labels``) for the model, each slice and each group, with
  its performance, label coverage and latency; and with feature skew on, one per feature and
  judged window of joined serving and pipeline features (``feature_skew``: counts and shares);
* ``<prefix>-incidents-YYYY.MM.DD`` and ``<prefix>-rollups-YYYY.MM.DD``: incidents (``_id`` =
  the incident id, the day the incident opened) and per-window roll-ups, built in
  ``connectors/es_incidents.py``.

The day comes from the window *start*, which is part of every id: the same id always lands in
the same index, so a re-delivery overwrites instead of duplicating across two days.

>>> names = IndexNames("logdrift")
>>> names.daily(ANOMALIES, 1795860000.0)
'logdrift-anomalies-2026.11.28'
>>> names.alias(DRIFT_SCORES), names.pattern(DRIFT_SCORES)
('logdrift-drift-scores', 'logdrift-drift-scores-*')
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from detectors.anomaly import iso
from detectors.labels.monitor import LabelReport
from detectors.records import parse_ts
from detectors.report.data import window_summary
from detectors.skew.monitor import SkewReport
from detectors.window_report import FeatureScore, WindowReport

ANOMALIES = "anomalies"
DRIFT_SCORES = "drift-scores"
INCIDENTS = "incidents"  # connectors/es_incidents.py
ROLLUPS = "rollups"
TARGETS = (ANOMALIES, DRIFT_SCORES, INCIDENTS, ROLLUPS)
DEFAULT_PREFIX = "logdrift"
TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "config" / "elasticsearch"
_DAY_FORMAT = "%Y.%m.%d"


@dataclass(frozen=True, slots=True)
class IndexNames:
    prefix: str = DEFAULT_PREFIX

    def alias(self, target: str) -> str:
        return f"{self.prefix}-{target}"

    def pattern(self, target: str) -> str:
        return f"{self.alias(target)}-*"

    def daily(self, target: str, window_start: float) -> str:
        day = datetime.fromtimestamp(window_start, UTC).strftime(_DAY_FORMAT)
        return f"{self.alias(target)}-{day}"

    def template_name(self, target: str) -> str:
        return self.alias(target)

    def day_of(self, index: str) -> date | None:
        """The day of one of our daily indices, or None for any other name."""
        for target in TARGETS:
            head = f"{self.alias(target)}-"
            if index.startswith(head):
                try:
                    return datetime.strptime(index[len(head) :], _DAY_FORMAT).date()
                except ValueError:
                    return None
        return None


def expired_indices(
    names: Iterable[str], index_names: IndexNames, today: date, days: int
) -> list[str]:
    """Our daily indices whose whole day lies more than ``days`` days before ``today``.

    >>> expired_indices(["logdrift-anomalies-2026.11.01", "logdrift-anomalies-2026.11.27",
    ...                  "logdrift-anomalies-x", "other-2020.01.01"],
    ...                 IndexNames(), date(2026, 11, 28), days=7)
    ['logdrift-anomalies-2026.11.01']
    """
    expired = []
    for name in names:
        day = index_names.day_of(name)
        if day is not None and (today - day).days > days:
            expired.append(name)
    return sorted(expired)


def load_templates(
    index_names: IndexNames, directory: Path = TEMPLATE_DIR
) -> dict[str, dict[str, Any]]:
    """The composable index templates, keyed by template name, rewritten for the prefix."""
    templates = {}
    for target in TARGETS:
        body = orjson.loads((directory / f"{target}.template.json").read_bytes())
        templates[index_names.template_name(target)] = render_template(body, target, index_names)
    return templates


def render_template(body: dict[str, Any], target: str, index_names: IndexNames) -> dict[str, Any]:
    """The shipped template (written for the default prefix) for another prefix."""
    rendered = copy.deepcopy(body)
    rendered["index_patterns"] = [index_names.pattern(target)]
    rendered["template"]["aliases"] = {index_names.alias(target): {}}
    return rendered


def score_id(model: str, version: str, feature: str, window_start: float) -> str:
    """Same window of the same feature, same id: a re-sent score overwrites."""
    key = "\x1f".join(["drift-score", model, version, feature, f"{window_start:.3f}"])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def score_documents(report: WindowReport) -> list[tuple[str, dict[str, Any]]]:
    """(id, document) for every feature of a closed window."""
    return [
        (score_id(report.model, report.version, s.feature, report.start), _score_doc(report, s))
        for s in report.scores
    ]


def _score_doc(report: WindowReport, s: FeatureScore) -> dict[str, Any]:
    flagged = [a for a in report.anomalies if a.feature == s.feature]
    win = report.windows.get(s.feature)
    return {
        "@timestamp": iso(report.end),
        "model": {"name": report.model, "version": report.version},
        "feature": {"name": s.feature},
        "window": {
            "start": iso(report.start),
            "end": iso(report.end),
            "count": report.count,
            "late": report.late,
            "partial": report.partial,  # judged at shutdown on fewer than min_count records
        },
        "score": {
            "seen": s.seen,
            "valid": s.valid,
            "missing_rate": _finite(s.missing_rate),
            "violation_rate": _finite(s.violation_rate),
            "skew": _finite(s.skew),
            "skew_threshold": _finite(s.skew_threshold),
            "skew_ratio": _ratio(s.skew, s.skew_threshold),
            "drift": _finite(s.drift),
            "drift_threshold": _finite(s.drift_threshold),
            "drift_ratio": _ratio(s.drift, s.drift_threshold),
            "psi": _finite(s.psi),
        },
        "anomalies": {"count": len(flagged), "kinds": sorted({a.kind for a in flagged})},
        # The window's counts per bin or category (no raw values), for `logdrift report`'s
        # current distribution; kept in _source, not indexed.
        "distribution": window_summary(win) if win is not None else {},
    }


LABELS_FEATURE = "labels"  # feature.name of label-window documents
SKEW_FEATURE = "feature_skew"  # apart in the id: a feature's skew document is not its score


def label_documents(report: LabelReport) -> list[tuple[str, dict[str, Any]]]:
    """(id, document) for a judged window of labels: the whole model, each slice, each group."""
    parts: list[tuple[dict[str, str], dict[str, float]]] = [({}, report.metrics)]
    if report.slice_key:
        parts += [({report.slice_key: s}, m) for s, m in sorted(report.slices.items())]
    for attr, groups in sorted(report.groups.items()):
        parts += [({attr: g}, m) for g, m in sorted(groups.items())]
    out = []
    for where, metrics in parts:
        key = ",".join(f"{k}={v}" for k, v in where.items())
        doc_id = score_id(report.model, report.version, f"{LABELS_FEATURE}\x1f{key}", report.start)
        out.append((doc_id, _label_doc(report, where, metrics)))
    return out


def _label_doc(
    report: LabelReport, where: dict[str, str], metrics: dict[str, float]
) -> dict[str, Any]:
    flagged = [a for a in report.anomalies if a.slice == where]
    performance = {k: _finite(v) for k, v in metrics.items()}
    if not where:
        performance.update({f"latency_{q}": _finite(v) for q, v in report.latency.items()})
    return {
        "@timestamp": iso(report.end),
        "model": {"name": report.model, "version": report.version},
        "feature": {"name": LABELS_FEATURE},
        "slice": where,
        "window": {
            "start": iso(report.start),
            "end": iso(report.end),
            "count": int(metrics.get("predictions", 0)),
        },
        "performance": performance,
        "anomalies": {"count": len(flagged), "kinds": sorted({a.kind for a in flagged})},
    }


def skew_documents(report: SkewReport) -> list[tuple[str, dict[str, Any]]]:
    """(id, document) per feature of a judged window of joined serving and pipeline features:
    counts and shares (a sensitive feature's median difference is already left out)."""
    out = []
    for feature, summary in report.features.items():
        doc_id = score_id(
            report.model, report.version, f"{SKEW_FEATURE}\x1f{feature}", report.start
        )
        flagged = [a for a in report.anomalies if a.feature == feature]
        doc = {
            "@timestamp": iso(report.end),
            "model": {"name": report.model, "version": report.version},
            "feature": {"name": feature},
            "window": {"start": iso(report.start), "end": iso(report.end), "count": report.joined},
            "feature_skew": {
                k: _finite(v) if isinstance(v, float) else v for k, v in summary.items()
            },
            "anomalies": {"count": len(flagged), "kinds": sorted({a.kind for a in flagged})},
        }
        out.append((doc_id, doc))
    return out


def window_start_of(document: dict[str, Any]) -> float:
    """Epoch seconds of a document's ``window.start`` (what its daily index is named by)."""
    return parse_ts(document["window"]["start"])


def _finite(x: float | None) -> float | None:
    # JSON has no NaN or infinity; a missing value says "not computed" honestly.
    return x if x is not None and math.isfinite(x) else None


def _ratio(statistic: float | None, threshold: float | None) -> float | None:
    if statistic is None or threshold is None or not threshold > 0:
        return None
    return _finite(statistic / threshold)
