"""The labelling tables in the store: a version-2 store gains them (version 3), items keep one row
and a state, answers and resolutions land in one transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from connectors import label_store
from connectors.label_store import HumanLabel
from connectors.store import APPLICATION_ID, AnomalyStore
from detectors.labels.queue import DAY, QueueItem


def item(rid: str, ts: float = 10.0) -> QueueItem:
    return QueueItem(rid, "ctr", "3", ts, "shoes", 0.5, "mid", "why", {"price": 1.0}, 0.2)


def test_a_version_2_store_gains_the_labelling_tables(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    with AnomalyStore(path):
        pass
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TABLE label_queue; DROP TABLE label_answers; DROP TABLE human_labels;"
        f"PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 2;"
    )
    conn.close()
    with AnomalyStore(path) as store:
        assert label_store.enqueue(store, [item("a")]) == 1
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    conn.close()


def test_items_are_queued_once_with_a_state_and_counted_per_day(tmp_path: Path) -> None:
    with AnomalyStore(tmp_path / "s.db") as store:
        assert label_store.enqueue(store, [item("a"), item("b", DAY + 1)]) == 2
        assert label_store.enqueue(store, [item("a")]) == 0  # already there: kept as it was
        assert label_store.used_budget(store) == {("ctr", 0): 1, ("ctr", 1): 1}
        label_store.set_state(store, ["a"], "exported")
        assert [i.request_id for i in label_store.queue(store, "exported")] == ["a"]
        assert label_store.queue(store, "queued")[0] == item("b", DAY + 1)


def test_answers_and_resolutions_move_the_items_state(tmp_path: Path) -> None:
    with AnomalyStore(tmp_path / "s.db") as store:
        label_store.enqueue(store, [item("a"), item("b")])
        answers = {"a": {"r1": "positive", "r2": "positive"}, "b": {"r1": "pos", "r2": "negative"}}
        labels = [
            HumanLabel("a", "ctr", "positive", 1.0, 2, False, "b1"),
            HumanLabel("b", "ctr", None, 0.5, 2, True, "b1"),
        ]
        label_store.put_answers(store, answers, labels)
        assert {i.request_id: i.state for i in label_store.queue(store)} == {
            "a": "labelled",
            "b": "review",
        }
        assert label_store.human_labels(store) == labels[:1]
        assert len(label_store.human_labels(store, resolved_only=False)) == 2
        label_store.set_task_ids(store, {"a": 7})
        assert label_store.task_ids(store) == {"a": 7}
