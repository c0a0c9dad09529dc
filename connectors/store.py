"""The embedded runner's local anomaly store: one SQLite file, no server.

Anomalies are upserted by their deterministic id, so a re-delivered anomaly overwrites
instead of duplicating (DESIGN section 5). Records that could not be decoded are kept
as dead letters with their reason, and a small key/value table holds runner state.

The file is in WAL mode so a second process (the CLI listing anomalies) can read while
the runner writes. One writing process is expected; within it, a lock serialises the
threads that share the connection.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from connectors.incident_store import (
    INCIDENT_SCHEMA,
    MIGRATIONS,
    UPSERT_INCIDENT,
    UPSERT_ROLLUP,
    incident_row,
    incidents_query,
    rollup_row,
    rollups_query,
)
from connectors.label_store import LABEL_SCHEMA
from connectors.label_store import MIGRATION as LABEL_MIGRATION
from connectors.outbox import ENQUEUE, OUTBOX_SCHEMA, OutboxItem
from detectors.anomaly import SEVERITIES, Anomaly
from detectors.incidents.rollups import RollUp
from detectors.incidents.tracker import Incident
from detectors.report.data import window_summary
from detectors.window_report import FeatureScore, WindowReport

# Marks the file as ours (PRAGMA application_id) and versions its schema (user_version).
APPLICATION_ID = 0x4C44_5354  # "LDST"
SCHEMA_VERSION = 3  # 2: incidents and window roll-ups; 3: labelling (connectors/label_store.py)
_MIGRATIONS = {**MIGRATIONS, 2: LABEL_MIGRATION}
TRACKER_META = "incident_tracker"  # the runner's incident state, plain JSON, in meta
DROPPED_META = "dead_letters_dropped"  # dropped by the bounds, over the store's life
AGE_CHECK_SECONDS = 1.0  # the dead letters' age bound is applied at most this often
# Ranks are stored with each anomaly: "low" stays 0 as in files written before "info" (-1)
# existed, so no stored row needs rewriting and an older logdrift reads the file the same.
SEVERITY_RANK = {name: rank - SEVERITIES.index("low") for rank, name in enumerate(SEVERITIES)}

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS anomalies (
    id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    detector TEXT NOT NULL,
    severity TEXT NOT NULL,
    severity_rank INTEGER NOT NULL,
    model TEXT NOT NULL,
    model_version TEXT NOT NULL,
    feature TEXT NOT NULL,
    window_start REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS anomalies_ts ON anomalies (ts);
CREATE INDEX IF NOT EXISTS anomalies_model_feature ON anomalies (model, feature);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    raw BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_reason ON dead_letters (reason);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scores (
    model TEXT NOT NULL,
    model_version TEXT NOT NULL,
    feature TEXT NOT NULL,
    window_start REAL NOT NULL,
    window_end REAL NOT NULL,
    body TEXT NOT NULL,
    partial INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (model, model_version, feature, window_start)
);
CREATE INDEX IF NOT EXISTS scores_end ON scores (window_end);
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""

# One row per model, feature and window, anomaly or not: the score and the window's counts
# (bins and categories, no raw values), for `logdrift report`. Added without a version bump:
# opening an older store creates the table, and an older logdrift ignores it. ``partial``
# (judged at shutdown on fewer than min_count records) came later: opening a store without it
# adds the column, its rows reading as full windows (the fact was not kept); an older logdrift
# writes rows without it, and they read the same way.
_UPSERT_SCORE = """
INSERT INTO scores (model, model_version, feature, window_start, window_end, body, partial)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (model, model_version, feature, window_start) DO UPDATE SET
    window_end = excluded.window_end, body = excluded.body, partial = excluded.partial
"""

_GET_META = "SELECT COALESCE(MAX(value), 0) FROM meta WHERE key = ?"
_SET_META = (
    "INSERT INTO meta (key, value) VALUES (?, ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)

_UPSERT = """
INSERT INTO anomalies (id, ts, kind, detector, severity, severity_rank, model,
                       model_version, feature, window_start, body)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    ts = excluded.ts, kind = excluded.kind, detector = excluded.detector,
    severity = excluded.severity, severity_rank = excluded.severity_rank,
    model = excluded.model, model_version = excluded.model_version,
    feature = excluded.feature, window_start = excluded.window_start, body = excluded.body
"""


@dataclass(frozen=True, slots=True)
class StoredScore:
    """One feature's score in one closed window, with the window's counts."""

    model: str
    model_version: str
    start: float
    end: float
    count: int
    score: FeatureScore
    window: dict[str, Any]
    partial: bool = False  # judged at shutdown on fewer than min_count records


@dataclass(frozen=True, slots=True)
class DeadLetterBounds:
    max_count: int = 100_000
    max_age_seconds: float = 30 * 86_400.0

    def __post_init__(self) -> None:
        if self.max_count < 1:
            raise ValueError(f"dead letters max_count must be at least 1, got {self.max_count}")
        if not self.max_age_seconds > 0:
            raise ValueError(f"max_age_seconds must be positive, got {self.max_age_seconds}")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be decoded, kept with why and where it came from."""

    ts: float
    reason: str
    source: str
    raw: bytes


class AnomalyStore:
    """Anomalies, dead letters and runner metadata in one local SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._dead_bounds: DeadLetterBounds | None = None
        self._aged_at = -math.inf
        self._trimmed_to = 0
        self.dropped_dead_letters = 0  # by this process (the metric); meta keeps the total
        # check_same_thread=False: the runner may write from a worker thread; self._lock
        # keeps one statement sequence at a time on the shared connection.
        self._conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False)
        try:
            self._check_and_create_schema()
        except (sqlite3.DatabaseError, ValueError):
            self._conn.close()
            raise

    def put(
        self,
        anomalies: Sequence[Anomaly],
        outbox: Sequence[OutboxItem] = (),
        reports: Sequence[WindowReport] = (),
        incidents: Sequence[Incident] = (),
        rollups: Sequence[RollUp] = (),
        tracker: dict[str, Any] | None = None,
    ) -> int:
        """Upsert by id in one transaction; returns how many anomalies were written. ``outbox``:
        documents for Elasticsearch, committed in the same transaction (connectors/outbox.py);
        ``reports``: closed windows whose scores are kept for `logdrift report`; ``incidents``
        and ``rollups`` upserted by id; ``tracker``: the incident tracker's plain state, kept so
        a restarted runner goes on with the incidents it left open."""
        rows = [_anomaly_row(a) for a in anomalies]
        scores = [row for r in reports for row in _score_rows(r)]
        now = time.time()
        with self._lock, self._conn:
            self._conn.executemany(_UPSERT, rows)
            self._conn.executemany(ENQUEUE, [item.row(now) for item in outbox])
            self._conn.executemany(_UPSERT_SCORE, scores)
            self._conn.executemany(UPSERT_INCIDENT, [incident_row(i) for i in incidents])
            self._conn.executemany(UPSERT_ROLLUP, [rollup_row(r) for r in rollups])
            if tracker is not None:
                self._conn.execute(_SET_META, (TRACKER_META, orjson.dumps(tracker).decode()))
        return len(rows)

    def incidents(
        self,
        *,
        model: str | None = None,
        status: str | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[Incident]:
        """Incidents (``status`` open or resolved; None: both) last seen at or after ``since``
        (open ones whatever their age), open first, then the most recently seen."""
        sql, params = incidents_query(model, status, since)
        rows = self._fetch(sql + _limit_clause(limit, params), params)
        return [Incident.from_plain(orjson.loads(body)) for (body,) in rows]

    def rollups(self, *, model: str | None = None, limit: int | None = None) -> list[RollUp]:
        """Window roll-ups, newest window first."""
        sql, params = rollups_query(model)
        rows = self._fetch(sql + _limit_clause(limit, params), params)
        return [RollUp.from_plain(orjson.loads(body)) for (body,) in rows]

    def tracker_state(self) -> dict[str, Any] | None:
        raw = self.get_meta(TRACKER_META)
        return None if raw is None else dict(orjson.loads(raw))

    def scores(self, *, model: str | None = None, limit: int | None = None) -> list[StoredScore]:
        """Window scores, oldest window first; ``limit`` keeps the newest windows' rows."""
        params: list[Any] = []
        sql = "SELECT model, model_version, window_start, window_end, body, partial FROM scores"
        if model is not None:
            sql += " WHERE model = ?"
            params.append(model)
        sql += " ORDER BY window_end DESC, feature" + _limit_clause(limit, params)
        found = []
        for name, version, start, end, body, partial in reversed(self._fetch(sql, params)):
            data = orjson.loads(body)
            score = FeatureScore(**data["score"])
            count = int(data["count"])
            found.append(
                StoredScore(name, version, start, end, count, score, data["window"], bool(partial))
            )
        return found

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the store's lock, inside one transaction: for companion tables
        (the outbox) that live in this file."""
        with self._lock, self._conn:
            yield self._conn

    def query(
        self,
        *,
        model: str | None = None,
        feature: str | None = None,
        kind: str | None = None,
        min_severity: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[Anomaly]:
        """Anomalies matching every given filter, oldest first.

        ``since`` is inclusive and ``until`` exclusive (timestamps in epoch seconds), so
        consecutive windows never return an anomaly twice; ``limit`` keeps the oldest.
        """
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("model", model), ("feature", feature), ("kind", kind)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if min_severity is not None:
            clauses.append("severity_rank >= ?")
            params.append(_severity_rank(min_severity, "min_severity"))
        if since is not None:
            clauses.append("ts >= ?")
            params.append(since)
        if until is not None:
            clauses.append("ts < ?")
            params.append(until)
        sql = "SELECT body FROM anomalies"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY ts, id" + _limit_clause(limit, params)
        rows = self._fetch(sql, params)
        return [Anomaly.from_dict(orjson.loads(body)) for (body,) in rows]

    def count(self) -> int:
        return int(self._fetch("SELECT COUNT(*) FROM anomalies", [])[0][0])

    def put_dead_letter(self, *, reason: str, raw: bytes, source: str, ts: float) -> None:
        """Keep an undecodable record; it is counted, never dropped silently."""
        self.put_dead_letters([DeadLetter(ts=ts, reason=reason, source=source, raw=raw)])

    def bound_dead_letters(self, bounds: DeadLetterBounds) -> None:
        """Keep at most ``bounds.max_count`` dead letters, none older (by arrival) than
        ``bounds.max_age_seconds``; applied at every write and now."""
        self._dead_bounds = bounds
        with self._lock, self._conn:
            self._trim_dead_letters(time.time())

    def dead_letters_dropped(self) -> int:
        """How many dead letters the bounds have dropped, over the store's life."""
        return int(self.get_meta(DROPPED_META) or 0)

    def _trim_dead_letters(self, now: float) -> None:
        bounds = self._dead_bounds
        if bounds is None:
            return
        # Rows arrive in seq order, so both bounds cut a prefix of seq: rowid range deletes.
        newest = self._conn.execute("SELECT MAX(seq) FROM dead_letters").fetchone()[0] or 0
        cut = newest - bounds.max_count
        if now - self._aged_at >= AGE_CHECK_SECONDS:  # the age bound needs an index lookup
            self._aged_at = now
            row = self._conn.execute(
                "SELECT MAX(seq) FROM dead_letters WHERE received < ?",
                (now - bounds.max_age_seconds,),
            ).fetchone()
            cut = max(cut, row[0] or 0)
        if cut <= self._trimmed_to:
            return
        dropped = self._conn.execute("DELETE FROM dead_letters WHERE seq <= ?", (cut,)).rowcount
        self._trimmed_to = cut
        if dropped:
            total = int(self._conn.execute(_GET_META, (DROPPED_META,)).fetchone()[0] or 0)
            self._conn.execute(_SET_META, (DROPPED_META, str(total + dropped)))
            self.dropped_dead_letters += dropped

    def put_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Keep many undecodable records in one transaction (a poisoned frame's bad entries cost
        one commit, not one each). Past the bounds (``bound_dead_letters``) the oldest go first,
        counted in meta."""
        sql = "INSERT INTO dead_letters (ts, reason, source, raw, received) VALUES (?, ?, ?, ?, ?)"
        now = time.time()
        rows = [(d.ts, d.reason, d.source, bytes(d.raw), now) for d in letters]
        with self._lock, self._conn:
            self._conn.executemany(sql, rows)
            self._trim_dead_letters(now)

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """Dead letters in the order they arrived; ``limit`` keeps the oldest."""
        return list(self.iter_dead_letters(limit))

    def iter_dead_letters(self, limit: int | None = None, page: int = 200) -> Iterator[DeadLetter]:
        """Dead letters in the order they arrived, read a page at a time: memory is bounded by
        the page, however many the store holds."""
        after, left = 0, limit
        while left is None or left > 0:
            size = page if left is None else min(page, left)
            rows = self._fetch(
                "SELECT seq, ts, reason, source, raw FROM dead_letters WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                [after, size],
            )
            for seq, ts, reason, source, raw in rows:
                after = seq
                yield DeadLetter(ts, reason, source, bytes(raw))
            if left is not None:
                left -= len(rows)
            if len(rows) < size:
                return

    def dead_letter_counts(self) -> dict[str, int]:
        """How many dead letters there are for each reason."""
        sql = "SELECT reason, COUNT(*) FROM dead_letters GROUP BY reason ORDER BY reason"
        return {reason: int(n) for reason, n in self._fetch(sql, [])}

    def set_meta(self, key: str, value: str) -> None:
        with self._lock, self._conn:
            self._conn.execute(_SET_META, (key, value))

    def get_meta(self, key: str) -> str | None:
        rows = self._fetch("SELECT value FROM meta WHERE key = ?", [key])
        return str(rows[0][0]) if rows else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> AnomalyStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _check_and_create_schema(self) -> None:
        """Refuse a file that is not ours before writing a byte into it."""
        not_ours = f"{self.path} is not a logdrift anomaly store"
        try:
            app_id = self._conn.execute("PRAGMA application_id").fetchone()[0]
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            tables = self._conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as exc:  # "file is not a database"
            raise ValueError(f"{not_ours} ({exc})") from exc
        if app_id != APPLICATION_ID and (app_id != 0 or tables != 0):
            raise ValueError(f"{not_ours} (it is another SQLite database)")
        if version > SCHEMA_VERSION:
            raise ValueError(
                f"{self.path} has store schema version {version}; this logdrift reads "
                f"up to {SCHEMA_VERSION}, upgrade logdrift to open it"
            )
        # WAL lets readers in other processes work while the runner writes; NORMAL is
        # durable across application crashes, which is what a local store needs.
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        for old in range(max(version, 1), SCHEMA_VERSION):  # an empty file is created whole
            if tables:
                self._conn.executescript(_MIGRATIONS[old] + f"PRAGMA user_version = {old + 1};")
        self._conn.executescript(_SCHEMA + OUTBOX_SCHEMA + INCIDENT_SCHEMA + LABEL_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Additive changes that came without a version bump, each safe to run again if a crash
        stopped it halfway."""
        dead = {row[1] for row in self._conn.execute("PRAGMA table_info(dead_letters)")}
        if "received" not in dead:  # arrival time, for the age bound (NULL: before it existed)
            with self._conn:
                self._conn.execute("ALTER TABLE dead_letters ADD COLUMN received REAL")
        self._conn.execute(
            "CREATE INDEX IF NOT EXISTS dead_letters_received ON dead_letters (received)"
        )
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(scores)")}
        if "partial" not in columns:
            with self._conn:
                self._conn.execute(
                    "ALTER TABLE scores ADD COLUMN partial INTEGER NOT NULL DEFAULT 0"
                )


def _score_rows(report: WindowReport) -> list[tuple[Any, ...]]:
    rows = []
    for score in report.scores:
        win = report.windows.get(score.feature)
        body = {
            "count": report.count,
            "score": asdict(score),
            "window": window_summary(win) if win is not None else {},
        }
        row = (report.model, report.version, score.feature, report.start, report.end)
        rows.append((*row, orjson.dumps(body).decode(), int(report.partial)))
    return rows


def _anomaly_row(a: Anomaly) -> tuple[Any, ...]:
    body = orjson.dumps(a.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY).decode()
    rank = _severity_rank(a.severity, f"anomaly {a.id} severity")
    return (
        a.id,
        a.timestamp,
        a.kind,
        a.detector,
        a.severity,
        rank,
        a.model,
        a.model_version,
        a.feature,
        a.window_start,
        body,
    )


def _severity_rank(severity: str, what: str) -> int:
    try:
        return SEVERITY_RANK[severity]
    except KeyError:
        raise ValueError(
            f"{what} must be one of {', '.join(SEVERITIES)} (got {severity!r})"
        ) from None


def _limit_clause(limit: int | None, params: list[Any]) -> str:
    if limit is None:
        return ""
    if limit < 0:
        raise ValueError(f"limit must be >= 0 (got {limit})")
    params.append(limit)
    return " LIMIT ?"
