"""The Elasticsearch side of the runner's metrics, scraped over HTTP: bulk latency and acked
documents against a real node, the backlog draining to zero; and against an address where no
node answers, transport failures counted and the backlog growing."""

from __future__ import annotations

import re
import time

from streams.simulation.demo import send
from streams.simulation.traffic import Injection, serving_records
from tests.integration.conftest import free_port
from tests.integration.patience import bound
from tests.integration.scrape import Samples, scrape, value

RATE = 100.0
START = 1_795_860_000.0


def metrics_base(runner, timeout: float = 30) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + bound(timeout)
    while time.monotonic() < deadline:
        found = re.search(r"metrics on (http://[\d.]+:\d+)/metrics", runner.output())
        if found:
            return found[1]
        time.sleep(0.1)
    raise AssertionError(f"no metrics address in:\n{runner.output()}")


def settle(base: str, condition, timeout: float = 60) -> Samples:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + bound(timeout)
    samples = scrape(base)
    while not condition(samples) and time.monotonic() < deadline:
        time.sleep(0.3)
        samples = scrape(base)
    return samples


def _traffic() -> list[dict[str, object]]:
    injections = [Injection("category_surge", 3_000)]
    return list(serving_records(6_000, rate=RATE, start=START, injections=injections))


def test_bulk_latency_and_acked_documents_move_and_the_backlog_drains(
    start_es_runner, prefix: str
) -> None:
    runner = start_es_runner(prefix, "--window-seconds", "10", "--min-count", "200")
    base = metrics_base(runner)
    send(_traffic(), "127.0.0.1", runner.port, realtime=False, rate=RATE)
    samples = settle(
        base,
        lambda s: (  # every record read, then every window's documents acknowledged
            value(s, "logdrift_records_in_total", topic="forward") == 6_000
            and value(s, "logdrift_elasticsearch_documents_total", outcome="acked") >= 5 * 7
            and value(s, "logdrift_elasticsearch_backlog") == 0
        ),
    )
    acked = value(samples, "logdrift_elasticsearch_documents_total", outcome="acked")
    assert acked >= 5 * 7, "a drift score per feature and window, and the anomalies"
    assert value(samples, "logdrift_elasticsearch_bulk_seconds_count") >= 1
    assert value(samples, "logdrift_elasticsearch_bulk_seconds_sum") > 0
    assert value(samples, "logdrift_elasticsearch_backlog") == 0
    assert value(samples, "logdrift_elasticsearch_bulk_failures_total", reason="transport") == 0
    runner.stop()


def test_an_unreachable_node_counts_transport_failures_and_a_growing_backlog(
    start_es_runner, prefix: str
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    runner = start_es_runner(
        prefix, "--window-seconds", "10", "--min-count", "200", url=nowhere, backoff_max="1"
    )
    base = metrics_base(runner)
    send(_traffic(), "127.0.0.1", runner.port, realtime=False, rate=RATE)
    samples = settle(
        base,
        lambda s: (
            value(s, "logdrift_elasticsearch_bulk_failures_total", reason="transport") >= 2
            and value(s, "logdrift_elasticsearch_backlog") >= 5 * 7
        ),
    )
    assert value(samples, "logdrift_elasticsearch_bulk_failures_total", reason="transport") >= 2
    assert value(samples, "logdrift_elasticsearch_backlog") >= 5 * 7, "documents wait, not lost"
    assert value(samples, "logdrift_elasticsearch_documents_total", outcome="acked") == 0
    assert value(samples, "logdrift_ready") == 1, "a missing Elasticsearch does not stop intake"
    runner.stop()
