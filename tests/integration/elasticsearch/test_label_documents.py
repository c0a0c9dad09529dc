"""On a real node: label-window documents (performance per model, slice and group) are
accepted by the strict drift-score mapping and can be filtered by slice."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch

from connectors.elasticsearch import ElasticSink, RetryPolicy
from connectors.es_documents import DRIFT_SCORES, IndexNames, label_documents
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
