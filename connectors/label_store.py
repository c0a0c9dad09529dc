"""The labelling queue and the raters' answers in the local store (schema version 3).

    label_queue    one row per record chosen for rating, with its state (detectors/labels/queue.py)
    label_answers  one row per item and rater: what each rater answered, per import batch
    human_labels   one row per item: the resolved label, its agreement, flagged or not

Tables beside the anomalies in the same SQLite file (connectors/store.py runs ``MIGRATION``);
every function takes the store and works inside its lock and one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from connectors.outbox import ENQUEUE, OutboxItem
from detectors.labels.queue import DAY, STATES, QueueItem

LABEL_SCHEMA = """
CREATE TABLE IF NOT EXISTS label_queue (
    request_id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    day INTEGER NOT NULL,
    slice TEXT,
    state TEXT NOT NULL,
    task_id INTEGER,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS label_queue_model_day ON label_queue (model, day);
CREATE INDEX IF NOT EXISTS label_queue_state ON label_queue (state);
CREATE TABLE IF NOT EXISTS label_answers (
    request_id TEXT NOT NULL,
    rater TEXT NOT NULL,
    choice TEXT NOT NULL,
    batch TEXT NOT NULL,
    PRIMARY KEY (request_id, rater)
);
CREATE TABLE IF NOT EXISTS human_labels (
    request_id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    choice TEXT,
    share REAL NOT NULL,
    raters INTEGER NOT NULL,
    flagged INTEGER NOT NULL,
    batch TEXT NOT NULL
);
"""
MIGRATION = LABEL_SCHEMA  # from user_version 2 to 3


class Transacting(Protocol):
    def transaction(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class HumanLabel:
    request_id: str
    model: str
    choice: str | None  # None: a tie, left for review
    share: float  # of the raters who gave the majority choice
    raters: int
    flagged: bool
    batch: str


def enqueue(
    store: Transacting, items: Sequence[QueueItem], outbox: Sequence[OutboxItem] = ()
) -> int:
    """Add chosen records to the queue; one already there keeps its row (and state).
    ``outbox``: their Elasticsearch documents, committed in the same transaction."""
    rows = [
        (i.request_id, i.model, int(i.ts // DAY), i.slice, i.state, _body(i.to_plain()))
        for i in items
    ]
    sql = (
        "INSERT INTO label_queue (request_id, model, day, slice, state, body)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING"
    )
    with store.transaction() as conn:
        before = conn.total_changes
        conn.executemany(sql, rows)
        added = int(conn.total_changes - before)
        if outbox:
            now = time.time()
            conn.executemany(ENQUEUE, [item.row(now) for item in outbox])
        return added


def used_budget(store: Transacting) -> dict[tuple[str, int], int]:
    """Items queued per (model, day): what each day's budget has already spent."""
    with store.transaction() as conn:
        rows = conn.execute("SELECT model, day, COUNT(*) FROM label_queue GROUP BY model, day")
        return {(m, int(d)): int(n) for m, d, n in rows}


def queued_ids(store: Transacting) -> frozenset[str]:
    """The request ids in the queue: a record is chosen once."""
    with store.transaction() as conn:
        return frozenset(r for (r,) in conn.execute("SELECT request_id FROM label_queue"))


def queue(store: Transacting, state: str | None = None) -> list[QueueItem]:
    """Queue items (of one state, or all), oldest first."""
    sql, params = "SELECT body, state FROM label_queue", []
    if state is not None:
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)} (got {state!r})")
        sql += " WHERE state = ?"
        params.append(state)
    with store.transaction() as conn:
        rows = conn.execute(sql + " ORDER BY rowid", params).fetchall()
    return [QueueItem.from_plain({**orjson.loads(body), "state": st}) for body, st in rows]


def set_state(store: Transacting, request_ids: Iterable[str], state: str) -> None:
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)} (got {state!r})")
    with store.transaction() as conn:
        conn.executemany(
            "UPDATE label_queue SET state = ? WHERE request_id = ?",
            [(state, r) for r in request_ids],
        )


def put_answers(
    store: Transacting,
    answers: dict[str, dict[str, str]],
    labels: Sequence[HumanLabel],
) -> None:
    """Keep every rater's answer and each item's resolution of one batch, in one transaction;
    the items' states follow (labelled, or review when flagged)."""
    rows = [
        (rid, rater, choice, labels[0].batch if labels else "")
        for rid, by in answers.items()
        for rater, choice in by.items()
    ]
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO label_answers (request_id, rater, choice, batch) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (request_id, rater) DO UPDATE SET choice = excluded.choice,"
            " batch = excluded.batch",
            rows,
        )
        conn.executemany(
            "INSERT INTO human_labels (request_id, model, choice, share, raters, flagged, batch)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO UPDATE SET"
            " choice = excluded.choice, share = excluded.share, raters = excluded.raters,"
            " flagged = excluded.flagged, batch = excluded.batch",
            [
                (h.request_id, h.model, h.choice, h.share, h.raters, int(h.flagged), h.batch)
                for h in labels
            ],
        )
        conn.executemany(
            "UPDATE label_queue SET state = ? WHERE request_id = ?",
            [("review" if h.flagged else "labelled", h.request_id) for h in labels],
        )


def set_task_ids(store: Transacting, task_ids: dict[str, int]) -> None:
    """Label Studio's task id per request id, as its export told: where to look an item up."""
    with store.transaction() as conn:
        conn.executemany(
            "UPDATE label_queue SET task_id = ? WHERE request_id = ?",
            [(t, r) for r, t in task_ids.items()],
        )


def task_ids(store: Transacting) -> dict[str, int]:
    with store.transaction() as conn:
        rows = conn.execute("SELECT request_id, task_id FROM label_queue WHERE task_id IS NOT NULL")
        return {r: int(t) for r, t in rows}


def human_labels(store: Transacting, *, resolved_only: bool = True) -> list[HumanLabel]:
    sql = "SELECT request_id, model, choice, share, raters, flagged, batch FROM human_labels"
    if resolved_only:
        sql += " WHERE choice IS NOT NULL AND flagged = 0"
    with store.transaction() as conn:
        rows = conn.execute(sql + " ORDER BY request_id").fetchall()
    return [HumanLabel(r, m, c, s, n, bool(f), b) for r, m, c, s, n, f, b in rows]


def _body(plain: dict[str, Any]) -> str:
    return orjson.dumps(plain, option=orjson.OPT_SERIALIZE_NUMPY).decode()
