"""Each Kibana alert rule's query, run on a real node the way Kibana's Elasticsearch-query rule
runs it (its query, its 5-minute window on @timestamp, grouped by model), returns exactly the
anomalies it should: nothing below its severity, nothing of another kind, nothing too old, and
never an "info" anomaly (an improvement: recorded, not paged)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch

from connectors.elasticsearch import ElasticSink
from connectors.es_documents import ANOMALIES, IndexNames
from connectors.kibana import load_rules, render_rule, rule_search
from detectors.anomaly import SEVERITIES, Anomaly
from tests.elastic_samples import anomaly
from tests.integration.elasticsearch.conftest import Node

KINDS = ("schema_skew", "distribution_skew", "drift", "data_quality")


def rule_named(word: str) -> dict[str, object]:
    (rule,) = [r for r in load_rules() if word in r["name"]]
    return rule


@pytest.fixture
async def seeded(es_node: Node, prefix: str) -> tuple[float, list[Anomaly]]:
    """Every severity x kind for two models, a minute ago; and the same set ten minutes ago."""
    now = float(int(time.time()))
    seeded: list[Anomaly] = []
    for age in (60.0, 600.0):
        window_start = now - age - 60
        for model in ("ctr", "cvr"):
            for severity in SEVERITIES:
                for kind in KINDS:
                    seeded.append(
                        anomaly(
                            window_start=window_start,
                            model=model,
                            feature=f"{kind}-{severity}",
                            kind=kind,
                            severity=severity,
                            timestamp=now - age,
                        )
                    )
    sink = ElasticSink(AsyncElasticsearch(es_node.url), IndexNames(prefix))
    docs = [
        sink.doc(ANOMALIES, a.id, a.window_start, orjson.dumps(a.to_document())) for a in seeded
    ]
    outcome = await sink.bulk(docs)
    await sink.close()
    assert len(outcome.acked) == len(seeded) == 2 * 2 * len(SEVERITIES) * len(KINDS)
    return now, seeded


def run_rule(
    es: Elasticsearch, prefix: str, rule: dict[str, object], now: float
) -> tuple[set[str], dict[str, int]]:
    rendered = render_rule(rule, IndexNames(prefix))
    es.indices.refresh(index=f"{prefix}-anomalies")
    body = rule_search(rendered, datetime.fromtimestamp(now, UTC))
    found = es.search(index=rendered["params"]["index"], **body)
    groups = {b["key"]: b["doc_count"] for b in found["aggregations"]["groups"]["buckets"]}
    return {h["_id"] for h in found["hits"]["hits"]}, groups


def test_the_severity_rule_returns_every_recent_high_or_critical_anomaly_and_nothing_else(
    es: Elasticsearch, prefix: str, seeded: tuple[float, list[Anomaly]]
) -> None:
    now, anomalies = seeded
    ids, groups = run_rule(es, prefix, rule_named("high or critical"), now)
    expected = {
        a.id for a in anomalies if a.severity in ("high", "critical") and a.timestamp > now - 300
    }
    assert len(expected) == 16
    assert ids == expected
    assert groups == {"ctr": 8, "cvr": 8}, "one alert per model, each with its own count"
    below = {a.id for a in anomalies if a.severity in ("info", "low", "medium")}
    assert not ids & below


def test_the_schema_skew_rule_returns_every_recent_schema_skew_that_pages(
    es: Elasticsearch, prefix: str, seeded: tuple[float, list[Anomaly]]
) -> None:
    now, anomalies = seeded
    ids, groups = run_rule(es, prefix, rule_named("schema skew"), now)
    expected = {
        a.id
        for a in anomalies
        if a.kind == "schema_skew" and a.severity != "info" and a.timestamp > now - 300
    }
    assert len(expected) == 8
    assert ids == expected
    assert groups == {"ctr": 4, "cvr": 4}


def test_a_quiet_five_minutes_fires_no_rule(
    es: Elasticsearch, prefix: str, seeded: tuple[float, list[Anomaly]]
) -> None:
    now, _ = seeded
    later = now + 600  # the newest anomalies are now more than 5 minutes old
    for rule in load_rules():
        ids, groups = run_rule(es, prefix, rule, later)
        assert (ids, groups) == (set(), {}), rule["name"]
