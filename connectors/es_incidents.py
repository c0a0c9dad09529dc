"""Incident and roll-up documents for Elasticsearch (templates in config/elasticsearch/).

* ``<prefix>-incidents-YYYY.MM.DD``, behind the alias ``<prefix>-incidents``: one document per
  incident, ``_id`` = the incident id, rewritten whole at every update (opened, updated,
  escalated, resolved), so the newest version is what a search finds and a replay overwrites.
  The day is the day the incident opened: its window start is part of its id, so every
  version lands in the same index. ``incident.escalated_at`` is when it opened or its severity
  last rose: what the shipped Kibana rules alert on.
* ``<prefix>-rollups-YYYY.MM.DD``: one document per model version and closed feature window,
  ``_id`` = hash of model, version and window start: how many monitored features alarmed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import orjson

from connectors.es_documents import INCIDENTS, ROLLUPS
from connectors.outbox import OutboxItem
from detectors.anomaly import iso
from detectors.incidents.rollups import RollUp
from detectors.incidents.tracker import Incident, severity_rank


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _when(ts: float | None) -> str | None:
    return iso(ts) if ts is not None and math.isfinite(ts) else None


def incident_document(inc: Incident) -> dict[str, Any]:
    return {
        "@timestamp": iso(inc.last_seen),
        "incident": {
            "id": inc.id,
            "status": inc.status,
            "kind": inc.kind,
            "severity": inc.severity,
            "severity_rank": severity_rank(inc.severity),
            "opened_at": iso(inc.opened_at),
            "escalated_at": iso(inc.escalated_at),
            "resolved_at": _when(inc.resolved_at),
            "count": inc.count,
            "detectors": list(inc.detectors),
            "peak_effect": _finite(inc.peak_effect),
            "first_anomaly": inc.first_anomaly,
            "last_anomaly": inc.last_anomaly,
            "evidence": inc.evidence,
            "quiet_windows": inc.quiet,
        },
        "model": {"name": inc.model, "version": inc.version},
        "feature": {"name": inc.feature},
        "slice": dict(inc.slice),
        "statistic": _finite(inc.statistic),
        "threshold": _finite(inc.threshold),
        "window": {"start": iso(inc.opened_window), "end": _when(inc.window_end)},
        "current": inc.current,
        "message": inc.message,
    }


def rollup_document(r: RollUp) -> dict[str, Any]:
    kinds = sorted({k for found in r.alarmed.values() for k in found})
    return {
        "@timestamp": iso(r.end),
        "model": {"name": r.model, "version": r.version},
        "window": {"start": iso(r.start), "end": iso(r.end)},
        "rollup": {
            "monitored": len(r.monitored),
            "alarmed": len(r.features_alarmed),
            "share": r.share,
            "features": r.features_alarmed,
            "kinds": kinds,
            "unmonitored": sorted(set(r.alarmed) - set(r.monitored)),
        },
        "alarmed": r.alarmed,
    }


def incident_items(incidents: Iterable[Incident], rollups: Iterable[RollUp]) -> list[OutboxItem]:
    """Outbox rows for the embedded runner's shipper."""
    items = [
        OutboxItem(INCIDENTS, i.id, i.opened_window, orjson.dumps(incident_document(i)))
        for i in incidents
    ]
    items += [OutboxItem(ROLLUPS, r.id, r.start, orjson.dumps(rollup_document(r))) for r in rollups]
    return items
