"""connectors.store: incidents upserted by id (a replay overwrites), roll-ups, the tracker's
state, and the migration of a version-1 store file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from connectors.store import APPLICATION_ID, SCHEMA_VERSION, AnomalyStore
from detectors.anomaly import Anomaly, anomaly_id
from detectors.incidents.rollups import RollUp
from detectors.incidents.tracker import Close, IncidentOptions, IncidentTracker


def alarm(window: int, feature: str = "price", severity: str = "medium") -> Anomaly:
    start = window * 60.0
    return Anomaly(
        anomaly_id("ctr", "3", feature, "drift", "psi", start),
        start + 60,
        "drift",
        "psi",
        severity,
        "ctr",
        "3",
        feature,
        0.3,
        0.1,
        start,
        start + 60,
        500,
        f"{feature} moved",
    )


def close(window: int) -> Close:
    return Close("ctr", "3", window * 60.0, window * 60.0 + 60, monitored=("age", "price"))


def test_incidents_are_upserted_by_id_and_listed_open_first(tmp_path: Path) -> None:
    t = IncidentTracker(IncidentOptions(quiet_windows=1))
    with AnomalyStore(tmp_path / "s.db") as store:
        for w, found in enumerate([[alarm(0, "age")], [alarm(1)], [alarm(2, severity="high")]]):
            step = t.apply(found, [close(w)])
            store.put(found, incidents=step.incidents(), rollups=step.rollups)
        listed = store.incidents()
        assert [(i.feature, i.status) for i in listed] == [("price", "open"), ("age", "resolved")]
        assert listed[0].count == 2 and listed[0].severity == "high"  # updated in place
        assert [i.feature for i in store.incidents(status="resolved")] == ["age"]
        assert store.incidents(model="other") == []
        # a replay writes the same rows again: still two incidents
        store.put([], incidents=listed)
        assert len(store.incidents()) == 2
        assert store.incidents(since=10_000.0, status="resolved") == []
        with pytest.raises(ValueError, match="status"):
            store.incidents(status="closed")


def test_rollups_and_the_tracker_state_are_kept(tmp_path: Path) -> None:
    rollup = RollUp("ctr", "3", 0.0, 60.0, ("age", "price"), {"price": ["drift"]})
    t = IncidentTracker()
    t.apply([alarm(0)], [])
    with AnomalyStore(tmp_path / "s.db") as store:
        assert store.tracker_state() is None
        store.put([], rollups=[rollup, rollup], tracker=t.to_plain())
        (back,) = store.rollups()
        assert back == rollup and back.share == 0.5
        state = store.tracker_state()
    assert state is not None
    assert IncidentTracker.from_plain(t.options, state).to_plain() == t.to_plain()


def test_a_version_1_store_is_migrated_keeping_its_anomalies(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE anomalies (id TEXT PRIMARY KEY, ts REAL NOT NULL, kind TEXT NOT NULL,"
        " detector TEXT NOT NULL, severity TEXT NOT NULL, severity_rank INTEGER NOT NULL,"
        " model TEXT NOT NULL, model_version TEXT NOT NULL, feature TEXT NOT NULL,"
        " window_start REAL NOT NULL, body TEXT NOT NULL);"
        f"PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1;"
    )
    conn.close()
    with AnomalyStore(path) as store:
        store.put([alarm(0)])
        assert store.incidents() == [] and store.count() == 1
    conn = sqlite3.connect(path)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert version == SCHEMA_VERSION == 3
    assert {"incidents", "rollups", "anomalies", "outbox", "label_queue"} <= tables


def test_a_newer_store_is_refused_naming_the_versions(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.executescript(f"PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 4;")
    conn.execute("CREATE TABLE x (y)")
    conn.close()
    with pytest.raises(ValueError, match="schema version 4"):
        AnomalyStore(path)
