"""On a real node: re-delivery overwrites, the worker's index stage waits for the ack however
long the node is away, and no secret ever reaches a log line."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch

from config.settings import ElasticsearchSettings
from connectors.elasticsearch import ElasticSink, RetryPolicy
from connectors.es_documents import IndexNames
from tests.elastic_samples import START, anomaly, report
from tests.integration.conftest import free_port
from tests.integration.elasticsearch.conftest import Node, search_all
from tests.integration.patience import bound

FAST = RetryPolicy(max_retries=2, initial=0.1, maximum=0.5, log_every=0.5)
API_KEY = "bG9nZHJpZnQtdGVzdDpzdXBlci1zZWNyZXQtYXBpLWtleQ=="
PASSWORD = "pa55-word-that-must-not-be-logged"


def some_anomalies(n: int = 12) -> list[dict[str, object]]:
    return [
        anomaly(window_start=START + 60 * (i // 3), feature=f"f{i % 3}").to_document()
        for i in range(n)
    ]


@pytest.fixture
async def sink(es_node: Node, prefix: str) -> AsyncIterator[ElasticSink]:
    s = ElasticSink(AsyncElasticsearch(es_node.url), IndexNames(prefix), FAST)
    yield s
    await s.close()


async def test_replaying_the_same_anomalies_creates_no_duplicates(
    sink: ElasticSink, es: Elasticsearch, prefix: str
) -> None:
    docs = some_anomalies()
    assert await sink.index_anomalies(docs) == []
    assert await sink.index_anomalies(docs) == []  # the whole batch again
    assert await sink.index_anomalies(docs[3:5]) == []  # and a part of it
    hits = search_all(es, f"{prefix}-anomalies")
    assert len(hits) == len(docs)
    assert sorted(h["_id"] for h in hits) == sorted(d["anomaly"]["id"] for d in docs)  # type: ignore[index]
    assert {h["_id"]: h["_version"] for h in hits}[docs[3]["anomaly"]["id"]] == 3  # type: ignore[index]
    assert all(h["_source"] in docs for h in hits)


async def test_drift_scores_of_a_window_sent_twice_are_one_document_per_feature(
    sink: ElasticSink, es: Elasticsearch, prefix: str
) -> None:
    reports = [report(START), report(START + 60)]
    assert await sink.index_drift_scores(reports) == []
    assert await sink.index_drift_scores(reports[1:]) == []
    hits = search_all(es, f"{prefix}-drift-scores")
    assert len(hits) == 2 * len(reports[0].scores)
    assert {h["_source"]["feature"]["name"] for h in hits} == {"price", "device", "age"}


async def test_the_index_stage_returns_rejections_for_the_worker_to_dead_letter(
    sink: ElasticSink, es: Elasticsearch, prefix: str
) -> None:
    docs = some_anomalies(3)
    broken = {**docs[1], "unexpected": {"field": 1}}
    rejected = await sink.index_anomalies([docs[0], broken, docs[2]])
    assert [r.doc.doc_id for r in rejected] == [broken["anomaly"]["id"]]  # type: ignore[index]
    assert len(search_all(es, f"{prefix}-anomalies")) == 2


async def _proxy(listen_port: int, target_port: int) -> asyncio.Server:
    """A TCP relay to the node: how "the node is back" looks from the client's side."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return await asyncio.start_server(relay, "127.0.0.1", listen_port)


async def test_the_index_stage_waits_for_an_absent_node_and_indexes_once_it_answers(
    es_node: Node, es: Elasticsearch, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens here yet: connection refused, like a stopped node
    sink = ElasticSink(AsyncElasticsearch(f"http://127.0.0.1:{port}"), IndexNames(prefix), FAST)
    docs = some_anomalies(6)
    with caplog.at_level(logging.WARNING, logger="connectors.elasticsearch"):
        indexing = asyncio.create_task(sink.index_anomalies(docs))
        # Progress, not a fixed sleep: the sink has failed past its retries and says it waits.
        waiting = "backlog of 6 documents not yet acknowledged"
        async with asyncio.timeout(bound(30)):
            while caplog.text.count(waiting) < 2:  # noqa: ASYNC110 - a log line is the progress
                await asyncio.sleep(0.1)
        assert not indexing.done(), "returned before any acknowledgement: offsets would move"
        server = await _proxy(port, int(es_node.url.rsplit(":", 1)[1]))
        try:
            rejected = await asyncio.wait_for(indexing, timeout=bound(30))
        finally:
            server.close()
            await sink.close()
    assert rejected == []
    assert "backlog of 6 documents not yet acknowledged" in caplog.text
    assert len(search_all(es, f"{prefix}-anomalies")) == 6


async def test_no_secret_reaches_any_log_line_even_at_debug(
    es_node: Node, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    transport = logging.getLogger("elastic_transport.node")  # does not propagate to root
    transport.addHandler(caplog.handler)
    docs = some_anomalies(3)
    broken = {**docs[0], "unexpected": 1}
    try:
        with caplog.at_level(logging.DEBUG):
            for settings in (
                ElasticsearchSettings(url=es_node.url, index_prefix=prefix, api_key=API_KEY),
                ElasticsearchSettings(
                    url=es_node.url, index_prefix=prefix, username="ops", password=PASSWORD
                ),
            ):
                sink = ElasticSink.from_settings(settings)
                sink.policy = FAST
                await sink.setup()
                await sink.index_anomalies([*docs, broken])  # a success and a rejection
                await sink.close()
            dead = ElasticsearchSettings(url=f"http://127.0.0.1:{free_port()}", api_key=API_KEY)
            failing = ElasticSink.from_settings(dead)
            failing.policy = FAST
            a = anomaly()
            outcome = await failing.bulk([failing.doc("anomalies", a.id, START, b"{}")])
            await failing.close()
    finally:
        transport.removeHandler(caplog.handler)
    assert outcome.pending and "Connection" in (outcome.error or "")
    text = caplog.text
    # Not vacuous: the transport's request log, headers included, was captured.
    assert "> PUT /_bulk HTTP/1.1" in text
    assert "> Authorization: ApiKey <hidden>" in text
    assert "> Authorization: Basic <hidden>" in text
    assert "rejected document" in text
    basic = base64.b64encode(f"ops:{PASSWORD}".encode()).decode()
    for secret in (API_KEY, PASSWORD, basic):
        assert secret not in text
