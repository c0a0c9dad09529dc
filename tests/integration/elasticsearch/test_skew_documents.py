"""Feature-skew documents in a real node: the strict drift-score mapping takes them (counts,
shares, a missing median as null), and they are found by feature and window beside the
feature's drift score."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch

from connectors.elasticsearch import ElasticSink, RetryPolicy
from connectors.es_documents import DRIFT_SCORES, IndexNames, score_documents, skew_documents
from tests.elastic_samples import START, report
from tests.integration.conftest import search_all
from tests.integration.elasticsearch.conftest import Node
from tests.unit.connectors.test_es_skew_documents import skew_report


@pytest.fixture
async def sink(es_node: Node, prefix: str) -> AsyncIterator[ElasticSink]:
    policy = RetryPolicy(max_retries=3, initial=0.2, maximum=1.0, log_every=0.5)
    s = ElasticSink(AsyncElasticsearch(es_node.url), IndexNames(prefix), policy)
    yield s
    await s.close()


async def test_skew_documents_are_indexed_beside_the_drift_scores(
    sink: ElasticSink, es: Elasticsearch, prefix: str
) -> None:
    await sink.setup()
    docs = [
        sink.doc(DRIFT_SCORES, doc_id, START, orjson.dumps(doc))
        for doc_id, doc in [*skew_documents(skew_report()), *score_documents(report())]
    ]
    outcome = await sink.bulk(docs)
    assert (outcome.rejected, outcome.pending) == ([], [])
    found = search_all(es, f"{prefix}-drift-scores")
    skew = {
        h["_source"]["feature"]["name"]: h["_source"]
        for h in found
        if "feature_skew" in h["_source"]
    }
    assert set(skew) == {"price", "country"}
    assert skew["price"]["feature_skew"]["differ"] == 130
    assert skew["country"]["feature_skew"]["median_ratio"] is None
    hits = es.search(
        index=f"{prefix}-drift-scores",
        query={"range": {"feature_skew.share": {"gt": 0.01}}},
    )["hits"]["hits"]
    assert [h["_source"]["feature"]["name"] for h in hits] == ["price"]
