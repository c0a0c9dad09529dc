"""Kafka -> worker -> Elasticsearch: records with injected changes become anomaly documents,
one per anomaly on the anomalies topic (same ids, no duplicates), indexed by the worker's index
stage against a real node."""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from streams.traffic import Injection
from tests.integration.kafka.conftest import (
    REPO,
    anomalies_on,
    create_topic,
    produce,
    serving_messages,
    wait_until,
)
from tests.integration.kafka.traffic import rows_with_tail
from tools.servers import ServerError, ServerInfo, start_es, stop_es

# Not the elasticsearch suite's run dir: that suite stops and restarts its node.
RUN_DIR = REPO / ".servers" / "es-kafka-tests"


@contextlib.contextmanager
def _own_run_dir() -> Iterator[None]:
    before = os.environ.get("LOGDRIFT_RUN_DIR")
    os.environ["LOGDRIFT_RUN_DIR"] = str(RUN_DIR)
    try:
        yield
    finally:
        if before is None:
            del os.environ["LOGDRIFT_RUN_DIR"]
        else:
            os.environ["LOGDRIFT_RUN_DIR"] = before


@pytest.fixture(scope="module")
def es_url() -> Iterator[str]:
    try:
        with _own_run_dir():
            info = start_es()
    except ServerError as exc:
        pytest.fail(f"could not start a real Elasticsearch node for this test:\n{exc}")
    try:
        yield info.url
    finally:
        with _own_run_dir():
            stop_es()


def indexed(es: Elasticsearch, prefix: str) -> list[dict[str, Any]]:
    index = f"{prefix}-anomalies-*"
    es.indices.refresh(index=index, allow_no_indices=True)
    found = es.search(index=index, size=10_000, query={"match_all": {}})
    return list(found["hits"]["hits"])


def test_worker_indexes_every_anomaly_once(
    kafka: ServerInfo, es_url: str, start_worker: Any, app_id: str
) -> None:
    create_topic(kafka.url, f"{app_id}-serving-logs", 4)
    rows, _ = rows_with_tail(
        6_000, [Injection("mean_shift", 3_000), Injection("category_surge", 3_000)]
    )
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

        def caught_up() -> bool:
            on_topic = {a.id for a in anomalies_on(kafka.url, topic)}
            return {h["_id"] for h in indexed(es, prefix)} == on_topic

        wait_until(caught_up, 60, "every anomaly on the topic indexed")
        hits = indexed(es, prefix)
        on_topic = {a.id for a in anomalies_on(kafka.url, topic)}
        wait_until(lambda: worker.counters().get("indexed", 0) >= len(on_topic), 10, "counted")

        ids = [h["_id"] for h in hits]
        assert max(Counter(ids).values()) == 1
        assert set(ids) == on_topic
        assert {h["_source"]["anomaly"]["id"] for h in hits} == on_topic
        assert {h["_source"]["feature"]["name"] for h in hits} >= {"score", "device"}
        assert worker.counters()["dead_letters"] == 0
    finally:
        es.close()
        worker.stop()
        with contextlib.suppress(Exception):
            cleanup = Elasticsearch(es_url, request_timeout=60)
            cleanup.indices.delete(index=f"{prefix}-*", allow_no_indices=True)
            cleanup.close()
    assert worker.proc.returncode == 0, worker.text()[-3000:]
