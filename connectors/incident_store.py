"""The store's incident tables: one row per incident, upserted by id (a replay rebuilds the same
incidents and overwrites them), and one row per model version and closed window for roll-ups.

Store schema version 2 added them; a version-1 file gets them when it is opened
(``MIGRATIONS``, run by ``AnomalyStore``), and a logdrift reading only version 1 then refuses the
file instead of leaving its incidents stale.
"""

from __future__ import annotations

from typing import Any

import orjson

from detectors.incidents.rollups import RollUp
from detectors.incidents.tracker import Incident, severity_rank

INCIDENT_SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    severity TEXT NOT NULL,
    severity_rank INTEGER NOT NULL,
    model TEXT NOT NULL,
    model_version TEXT NOT NULL,
    feature TEXT NOT NULL,
    kind TEXT NOT NULL,
    opened_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    resolved_at REAL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_status ON incidents (status, last_seen);
CREATE INDEX IF NOT EXISTS incidents_model ON incidents (model, last_seen);
CREATE TABLE IF NOT EXISTS rollups (
    id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    model_version TEXT NOT NULL,
    window_start REAL NOT NULL,
    window_end REAL NOT NULL,
    alarmed INTEGER NOT NULL,
    monitored INTEGER NOT NULL,
    share REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rollups_model ON rollups (model, window_end);
"""
MIGRATIONS = {1: INCIDENT_SCHEMA}  # from user_version N to N + 1

UPSERT_INCIDENT = """
INSERT INTO incidents (id, status, severity, severity_rank, model, model_version, feature, kind,
                       opened_at, last_seen, resolved_at, body)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    status = excluded.status, severity = excluded.severity,
    severity_rank = excluded.severity_rank, last_seen = excluded.last_seen,
    resolved_at = excluded.resolved_at, body = excluded.body
"""
UPSERT_ROLLUP = """
INSERT INTO rollups (id, model, model_version, window_start, window_end, alarmed, monitored,
                     share, body)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    window_end = excluded.window_end, alarmed = excluded.alarmed,
    monitored = excluded.monitored, share = excluded.share, body = excluded.body
"""


def incident_row(i: Incident) -> tuple[Any, ...]:
    body = orjson.dumps(i.to_plain()).decode()
    return (
        i.id,
        i.status,
        i.severity,
        severity_rank(i.severity),
        i.model,
        i.version,
        i.feature,
        i.kind,
        i.opened_at,
        i.last_seen,
        i.resolved_at,
        body,
    )


def rollup_row(r: RollUp) -> tuple[Any, ...]:
    body = orjson.dumps(r.to_plain()).decode()
    counts = (len(r.features_alarmed), len(r.monitored), r.share)
    return (r.id, r.model, r.version, r.start, r.end, *counts, body)


def incidents_query(
    model: str | None, status: str | None, since: float | None
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if model is not None:
        clauses.append("model = ?")
        params.append(model)
    if status is not None:
        if status not in ("open", "resolved"):
            raise ValueError(f"status must be open or resolved (got {status!r})")
        clauses.append("status = ?")
        params.append(status)
    if since is not None:
        clauses.append("(last_seen >= ? OR status = 'open')")
        params.append(since)
    sql = "SELECT body FROM incidents"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    return sql + " ORDER BY status = 'open' DESC, last_seen DESC, id", params


def rollups_query(model: str | None) -> tuple[str, list[Any]]:
    params: list[Any] = []
    sql = "SELECT body FROM rollups"
    if model is not None:
        sql += " WHERE model = ?"
        params.append(model)
    return sql + " ORDER BY window_end DESC, id", params
