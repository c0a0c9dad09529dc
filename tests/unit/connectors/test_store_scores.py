"""The store's window scores (for `logdrift report`): kept per model, feature and window,
re-sent windows overwrite, no raw values, and a store made before the table existed opens."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from connectors.store import APPLICATION_ID, AnomalyStore
from detectors.stats import BinCounts, FeatureWindow
from detectors.window_report import FeatureScore, WindowReport

T0 = 1_795_860_000.0


def report(start: float, skew: float, values: list[float]) -> WindowReport:
    win = FeatureWindow(bins=BinCounts.zero((0.0, 10.0)))
    for x in values:
        win.seen += 1
        win.bins.update(x)  # type: ignore[union-attr]
    win.violate("FLOAT_TYPE_STRING_NOT_FLOAT")
    score = FeatureScore("price", seen=win.seen, valid=len(values), missing_rate=0.0, skew=skew)
    return WindowReport("ctr", "3", start, start + 60, win.seen, 0, [score], [], {"price": win})


def test_scores_round_trip_oldest_first_and_overwrite(tmp_path: Path) -> None:
    with AnomalyStore(tmp_path / "s.db") as store:
        store.put([], reports=[report(T0 + 60, 0.2, [5.0])])
        store.put([], reports=[report(T0, 0.1, [-1.0, 5.0, 12345.6])])
        store.put([], reports=[report(T0, 0.3, [-1.0, 5.0, 12345.6])])  # the same window again
        rows = store.scores(model="ctr")
        assert [(r.start, r.score.skew) for r in rows] == [(T0, 0.3), (T0 + 60, 0.2)]
        first = rows[0]
        assert (first.model, first.model_version, first.end, first.count) == (
            "ctr",
            "3",
            T0 + 60,
            3,
        )
        assert first.window["bins"] == [1, 1, 1]
        assert first.window["violations"] == {"FLOAT_TYPE_STRING_NOT_FLOAT": 1}
        assert store.scores(model="other") == []
        assert [r.start for r in store.scores(limit=1)] == [T0 + 60]  # the newest row
        body = store._fetch("SELECT body FROM scores", [])
        assert "12345.6" not in repr(body)  # counts only: no raw value (min/max) is stored


def test_a_store_made_before_the_scores_table_opens_and_gains_it(tmp_path: Path) -> None:
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
        assert store.scores() == []
        store.put([], reports=[report(T0, 0.1, [1.0])])
        assert len(store.scores()) == 1


def test_a_partial_window_is_kept_as_partial_and_a_rewrite_updates_it(tmp_path: Path) -> None:
    with AnomalyStore(tmp_path / "s.db") as store:
        store.put([], reports=[report(T0, 0.1, [1.0])])
        store.put([], reports=[replace(report(T0 + 60, 0.0, [1.0]), partial=True)])
        assert [(r.start, r.partial) for r in store.scores()] == [(T0, False), (T0 + 60, True)]
        store.put([], reports=[report(T0 + 60, 0.2, [1.0, 2.0])])  # the same window, judged
        assert [r.partial for r in store.scores()] == [False, False]


def test_a_store_whose_scores_predate_partial_gains_the_column_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    with AnomalyStore(path) as store:
        store.put([], reports=[report(T0, 0.1, [1.0])])
    conn = sqlite3.connect(path)  # as a logdrift before `partial` left it
    conn.execute("ALTER TABLE scores DROP COLUMN partial")
    conn.commit()
    conn.close()
    with AnomalyStore(path) as store:
        (old,) = store.scores()
        assert (old.start, old.score.skew, old.partial) == (T0, 0.1, False)
        store.put([], reports=[replace(report(T0 + 60, 0.0, [1.0]), partial=True)])
        assert [r.partial for r in store.scores()] == [False, True]
    with AnomalyStore(path) as store:  # opening again changes nothing
        assert [r.partial for r in store.scores()] == [False, True]
