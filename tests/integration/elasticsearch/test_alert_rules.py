"""Each Kibana alert rule's query, run on a real node the way Kibana's Elasticsearch-query rule
runs it (its query, its 5-minute window on its time field, grouped by model), returns exactly
the incidents it should: an incident pages when it opens or escalates, not once per anomaly."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch

from connectors.elasticsearch import ElasticSink
from connectors.es_documents import INCIDENTS, IndexNames
from connectors.es_incidents import incident_document
from connectors.kibana import load_rules, render_rule, rule_search
from detectors.incidents.tracker import PAGED as SEVERITIES  # incidents never open at info
from detectors.incidents.tracker import Incident, incident_id
from tests.integration.elasticsearch.conftest import Node

KINDS = ("schema_skew", "distribution_skew", "drift", "data_quality")


def rule_named(word: str) -> dict[str, object]:
    (rule,) = [r for r in load_rules() if word in r["name"]]
    return rule


def incident(
    model: str, kind: str, severity: str, opened: float, escalated: float, status: str = "open"
) -> Incident:
    feature = f"{kind}-{severity}-{status}"
    window = opened - 60
    key = (model, "3", feature, kind, "")
    return Incident(
        id=incident_id(key, window),
        model=model,
        version="3",
        feature=feature,
        kind=kind,
        slice={},
        opened_at=opened,
        opened_window=window,
        first_anomaly="a",
        severity=severity,
        peak_effect=3.0,
        escalated_at=escalated,
        last_anomaly="b",
        last_seen=max(opened, escalated),
        last_window=window,
        window_end=opened,
        count=3,
        detectors=["psi"],
        message=f"{feature} moved",
        status=status,
        resolved_at=escalated + 1 if status == "resolved" else None,
    )


@pytest.fixture
async def seeded(es_node: Node, prefix: str) -> tuple[float, list[Incident]]:
    """Every severity x kind for two models: opened a minute ago; opened ten minutes ago and
    escalated a minute ago; opened ten minutes ago and quiet since; and resolved ones."""
    now = float(int(time.time()))
    seeded: list[Incident] = []
    for model in ("ctr", "cvr"):
        for severity in SEVERITIES:
            for kind in KINDS:
                seeded += [
                    incident(model, kind, severity, now - 60, now - 60),
                    incident(model, f"{kind}", severity, now - 600, now - 50, "open"),
                    incident(model, kind, severity, now - 610, now - 610),
                    incident(model, kind, severity, now - 70, now - 70, "resolved"),
                ]
    assert len({i.id for i in seeded}) == len(seeded)
    sink = ElasticSink(AsyncElasticsearch(es_node.url), IndexNames(prefix))
    docs = [
        sink.doc(INCIDENTS, i.id, i.opened_window, orjson.dumps(incident_document(i)))
        for i in seeded
    ]
    outcome = await sink.bulk(docs)
    await sink.close()
    assert len(outcome.acked) == len(seeded) == 128
    return now, seeded


def run_rule(
    es: Elasticsearch, prefix: str, rule: dict[str, object], now: float
) -> tuple[set[str], dict[str, int]]:
    rendered = render_rule(rule, IndexNames(prefix))
    es.indices.refresh(index=f"{prefix}-incidents")
    body = rule_search(rendered, datetime.fromtimestamp(now, UTC))
    found = es.search(index=rendered["params"]["index"], **body)
    groups = {b["key"]: b["doc_count"] for b in found["aggregations"]["groups"]["buckets"]}
    return {h["_id"] for h in found["hits"]["hits"]}, groups


def test_the_severity_rule_returns_open_incidents_opened_or_escalated_to_high_recently(
    es: Elasticsearch, prefix: str, seeded: tuple[float, list[Incident]]
) -> None:
    now, incidents = seeded
    ids, groups = run_rule(es, prefix, rule_named("high or critical"), now)
    expected = {
        i.id
        for i in incidents
        if i.severity in ("high", "critical") and i.status == "open" and i.escalated_at > now - 300
    }
    assert len(expected) == 32  # 2 models x 2 severities x 4 kinds, opened or escalated
    assert ids == expected
    assert groups == {"ctr": 16, "cvr": 16}, "one alert per model, each with its own count"
    escalated = {i.id for i in incidents if i.opened_at < now - 300 and i.id in expected}
    assert len(escalated) == 16 and escalated <= ids  # opened long ago, escalated just now
    assert not ids & {i.id for i in incidents if i.status == "resolved"}


def test_the_schema_skew_rule_returns_schema_skew_incidents_opened_recently(
    es: Elasticsearch, prefix: str, seeded: tuple[float, list[Incident]]
) -> None:
    now, incidents = seeded
    ids, groups = run_rule(es, prefix, rule_named("schema-skew"), now)
    expected = {i.id for i in incidents if i.kind == "schema_skew" and i.opened_at > now - 300}
    assert len(expected) == 16  # 2 models x 4 severities, open and resolved
    assert ids == expected
    assert groups == {"ctr": 8, "cvr": 8}


def test_a_quiet_five_minutes_fires_no_rule(
    es: Elasticsearch, prefix: str, seeded: tuple[float, list[Incident]]
) -> None:
    now, _ = seeded
    later = now + 600  # nothing opened or escalated in the last 5 minutes
    for rule in load_rules():
        ids, groups = run_rule(es, prefix, rule, later)
        assert (ids, groups) == (set(), {}), rule["name"]
