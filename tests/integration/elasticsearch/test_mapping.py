"""On a real node: the templates logdrift installs are the mappings the indices get, documents
land in daily indices behind an alias, and what Elasticsearch refuses is reported, not lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from elasticsearch import AsyncElasticsearch, Elasticsearch

from config.settings import ElasticsearchSettings
from connectors.elasticsearch import ElasticError, ElasticSink, RetryPolicy
from connectors.es_documents import (
    ANOMALIES,
    DRIFT_SCORES,
    IndexNames,
    load_templates,
    score_documents,
)
from connectors.es_reader import search_newest
from streams.cli.main import main
from tests.elastic_samples import START, anomaly, report
from tests.integration.elasticsearch.conftest import Node, search_all

PATIENCE_S = 120.0  # a bound for a loaded machine, not a deadline tuned to an idle one


@pytest.fixture
async def sink(es_node: Node, prefix: str) -> AsyncIterator[ElasticSink]:
    policy = RetryPolicy(max_retries=3, initial=0.2, maximum=1.0, log_every=0.5)
    s = ElasticSink(AsyncElasticsearch(es_node.url), IndexNames(prefix), policy)
    yield s
    await s.close()


def declared(prefix: str, target: str) -> dict[str, Any]:
    names = IndexNames(prefix)
    mappings: dict[str, Any] = load_templates(names)[names.template_name(target)]["template"][
        "mappings"
    ]
    return mappings


async def test_the_mapping_in_the_node_is_the_declared_one(
    sink: ElasticSink, es: Elasticsearch, prefix: str
) -> None:
    assert await sink.setup() == [
        f"{prefix}-anomalies",
        f"{prefix}-drift-scores",
        f"{prefix}-incidents",
        f"{prefix}-rollups",
    ]
    a = anomaly(slice_={"category": "mens_dress_shoes"})
    docs = [sink.doc(ANOMALIES, a.id, a.window_start, orjson.dumps(a.to_document()))]
    for doc_id, doc in score_documents(report(anomalies=[a])):
        docs.append(sink.doc(DRIFT_SCORES, doc_id, START, orjson.dumps(doc)))
    outcome = await sink.bulk(docs)
    assert (len(outcome.acked), outcome.rejected, outcome.pending) == (4, [], [])
    for target in (ANOMALIES, DRIFT_SCORES):
        got = es.indices.get_mapping(index=f"{prefix}-{target}")  # through the alias
        ((index, body),) = got.body.items()
        assert index == f"{prefix}-{target}-2026.11.28"
        assert body["mappings"] == declared(prefix, target)


async def test_indices_join_their_alias_with_one_shard_and_replicas_that_fit_the_cluster(
    sink: ElasticSink, es: Elasticsearch, prefix: str
) -> None:
    a = anomaly()
    await sink.bulk([sink.doc(ANOMALIES, a.id, a.window_start, orjson.dumps(a.to_document()))])
    index = f"{prefix}-anomalies-2026.11.28"
    assert es.indices.get_alias(name=f"{prefix}-anomalies").body == {
        index: {"aliases": {f"{prefix}-anomalies": {}}}
    }
    settings = es.indices.get_settings(index=index).body[index]["settings"]["index"]
    assert settings["number_of_shards"] == "1"
    assert settings["number_of_replicas"] == "0"  # auto_expand 0-1 on a single node: green
    assert (
        es.cluster.health(index=index, wait_for_status="green", timeout="30s")["status"] == "green"
    )


async def test_an_undeclared_field_is_refused_for_that_document_only_and_reported(
    sink: ElasticSink, es: Elasticsearch, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    good = anomaly()
    body = {**good.to_document(), "surprise": 1}
    bad = sink.doc(ANOMALIES, "bad-id", START, orjson.dumps(body))
    ok = sink.doc(ANOMALIES, good.id, START, orjson.dumps(good.to_document()))
    with caplog.at_level(logging.ERROR, logger="connectors.elasticsearch"):
        outcome = await sink.bulk([bad, ok])
    assert [d.doc_id for d in outcome.acked] == [good.id]
    (rejection,) = outcome.rejected
    assert rejection.doc.doc_id == "bad-id"
    assert rejection.reason.startswith("400 strict_dynamic_mapping_exception")
    assert "bad-id" in caplog.text and "strict_dynamic_mapping_exception" in caplog.text
    assert [h["_id"] for h in search_all(es, f"{prefix}-anomalies")] == [good.id]


async def test_a_429_is_retried_until_the_index_accepts_and_a_403_is_reported_not_retried(
    sink: ElasticSink, es: Elasticsearch, prefix: str
) -> None:
    first, second = anomaly(feature="a"), anomaly(feature="b")
    await sink.bulk([sink.doc(ANOMALIES, first.id, START, orjson.dumps(first.to_document()))])
    index = f"{prefix}-anomalies-2026.11.28"
    # The flood-stage disk block answers 429 per item: a transient state worth waiting out.
    es.indices.put_settings(index=index, settings={"index.blocks.read_only_allow_delete": True})
    doc = sink.doc(ANOMALIES, second.id, START, orjson.dumps(second.to_document()))
    blocked = await sink.bulk([doc])
    assert blocked.pending == [doc] and blocked.error is not None
    assert blocked.error.startswith("429 cluster_block_exception")
    es.indices.put_settings(index=index, settings={"index.blocks.read_only_allow_delete": None})
    # The lifted block reaches the shard when the node gets to it (seconds on a busy machine):
    # the sink keeps retrying until it does, and then the document is there.
    assert await asyncio.wait_for(sink.index_until_acked([doc]), timeout=PATIENCE_S) == []
    assert es.get(index=index, id=second.id)["found"]
    # A write block is an operator's decision: 403, reported at once, not retried for ever.
    es.indices.put_settings(index=index, settings={"index.blocks.write": True})
    try:
        refused = await sink.bulk([doc])
    finally:
        es.indices.put_settings(index=index, settings={"index.blocks.write": None})
    assert refused.pending == [] and refused.rejected[0].reason.startswith("403")


async def test_retention_deletes_whole_old_days_and_keeps_the_rest(
    sink: ElasticSink, es: Elasticsearch, prefix: str
) -> None:
    sink.retention_days = 7
    day = 86_400.0
    for start in (START - 30 * day, START - 8 * day, START - 7 * day, START):
        a = anomaly(window_start=start)
        await sink.bulk([sink.doc(ANOMALIES, a.id, start, orjson.dumps(a.to_document()))])
    deleted = await sink.enforce_retention(date(2026, 11, 28))
    assert deleted == [f"{prefix}-anomalies-2026.10.29", f"{prefix}-anomalies-2026.11.20"]
    left = sorted(es.indices.get(index=f"{prefix}-*").body)
    assert left == [f"{prefix}-anomalies-2026.11.21", f"{prefix}-anomalies-2026.11.28"]


def test_es_setup_installs_the_templates_from_the_command_line(
    es_node: Node, es: Elasticsearch, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGDRIFT_ELASTICSEARCH__URL", es_node.url)
    monkeypatch.setenv("LOGDRIFT_ELASTICSEARCH__INDEX_PREFIX", prefix)
    result = CliRunner().invoke(main, ["es", "setup"])
    assert result.exit_code == 0, result.output
    installed = f"{prefix}-anomalies, {prefix}-drift-scores, {prefix}-incidents, {prefix}-rollups"
    assert f"{installed} installed" in result.output
    template = es.indices.get_index_template(name=f"{prefix}-anomalies")["index_templates"][0]
    assert template["index_template"]["index_patterns"] == [f"{prefix}-anomalies-*"]
    assert template["index_template"]["template"]["mappings"]["dynamic"] == "strict"


def test_es_setup_against_no_node_fails_with_a_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOGDRIFT_ELASTICSEARCH__URL", "http://127.0.0.1:9")
    result = CliRunner().invoke(main, ["es", "setup"])
    assert result.exit_code == 1
    assert "http://127.0.0.1:9" in result.output and "Traceback" not in result.output


async def test_a_node_that_cannot_be_reached_is_an_elastic_error_naming_why() -> None:
    """The client library's errors stay inside connectors/: streams/ catches ElasticError."""
    settings = ElasticsearchSettings(url="http://127.0.0.1:9")  # discard port: nothing listens
    sink = ElasticSink.from_settings(settings)
    try:
        with pytest.raises(ElasticError, match="ConnectionError"):
            await sink.setup()
        with pytest.raises(ElasticError, match="ConnectionError"):
            await sink.enforce_retention(date(2026, 11, 28))
        with pytest.raises(ElasticError, match="ConnectionError"):
            await search_newest(sink.client, sink.names, ANOMALIES, None, limit=10)
    finally:
        await sink.close()
