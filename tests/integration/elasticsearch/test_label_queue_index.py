"""The labelling queue in a real Elasticsearch: one document per item, its state following the
loop (queued, exported, labelled), the resolved label and agreement on it, no feature value."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from elasticsearch import Elasticsearch

from connectors import label_store
from connectors.label_studio_format import answer_result
from connectors.store import AnomalyStore
from streams.simulation.demo import send
from streams.simulation.traffic import Injection, serving_records
from tests.integration.conftest import logdrift
from tests.integration.elasticsearch.conftest import EsRunner, Node, search_all
from tests.unit.streams.test_cli_label import LOW, write_logs

BUDGET = 10


def states(es: Elasticsearch, index: str) -> dict[str, str]:
    es.indices.refresh(index=index)
    return {d["_id"]: d["_source"]["label"]["state"] for d in search_all(es, index)}


def test_the_queue_and_its_states_are_in_elasticsearch(
    es_node: Node,
    es: Elasticsearch,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logs, fb, _ = write_logs(tmp_path)
    store, index = tmp_path / "s.db", f"{prefix}-label-queue"
    monkeypatch.setenv("LOGDRIFT_ELASTICSEARCH__URL", es_node.url)
    monkeypatch.setenv("LOGDRIFT_ELASTICSEARCH__INDEX_PREFIX", prefix)
    monkeypatch.setenv("LOGDRIFT_LABELS__SLICES__KEY", "category")
    out = logdrift("label", "queue", "--logs", logs, "--store", store, "--feedback", fb,
                   "--budget", str(BUDGET)).stdout  # fmt: skip
    assert f"indexed {BUDGET} queue items into {index}" in out, out
    assert set(states(es, index).values()) == {"queued"}
    [doc] = search_all(es, index)[:1]
    assert doc["_source"]["slice"] == LOW and "features" not in doc["_source"]
    assert doc["_source"]["label"]["reason"].startswith("label coverage")

    logdrift("label", "export", "--store", store, "--out", tmp_path / "tasks.json")
    assert set(states(es, index).values()) == {"exported"}

    tasks = orjson.loads((tmp_path / "tasks.json").read_bytes())
    for n, t in enumerate(tasks):
        t["id"] = n
        t["annotations"] = [
            {"completed_by": {"email": f"r{k}@x"}, "result": answer_result("negative")}
            for k in range(3)
        ]
    (tmp_path / "export.json").write_bytes(orjson.dumps(tasks))
    logdrift("label", "import", "--store", store, "--file", tmp_path / "export.json")
    assert set(states(es, index).values()) == {"labelled"}
    labels = [d["_source"]["label"] for d in search_all(es, index)]
    assert all(x["choice"] == "negative" and x["agreement"] == 1.0 and x["raters"] == 3
               for x in labels)  # fmt: skip


def test_the_runner_indexes_what_it_queued_when_a_drift_incident_opened(
    start_es_runner: Callable[..., EsRunner],
    es: Elasticsearch,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOGDRIFT_LABELLING__QUEUE_ON_INCIDENT", "true")
    monkeypatch.setenv("LOGDRIFT_LABELLING__BUDGET_PER_DAY", str(BUDGET))
    runner = start_es_runner(prefix, shutdown_drain_seconds="60")
    rate, start = 100.0, 1_795_860_000.0
    shifted = [Injection("mean_shift", 8_000)]
    send(list(serving_records(16_000, rate=rate, start=start, injections=shifted)),
         "127.0.0.1", runner.port, realtime=False, rate=rate)  # fmt: skip
    out = runner.stop()
    with AnomalyStore(runner.store) as s:
        queued = {i.request_id: i for i in label_store.queue(s)}
    assert 0 < len(queued) <= BUDGET, out[-3000:]
    index = f"{prefix}-label-queue"
    es.indices.refresh(index=index)
    docs = {d["_id"]: d for d in search_all(es, index)}
    assert set(docs) == set(queued), "each item once, _id its request id"
    for rid, d in docs.items():
        assert d["_index"] == index and "features" not in d["_source"]
        assert d["_source"]["label"]["state"] == "queued"
        assert d["_source"]["label"]["reason"] == queued[rid].reason
        assert "drift incident" in d["_source"]["label"]["reason"]
    mapping = es.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["dynamic"] == "strict", "created with the queue's own mapping"
