"""End to end on a real node: the real fluent-logger client -> `logdrift run` (Elasticsearch
configured) -> documents in Elasticsearch, the same anomalies the local store holds, and a drift
score for every feature of every window, anomaly or not."""

from __future__ import annotations

import re
import time
from pathlib import Path

import orjson
from elasticsearch import Elasticsearch

from connectors.outbox import Outbox, OutboxItem, OutboxRow
from connectors.store import AnomalyStore
from streams.simulation.demo import send
from streams.simulation.traffic import Injection, serving_records
from tests.integration.conftest import free_port
from tests.integration.elasticsearch.conftest import search_all
from tests.integration.patience import bound

RATE = 100.0
START = 1_795_860_000.0
API_KEY = "ZTJlLXRlc3Q6dGhpcy1rZXktbXVzdC1uZXZlci1iZS1wcmludGVk"
FEATURES = 7  # price, age, score, country, device, is_returning, and the prediction


def test_anomalies_and_drift_scores_reach_elasticsearch_exactly_as_stored(
    start_es_runner, es: Elasticsearch, prefix: str
) -> None:
    runner = start_es_runner(  # a stop ships what is left within the drain time: ample here
        prefix,
        "--window-seconds",
        "10",
        "--min-count",
        "200",
        api_key=API_KEY,
        shutdown_drain_seconds="60",
    )
    injections = [Injection(s, 3_000) for s in ("category_surge", "mean_shift", "schema_break")]
    records = list(serving_records(6_000, rate=RATE, start=START, injections=injections))
    send(records, "127.0.0.1", runner.port, realtime=False, rate=RATE)
    output = runner.stop()

    with AnomalyStore(runner.store) as store:
        stored = {a.id: a for a in store.query()}
        counts = Outbox(store).counts()
        score_ids = {r.item.doc_id for r in _all_rows(store) if r.item.target == "drift-scores"}
    assert {a.feature for a in stored.values()} >= {"device", "score", "age"}
    assert any(a.kind == "schema_skew" for a in stored.values())

    anomalies = search_all(es, f"{prefix}-anomalies")
    assert len(anomalies) == len(stored), "each anomaly indexed once"
    for hit in anomalies:
        assert hit["_index"] == f"{prefix}-anomalies-2026.11.28"
        assert hit["_source"] == orjson.loads(orjson.dumps(stored[hit["_id"]].to_document()))

    windows = int(re.findall(r"([\d,]+) windows", output)[-1])
    scores = search_all(es, f"{prefix}-drift-scores")
    assert windows == 6
    assert len(scores) == windows * FEATURES
    assert {h["_id"] for h in scores} == score_ids
    quiet = [h for h in scores if h["_source"]["anomalies"]["count"] == 0]
    assert quiet, "unflagged features are written too"

    with AnomalyStore(runner.store) as store:
        incidents = {i.id: i for i in store.incidents(since=0.0)}
        rows = _all_rows(store)
    indexed = {h["_id"]: h["_source"] for h in search_all(es, f"{prefix}-incidents")}
    assert set(indexed) == set(incidents) and incidents, "each incident once, its last version"
    for doc_id, doc in indexed.items():
        assert doc["incident"]["count"] == incidents[doc_id].count
    assert len(search_all(es, f"{prefix}-rollups")) == windows  # one per closed window
    incident_rows = [r for r in rows if r.item.target in ("incidents", "rollups")]
    assert (counts.pending, counts.rejected) == (0, 0)
    assert counts.shipped == len(stored) + len(scores) + len(incident_rows)
    assert f"{counts.shipped} shipped, 0 rejected, 0 left in the outbox" in output
    assert API_KEY not in output


def _all_rows(store: AnomalyStore) -> list[OutboxRow]:
    """Every outbox row, shipped or not (the test's own look into the table)."""
    with store.transaction() as conn:
        rows = conn.execute("SELECT seq, target, doc_id, window_start, body FROM outbox").fetchall()
    return [OutboxRow(s, OutboxItem(t, d, w, bytes(b))) for s, t, d, w, b in rows]


def test_documents_left_by_a_runner_that_could_not_reach_elasticsearch_ship_at_the_next_start(
    start_es_runner, es: Elasticsearch, prefix: str
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    first = start_es_runner(
        prefix, "--window-seconds", "10", url=nowhere, shutdown_drain_seconds="1"
    )
    injections = [Injection("category_surge", 2_000)]
    records = list(serving_records(4_000, rate=RATE, start=START, injections=injections))
    send(records, "127.0.0.1", first.port, realtime=False, rate=RATE)
    output = first.stop()
    with AnomalyStore(first.store) as store:
        left = Outbox(store).counts().pending
        stored = {a.id for a in store.query()}
    assert stored and left > len(stored)
    assert f"{left} left in the outbox (they ship at the next start)" in output

    second = start_es_runner(prefix, "--window-seconds", "10")  # same store, node reachable
    deadline = time.monotonic() + bound(60)
    while time.monotonic() < deadline and _backlog(second.store):
        time.sleep(0.25)
    second.stop()
    assert _backlog(second.store) == 0
    assert {h["_id"] for h in search_all(es, f"{prefix}-anomalies")} == stored
    with AnomalyStore(second.store) as store:
        incident_rows = [r for r in _all_rows(store) if r.item.target in ("incidents", "rollups")]
        incidents = {i.id for i in store.incidents(since=0.0)}
    assert {h["_id"] for h in search_all(es, f"{prefix}-incidents")} == incidents
    scores = left - len(stored) - len(incident_rows)
    assert len(search_all(es, f"{prefix}-drift-scores")) == scores


def _backlog(path: Path) -> int:
    with AnomalyStore(path) as store:
        return Outbox(store).backlog()
