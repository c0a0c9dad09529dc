"""The durable outbox: documents waiting for Elasticsearch, in the runner's SQLite store.

The embedded runner writes every anomaly and drift-score document here in the same
transaction as the anomaly itself (``AnomalyStore.put(anomalies, outbox=...)``), before a
forward chunk is acknowledged. A shipper sends pending rows in bulk and marks them shipped only
after Elasticsearch acknowledged them, so an outage grows this table (bounded by disk) instead
of losing documents, and a restarted runner picks up where the last one stopped.

A row Elasticsearch refuses for good (a 4xx such as a mapping error) is marked rejected with
the reason: kept, counted and shown by ``logdrift es status``, never retried blindly and never
dropped silently.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    window_start REAL NOT NULL,
    body BLOB NOT NULL,
    enqueued_at REAL NOT NULL,
    shipped_at REAL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq)
    WHERE shipped_at IS NULL AND error IS NULL;
CREATE INDEX IF NOT EXISTS outbox_shipped ON outbox (shipped_at) WHERE shipped_at IS NOT NULL;
"""

ENQUEUE = (
    "INSERT INTO outbox (target, doc_id, window_start, body, enqueued_at) VALUES (?, ?, ?, ?, ?)"
)
_PENDING = "shipped_at IS NULL AND error IS NULL"


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A document for an index target (``anomalies`` or ``drift-scores``), JSON-encoded."""

    target: str
    doc_id: str
    window_start: float
    body: bytes

    def row(self, now: float) -> tuple[Any, ...]:
        return (self.target, self.doc_id, self.window_start, self.body, now)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    item: OutboxItem
    error: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    pending: int
    shipped: int
    rejected: int


class Transactional(Protocol):
    """What the outbox needs of the store that holds its table (``AnomalyStore`` is one): the
    connection under the store's lock, in one transaction. A protocol, so that this module
    does not import the store, which imports this module's schema."""

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...


class Outbox:
    """Reads and acknowledges the outbox rows of one store."""

    def __init__(self, store: Transactional) -> None:
        self.store = store

    def pending(self, limit: int) -> list[OutboxRow]:
        """The oldest documents not yet acknowledged (and not rejected)."""
        sql = (
            "SELECT seq, target, doc_id, window_start, body FROM outbox"
            f" WHERE {_PENDING} ORDER BY seq LIMIT ?"
        )
        with self.store.transaction() as conn:
            rows = conn.execute(sql, (limit,)).fetchall()
        return [OutboxRow(seq, OutboxItem(t, d, w, bytes(b))) for seq, t, d, w, b in rows]

    def backlog(self) -> int:
        with self.store.transaction() as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM outbox WHERE {_PENDING}").fetchone()[0])

    def mark_shipped(self, seqs: Sequence[int], now: float) -> None:
        with self.store.transaction() as conn:
            conn.executemany(
                "UPDATE outbox SET shipped_at = ? WHERE seq = ?", [(now, s) for s in seqs]
            )

    def mark_rejected(self, rejected: Sequence[tuple[int, str]]) -> None:
        with self.store.transaction() as conn:
            conn.executemany(
                "UPDATE outbox SET error = ? WHERE seq = ?", [(e, s) for s, e in rejected]
            )

    def rejected(self, limit: int = 20) -> list[OutboxRow]:
        sql = (
            "SELECT seq, target, doc_id, window_start, body, error FROM outbox"
            " WHERE error IS NOT NULL ORDER BY seq LIMIT ?"
        )
        with self.store.transaction() as conn:
            rows = conn.execute(sql, (limit,)).fetchall()
        return [OutboxRow(s, OutboxItem(t, d, w, bytes(b)), e) for s, t, d, w, b, e in rows]

    def counts(self) -> OutboxCounts:
        sql = (
            f"SELECT COALESCE(SUM({_PENDING}), 0),"
            " COALESCE(SUM(shipped_at IS NOT NULL), 0),"
            " COALESCE(SUM(error IS NOT NULL), 0) FROM outbox"
        )
        with self.store.transaction() as conn:
            pending, shipped, rejected = conn.execute(sql).fetchone()
        return OutboxCounts(int(pending), int(shipped), int(rejected))

    def prune_shipped(self, before: float) -> int:
        """Forget acknowledged rows shipped before ``before``: the store must not grow forever,
        and Elasticsearch (and the anomalies table) hold them now."""
        with self.store.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM outbox WHERE shipped_at IS NOT NULL AND shipped_at < ?", (before,)
            )
        return int(cur.rowcount)
