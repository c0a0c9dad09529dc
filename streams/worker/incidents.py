"""The worker's incidents: the same ``IncidentTracker`` as the Engine's, kept where the
anomalies of its keys are raised, so "worker incidents == Engine incidents" holds by
construction rather than by a join of streams.

* Stage two (``compare_windows``) owns one model/version/feature: every anomaly of that
  feature (window findings and change alarms) and every window that feature closes. Its tracker
  sits beside its state, in ``feature_to_incidents`` (same key, same partition), and is fed the
  feature's anomalies and closed windows of each batch. An incident's key holds one feature, so
  its state sees exactly the sequence the Engine's tracker sees for that key; the tracker orders
  a step's events by event time, so how the stream is cut into batches does not matter.
* The label judge (``judge_labels``) owns a model version's label anomalies (concept_drift,
  fairness) and its per-slice feature windows: its tracker lives in its state, fed windows of
  labels and the slice windows it closes.

Incidents go to the incidents topic keyed by incident id (each version overwrites the last) and,
with Elasticsearch, to the incidents index through ``index_incidents``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from detectors.anomaly import Anomaly
from detectors.incidents.feed import feature_closes
from detectors.incidents.tracker import FEATURES, Close, Incident, IncidentTracker, Step
from detectors.stages import NEW_COLUMNS
from detectors.window_report import WindowReport
from streams.incident_options import incident_options
from streams.worker.app import settings
from streams.worker.payloads import INCIDENT
from streams.worker.tables import decode_state, encode_state, feature_to_incidents

logger = logging.getLogger("logdrift.worker")
OPTIONS = incident_options(settings.incidents)

# Decoded trackers by key, with the table value they came from (as stage two's states).
_cache: dict[str, tuple[bytes, IncidentTracker]] = {}


def tracker_for(key: str) -> IncidentTracker:
    stored = feature_to_incidents.get(key)
    cached = _cache.get(key)
    if cached is not None and stored is cached[0]:
        return cached[1]
    return restore(key, None if stored is None else decode_state(stored))


def restore(key: str, plain: dict[str, Any] | None) -> IncidentTracker:
    """A tracker from its plain state; afresh (and said) when it does not load."""
    if plain is None:
        return IncidentTracker(OPTIONS)
    try:
        return IncidentTracker.from_plain(OPTIONS, plain)
    except (KeyError, TypeError, ValueError) as exc:
        logger.warning("%s: incident state unreadable (%s); tracking afresh", key, exc)
        return IncidentTracker(OPTIONS)


def store(key: str, tracker: IncidentTracker) -> None:
    raw = encode_state(tracker.to_plain())
    feature_to_incidents[key] = raw
    _cache[key] = (raw, tracker)


def forget() -> None:
    _cache.clear()


def feature_step(
    tracker: IncidentTracker,
    feature: str,
    anomalies: list[Anomaly],
    reports: list[WindowReport],
    moved: Iterable[tuple[str, str, float, float]] = (),
) -> Step:
    """One stage-two owner's batch into its tracker. ``moved``: for the owner of unknown
    columns, which closes no window report, the windows it was seen to close."""
    closes = feature_closes(reports, feature)
    closes += [Close(m, v, s, e, FEATURES, ()) for m, v, s, e in moved]
    return tracker.apply(anomalies, closes)


def window_passed(
    feature: str, model: str, version: str, opened: bool, start: float, after: float
) -> list[tuple[str, str, float, float]]:
    """The window the unknown-columns owner closed while its start moved from ``start`` to
    ``after``. Its anomalies are raised at the close, so this is exact for one close per
    summary (the usual case); two closes in one summary count as one quiet window."""
    if feature != NEW_COLUMNS or not opened or after <= start:
        return []
    return [(model, version, start, after)]


def messages(incidents: Iterable[Incident]) -> list[tuple[str, bytes]]:
    """(key, value) of the incidents topic: the incident's plain data, keyed by its id."""
    return [(i.id, INCIDENT.encode(i)) for i in incidents]


def log_changes(step: Step) -> None:
    for change in step.changes:
        if change.action in ("opened", "resolved", "escalated"):
            logger.info("%s (%s)", change.incident.line(), change.action)
