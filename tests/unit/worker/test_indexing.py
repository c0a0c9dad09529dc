"""What the index agents take from their topics: a document of their kind by id, or a dead
letter naming why and where."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson

from streams.worker.indexing import ANOMALIES, SCORES, documents_of

SCORE = {"window": {"start": "2027-01-15T08:00:00Z"}, "feature": {"name": "age"}}


def event(key: bytes | None, value: bytes, offset: int = 7) -> Any:
    message = SimpleNamespace(
        key=key, value=value, topic="drift-scores", partition=1, offset=offset
    )
    return SimpleNamespace(message=message)


def test_a_drift_score_is_indexed_under_its_key() -> None:
    batch = documents_of(SCORES, [event(b"abc123", orjson.dumps(SCORE))])
    assert batch.documents == [("abc123", SCORE)]
    assert batch.sources["abc123"].where == "drift-scores/1/7"
    assert batch.bad == []


def test_what_is_not_a_drift_score_is_dead_lettered_with_where_it_was() -> None:
    batch = documents_of(
        SCORES,
        [
            event(b"a", b"{not json", offset=1),
            event(b"b", b"[1, 2]", offset=2),
            event(None, orjson.dumps(SCORE), offset=3),
            event(b"c", orjson.dumps({"window": {}}), offset=4),
        ],
    )
    assert batch.documents == []
    kinds = [(source.where, kind) for source, _, kind in batch.bad]
    assert kinds == [
        ("drift-scores/1/1", "not_json"),
        ("drift-scores/1/2", "not_a_drift_score"),
        ("drift-scores/1/3", "not_a_drift_score"),
        ("drift-scores/1/4", "not_a_drift_score"),
    ]
    assert all(reason for _, reason, _ in batch.bad)


def test_a_drift_score_is_not_an_anomaly() -> None:
    batch = documents_of(ANOMALIES, [event(b"abc123", orjson.dumps(SCORE))])
    assert batch.documents == []
    assert [kind for _, _, kind in batch.bad] == ["not_an_anomaly"]


def test_an_incident_is_indexed_under_its_id_and_a_stranger_is_dead_lettered() -> None:
    from detectors.anomaly import Anomaly
    from detectors.incidents.tracker import IncidentTracker
    from streams.worker.indexing import INCIDENTS

    a = Anomaly("a1", 60.0, "drift", "psi", "high", "ctr", "3", "age", 0.4, 0.1, 0.0, 60.0, 9, "m")
    (inc,) = IncidentTracker().apply([a], []).incidents()
    batch = documents_of(
        INCIDENTS,
        [event(inc.id.encode(), orjson.dumps(inc.to_plain())), event(b"x", b'{"id": 1}', 8)],
    )
    ((doc_id, doc),) = batch.documents
    assert doc_id == inc.id and doc["incident"]["id"] == inc.id
    assert doc["window"]["start"] == "1970-01-01T00:00:00.000Z"  # its daily index: the opening
    ((_, reason, kind),) = batch.bad
    assert kind == "not_an_incident" and "not an incident" in reason
