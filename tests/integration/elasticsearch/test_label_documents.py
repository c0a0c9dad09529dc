"""On a real node: label-window documents (performance per model, slice and group) are
accepted by the strict drift-score mapping and can be filtered by slice."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch

from connectors.elasticsearch import ElasticSink, RetryPolicy
from connectors.es_documents import DRIFT_SCORES, IndexNames, label_documents
from connectors.es_reader import search_newest
from tests.integration.elasticsearch.conftest import Node
from tests.unit.connectors.test_es_label_documents import START, label_report


@pytest.fixture
async def sink(es_node: Node, prefix: str) -> AsyncIterator[ElasticSink]:
    policy = RetryPolicy(max_retries=3, initial=0.2, maximum=1.0, log_every=0.5)
    s = ElasticSink(AsyncElasticsearch(es_node.url), IndexNames(prefix), policy)
    yield s
    await s.close()


async def test_label_documents_are_indexed_and_found_by_slice(
    sink: ElasticSink, es: Elasticsearch, prefix: str
) -> None:
    await sink.setup()
    docs = [
        sink.doc(DRIFT_SCORES, doc_id, START, orjson.dumps(doc))
        for doc_id, doc in label_documents(label_report())
    ]
    outcome = await sink.bulk(docs)
    assert (len(outcome.acked), outcome.rejected, outcome.pending) == (5, [], [])
    es.indices.refresh(index=f"{prefix}-{DRIFT_SCORES}")
    found = es.search(
        index=f"{prefix}-{DRIFT_SCORES}",
        query={"term": {"slice.category": "mens_dress_shoes"}},
    )
    (hit,) = found["hits"]["hits"]
    assert hit["_source"]["performance"]["accuracy"] == 0.7


async def test_report_reader_passes_over_label_documents(
    sink: ElasticSink, es_node: Node, es: Elasticsearch, prefix: str
) -> None:
    """Label windows share the drift-score alias but carry no feature score: the report's
    reader must not take them for one (it would fail on the missing ``score``)."""
    await sink.setup()
    docs = [
        sink.doc(DRIFT_SCORES, doc_id, START, orjson.dumps(doc))
        for doc_id, doc in label_documents(label_report())
    ]
    assert len((await sink.bulk(docs)).acked) == 5
    es.indices.refresh(index=f"{prefix}-{DRIFT_SCORES}")
    async with AsyncElasticsearch(es_node.url) as client:
        found = await search_newest(client, IndexNames(prefix), DRIFT_SCORES, None, limit=100)
    assert found == []
