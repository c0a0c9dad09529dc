"""streams.metrics: what the runner's step records, bounded labels, readiness."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.forward import ForwardEvent
from connectors.forward_server import ForwardStats
from connectors.store import AnomalyStore
from detectors.engine import Engine, EngineOptions
from detectors.records import FieldMapping, parse_ts
from streams import metrics
from streams.embedded.runner import Pipeline
from streams.simulation.traffic import Injection, serving_records
from tests.unit.detectors.conftest import traffic_baseline


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("model: no baseline for model 'fraud' (have: ctr)", "model: no baseline for model"),
        ("features: expected an object, got list", "features: expected an object, got list"),
        ("ts: Invalid isoformat string: '2026-13-45'", "ts: Invalid isoformat string"),
        ("<record>: expected an object, got str", "<record>: expected an object, got str"),
        (
            "not JSON: unexpected character: line 1 column 2 (char 1)",
            "not JSON",
        ),
        ("'secret@example.org' is odd", "other"),
    ],
)
def test_a_dead_letter_reason_loses_every_value_it_quotes(reason: str, kind: str) -> None:
    assert metrics.reason_kind(reason) == kind


def test_the_runner_step_counts_records_dead_letters_anomalies_and_windows(tmp_path: Path) -> None:
    engine = Engine([traffic_baseline(rows=2_000)], EngineOptions(window_seconds=60, min_count=50))
    start = 1_795_860_000.0
    records = list(
        serving_records(
            3_000, rate=10.0, start=start, injections=[Injection("category_surge", 1_000)]
        )
    )
    with AnomalyStore(tmp_path / "a.db") as store:
        pipeline = Pipeline(engine, store, FieldMapping(), emit=lambda line: None)
        before = {
            "in": sample("logdrift_records_in_total", topic="forward"),
            "dead": sample("logdrift_dead_letters_total", reason="model: no baseline for model"),
            "windows": sample("logdrift_windows_closed_total", model="ctr"),
            "out": sample("logdrift_records_out_total", topic="anomalies"),
        }
        events = [ForwardEvent("serving", parse_ts(r["ts"]), r) for r in records]
        events.append(ForwardEvent("serving", start, {"model": "fraud", "features": {}}))
        for i in range(0, len(events), 500):
            pipeline.handle(events[i : i + 500])
        pipeline.publish(engine.close_all())

    assert sample("logdrift_records_in_total", topic="forward") - before["in"] == 3_001
    dead = sample("logdrift_dead_letters_total", reason="model: no baseline for model")
    assert dead - before["dead"] == 1
    windows = sample("logdrift_windows_closed_total", model="ctr") - before["windows"]
    assert windows == pipeline.stats.windows > 0
    raised = sample("logdrift_records_out_total", topic="anomalies") - before["out"]
    assert raised == pipeline.stats.anomalies > 0, "the surge was caught and counted"
    by_kind = sum(
        sample("logdrift_anomalies_total", kind="distribution_skew", severity=s)
        for s in ("low", "medium", "high", "critical")
    )
    assert by_kind > 0


def test_forward_listener_counters_are_read_when_scraped() -> None:
    stats = ForwardStats(connections_total=5, connections_open=2, messages=40)
    stats.reject("frame_too_large")
    collector = metrics.watch_forward(lambda: stats)
    try:
        assert sample("logdrift_forward_connections_total") == 5
        assert sample("logdrift_forward_connections_open") == 2
        assert sample("logdrift_forward_rejected_total", reason="frame_too_large") == 1
        stats.reject("frame_too_large")
        assert sample("logdrift_forward_rejected_total", reason="frame_too_large") == 2
    finally:
        metrics.unwatch(collector)
    assert metrics.REGISTRY.get_sample_value("logdrift_forward_connections_total") is None


def test_elasticsearch_bulks_feed_latency_outcomes_failures_and_backlog() -> None:
    observer = metrics.ElasticMetrics()
    count = sample("logdrift_elasticsearch_bulk_seconds_count")
    acked = sample("logdrift_elasticsearch_documents_total", outcome="acked")
    failures = sample("logdrift_elasticsearch_bulk_failures_total", reason="transport")
    observer.bulk_done(0.02, 10, 0, 0, None)
    observer.bulk_done(1.5, 0, 10, 0, "transport")
    observer.backlog(10)
    assert sample("logdrift_elasticsearch_bulk_seconds_count") - count == 2
    assert sample("logdrift_elasticsearch_documents_total", outcome="acked") - acked == 10
    assert sample("logdrift_elasticsearch_bulk_failures_total", reason="transport") - failures == 1
    assert sample("logdrift_elasticsearch_backlog") == 10


def test_ready_only_when_every_check_passes_and_a_failing_probe_is_not_ready() -> None:
    health = metrics.Health()
    assert not health.ready(), "nothing checked yet is not ready"
    health.mark("baseline_loaded")
    health.mark("listener_up", False)
    assert not health.ready()
    assert sample("logdrift_ready") == 0
    health.mark("listener_up")
    assert health.ready()
    assert sample("logdrift_ready") == 1

    def broken() -> bool:
        raise RuntimeError("consumer not started")

    health.check("broker_connected", broken)
    assert health.checks()["broker_connected"] is False
    assert not health.ready()
