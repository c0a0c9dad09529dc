"""Kafka -> worker -> Elasticsearch: records with injected changes become anomaly documents,
one per anomaly on the anomalies topic (same ids, no duplicates), and every closed window of
every feature a drift-score document (the embedded runner's, same id), indexed by the worker's
index stage against a real node."""

from __future__ import annotations

import contextlib
import re
import time
from collections import Counter
from typing import Any

import orjson
import pytest
from elasticsearch import Elasticsearch

from connectors.es_documents import score_documents, window_start_of
from connectors.es_incidents import incident_document
from detectors.baseline.reference import Baseline
from streams.simulation.traffic import Injection
from tests.integration.kafka.conftest import (
    anomalies_on,
    create_topic,
    engine_run,
    es_run_dir,
    incidents_on,
    produce,
    scores_indexed,
    search_all,
    serving_messages,
    wait_until,
)
from tests.integration.kafka.traffic import rows_with_tail
from tests.integration.patience import bound
from tools.servers import ServerError, ServerInfo, start_es, stop_es


def indexed(es: Elasticsearch, prefix: str) -> list[dict[str, Any]]:
    return search_all(es, f"{prefix}-anomalies-*")


def settled(
    es: Elasticsearch, prefix: str, on_topic: Any, timeout: float = 90, quiet: float = 5
) -> tuple[list[dict[str, Any]], set[str]]:
    """Hits and topic ids once Elasticsearch holds exactly the topic's anomalies and the topic
    has not changed for ``quiet`` seconds (stage two may still be raising anomalies after the
    last record was counted, so one equal snapshot is not the end)."""
    deadline = time.monotonic() + bound(timeout)
    last: set[str] | None = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        ids = on_topic()
        hits = indexed(es, prefix)
        if ids != last:
            last, since = ids, time.monotonic()
        elif ids and {h["_id"] for h in hits} == ids and time.monotonic() - since >= quiet:
            return hits, ids
        time.sleep(1)
    raise AssertionError(f"timed out after {bound(timeout)} s waiting for every anomaly indexed")


def test_worker_indexes_every_anomaly_once_and_the_engines_drift_scores(
    kafka: ServerInfo, es_url: str, start_worker: Any, app_id: str, ctr_baseline: Baseline
) -> None:
    create_topic(kafka.url, f"{app_id}-serving-logs", 4)
    rows, tail_start = rows_with_tail(
        6_000, [Injection("mean_shift", 3_000), Injection("category_surge", 3_000)]
    )
    engine_scores = {  # as Elasticsearch gives them back: JSON
        doc_id: orjson.loads(orjson.dumps(doc))
        for report in engine_run(ctr_baseline, rows).reports
        for doc_id, doc in score_documents(report)
    }
    closed = {i for i, d in engine_scores.items() if window_start_of(d) < tail_start}
    assert len(closed) >= 7 * 3  # every feature of the real records' windows
    prefix = app_id  # lowercase letters and digits: a valid index prefix
    worker = start_worker(
        app_id,
        LOGDRIFT_ELASTICSEARCH__URL=es_url,
        LOGDRIFT_ELASTICSEARCH__INDEX_PREFIX=prefix,
    )
    worker.wait_for(rf"ready: assigned .*{app_id}-anomalies/3", timeout=120)
    produce(kafka.url, f"{app_id}-serving-logs", serving_messages(rows))

    es = Elasticsearch(es_url, request_timeout=60)
    try:
        wait_until(lambda: worker.counters().get("records") == len(rows), 120, "every record")
        topic = f"{app_id}-anomalies"
        wait_until(lambda: bool(anomalies_on(kafka.url, topic)), 60, "anomalies on the topic")

        hits, on_topic = settled(es, prefix, lambda: {a.id for a in anomalies_on(kafka.url, topic)})
        wait_until(lambda: worker.counters().get("indexed", 0) >= len(on_topic), 10, "counted")

        ids = [h["_id"] for h in hits]
        assert max(Counter(ids).values()) == 1
        assert set(ids) == on_topic
        assert {h["_source"]["anomaly"]["id"] for h in hits} == on_topic
        assert {h["_source"]["feature"]["name"] for h in hits} >= {"score", "device"}

        # Every closed window of every feature: the embedded runner's document, same id.
        wait_until(lambda: closed <= set(scores_indexed(es, prefix)), 60, "drift scores")
        scores = scores_indexed(es, prefix)
        assert set(scores) <= set(engine_scores)
        assert all(doc == engine_scores[i] for i, doc in scores.items())
        flagged = {d["feature"]["name"] for d in scores.values() if d["anomalies"]["count"]}
        assert flagged == {"score", "device"}
        wait_until(
            lambda: worker.counters().get("scores_indexed", 0) >= len(closed), 10, "scores counted"
        )

        # Incidents: the newest version of each one on the topic is the indexed document.
        def newest() -> dict[str, Any]:
            found = incidents_on(kafka.url, f"{app_id}-incidents")
            return {i: orjson.loads(orjson.dumps(incident_document(v))) for i, v in found.items()}

        def incidents_indexed() -> dict[str, Any]:
            return {h["_id"]: h["_source"] for h in search_all(es, f"{prefix}-incidents")}

        wait_until(lambda: bool(newest()) and incidents_indexed() == newest(), 90, "incidents")
        assert {d["feature"]["name"] for d in incidents_indexed().values()} >= {"score", "device"}
        assert len(incidents_indexed()) < len(on_topic)  # pages few, evidence many
        assert worker.counters()["dead_letters"] == 0
    finally:
        es.close()
        worker.stop()
        with contextlib.suppress(Exception):
            cleanup = Elasticsearch(es_url, request_timeout=60)
            cleanup.indices.delete(index=f"{prefix}-*", allow_no_indices=True)
            cleanup.close()
    assert worker.proc.returncode == 0, worker.text()[-3000:]


OUTAGE = 60.0  # seconds the node stays down


def test_worker_rides_out_a_minute_without_elasticsearch(
    kafka: ServerInfo,
    es_url: str,
    start_worker: Any,
    app_id: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 4's outage on the worker path: the node stops (data kept) after the first
    anomalies are indexed, more are raised while it is down, it comes back on the same port;
    every anomaly on the topic ends up indexed exactly once and the worker never stops."""
    create_topic(kafka.url, f"{app_id}-serving-logs", 4)
    rows, _ = rows_with_tail(
        6_000, [Injection("mean_shift", 1_500), Injection("category_surge", 4_500)]
    )
    first, second = rows[:3_000], rows[3_000:]
    prefix = app_id
    topic = f"{app_id}-anomalies"
    worker = start_worker(
        app_id,
        LOGDRIFT_ELASTICSEARCH__URL=es_url,
        LOGDRIFT_ELASTICSEARCH__INDEX_PREFIX=prefix,
        LOGDRIFT_ELASTICSEARCH__MAX_RETRIES="1",
        LOGDRIFT_ELASTICSEARCH__BACKOFF_MAX="2",
        LOGDRIFT_ELASTICSEARCH__BACKLOG_LOG_SECONDS="2",
    )
    worker.wait_for(rf"ready: assigned .*{app_id}-anomalies/3", timeout=120)

    def on_topic() -> set[str]:
        return {a.id for a in anomalies_on(kafka.url, topic)}

    def ids_indexed() -> set[str]:
        return {h["_id"] for h in indexed(es, prefix)}

    def alive() -> bool:
        assert worker.proc.poll() is None, f"the worker died:\n{worker.text()[-5000:]}"
        return True

    es = Elasticsearch(es_url, request_timeout=60)
    stopped = False
    try:
        produce(kafka.url, f"{app_id}-serving-logs", serving_messages(first))
        wait_until(lambda: bool(on_topic()), 90, "anomalies of the first half")
        wait_until(lambda: alive() and ids_indexed() == on_topic(), 60, "first half indexed")
        before_outage = on_topic()

        log_at_stop = len(worker.text())
        stopped_at = time.monotonic()
        with es_run_dir():
            stop_es(keep_data=True)
        stopped = True
        produce(kafka.url, f"{app_id}-serving-logs", serving_messages(second))
        wait_until(
            lambda: alive() and worker.counters().get("records") == len(rows), 60, "every record"
        )
        # Stage two judges the second half after stage one counted it: on a busy machine that
        # can take longer than the outage, so the node stays down until it has raised some.
        wait_until(lambda: alive() and on_topic() - before_outage, 120, "anomalies while down")
        while time.monotonic() - stopped_at < OUTAGE:  # at least this long down: a minimum
            alive()
            time.sleep(0.5)
        raised_during = on_topic() - before_outage
        outage_log = worker.text()[log_at_stop:]
        restarting_at = time.monotonic()
        with es_run_dir():
            info = start_es(reuse=True)
        stopped = False
        up_at = time.monotonic()
        assert info.url == es_url, "restarted on another port"

        wait_until(lambda: alive() and ids_indexed() == on_topic(), 90, "the backlog indexed")
        drained_at = time.monotonic()
        hits, all_ids = settled(es, prefix, on_topic)
        wait_until(lambda: worker.counters().get("indexed", 0) >= len(all_ids), 10, "counted")

        assert raised_during, "anomalies were raised while the node was down"
        ids = [h["_id"] for h in hits]
        assert len(ids) == len(set(ids)) == len(all_ids)  # each one exactly once
        assert set(ids) == all_ids
        assert {h["_source"]["anomaly"]["id"] for h in hits} == all_ids
        count = es.count(index=f"{prefix}-anomalies-*")["count"]
        assert count == len(all_ids)
        backlog = re.findall(
            r"elasticsearch: backlog of (\d+) documents not yet acknowledged", outage_log
        )
        assert len(backlog) >= 5, outage_log[-3000:]
        assert worker.counters()["dead_letters"] == 0
        alive()
    finally:
        if stopped:
            with es_run_dir(), contextlib.suppress(ServerError):
                start_es(reuse=True)
        es.close()
        worker.stop()
        with contextlib.suppress(Exception):
            cleanup = Elasticsearch(es_url, request_timeout=60)
            cleanup.indices.delete(index=f"{prefix}-*", allow_no_indices=True)
            cleanup.close()
    assert worker.proc.returncode == 0, worker.text()[-3000:]
    with capsys.disabled():
        print(
            f"\n[worker outage] node down {up_at - stopped_at:.0f} s"
            f" (restart took {up_at - restarting_at:.0f} s); {len(all_ids)} anomalies"
            f" ({len(before_outage)} before, {len(raised_during)} raised during the outage);"
            f" {len(backlog)} backlog lines (largest {max(map(int, backlog))});"
            f" drained {drained_at - up_at:.1f} s after the node was back"
        )
