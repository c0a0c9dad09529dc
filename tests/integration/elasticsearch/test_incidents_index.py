"""On a real node: incidents land in <prefix>-incidents under their id, every version
overwriting the last (a replay too), through the embedded runner's outbox and shipper; roll-ups
in <prefix>-rollups; both with the declared strict mappings."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch

from connectors.elasticsearch import ElasticSink, RetryPolicy
from connectors.es_documents import INCIDENTS, ROLLUPS, IndexNames, load_templates
from connectors.es_incidents import incident_items
from connectors.outbox import Outbox
from connectors.store import AnomalyStore
from detectors.incidents.tracker import Close, IncidentOptions, IncidentTracker
from streams.embedded.shipper import Shipper
from tests.elastic_samples import START, anomaly
from tests.integration.elasticsearch.conftest import Node, search_all


def window(i: int) -> float:
    return START + 60 * i


def close(i: int) -> Close:
    return Close("ctr", "3", window(i), window(i + 1), monitored=("age", "device", "price"))


async def ship(node: Node, prefix: str, store: AnomalyStore) -> None:
    policy = RetryPolicy(max_retries=3, initial=0.2, maximum=1.0, log_every=0.5)
    sink = ElasticSink(AsyncElasticsearch(node.url), IndexNames(prefix), policy)
    shipper = Shipper(Outbox(store), sink, batch_size=50, drain_seconds=30)
    done = asyncio.Event()
    done.set()  # ship what is there, then stop
    await shipper.run(done)
    assert Outbox(store).counts().pending == 0


def indexed(es: Elasticsearch, prefix: str, target: str) -> dict[str, dict[str, Any]]:
    return {h["_id"]: h["_source"] for h in search_all(es, f"{prefix}-{target}")}


async def test_every_version_of_an_incident_overwrites_the_last_and_a_replay_adds_nothing(
    es_node: Node, es: Elasticsearch, prefix: str, tmp_path: Any
) -> None:
    tracker = IncidentTracker(IncidentOptions(quiet_windows=2))
    steps = [
        tracker.apply([anomaly(window_start=window(0), feature="price")], [close(0)]),
        tracker.apply(
            [anomaly(window_start=window(1), feature="price", severity="critical")],
            [close(1)],
        ),
        tracker.apply([], [close(2), close(3)]),
    ]
    with AnomalyStore(tmp_path / "s.db") as store:
        for step in steps:
            store.put([], outbox=incident_items(step.incidents(), step.rollups))
        await ship(es_node, prefix, store)
        docs = indexed(es, prefix, "incidents")
        ((doc_id, doc),) = docs.items()
        final = steps[-1].incidents()[0]
        assert doc_id == final.id
        assert doc["incident"]["status"] == "resolved"
        assert doc["incident"]["severity"] == "critical"
        assert doc["incident"]["count"] == 2
        assert doc["incident"]["escalated_at"] == "2026-11-28T10:02:00.000Z"
        version = {h["_id"]: h["_version"] for h in search_all(es, f"{prefix}-incidents")}
        # the replay: the same documents again (a restarted runner, a re-delivered topic)
        for step in steps:
            store.put([], outbox=incident_items(step.incidents(), step.rollups))
        await ship(es_node, prefix, store)
        assert indexed(es, prefix, "incidents") == docs
        after = {h["_id"]: h["_version"] for h in search_all(es, f"{prefix}-incidents")}
        assert after[doc_id] > version[doc_id]  # rewritten in place, not added
    rollups = indexed(es, prefix, "rollups")
    assert len(rollups) == 4  # one per model version and closed window
    shares = sorted(r["rollup"]["share"] for r in rollups.values())
    assert shares == pytest.approx([0.0, 0.0, 1 / 3, 1 / 3])
    assert {tuple(r["rollup"]["features"]) for r in rollups.values()} == {(), ("price",)}


async def test_the_incident_and_rollup_indices_get_the_declared_mappings(
    es_node: Node, es: Elasticsearch, prefix: str, tmp_path: Any
) -> None:
    tracker = IncidentTracker()
    step = tracker.apply([anomaly(slice_={"category": "shoes"})], [close(0)])
    with AnomalyStore(tmp_path / "s.db") as store:
        store.put([], outbox=incident_items(step.incidents(), step.rollups))
        await ship(es_node, prefix, store)
    names = IndexNames(prefix)
    for target in (INCIDENTS, ROLLUPS):
        declared = load_templates(names)[names.template_name(target)]["template"]["mappings"]
        got = es.indices.get_mapping(index=f"{prefix}-{target}")  # through the alias
        ((index, body),) = got.body.items()
        assert index == f"{prefix}-{target}-2026.11.28"
        assert body["mappings"] == declared
    (doc,) = indexed(es, prefix, "incidents").values()
    assert doc["slice"] == {"category": "shoes"}
