"""SIGTERM while Elasticsearch is unreachable: the worker stops within its drain time instead of
waiting for the node, and the anomalies it could not index stay uncommitted on the anomalies
topic (read again, and indexed, at the next start): a bounded stop that loses nothing."""

from __future__ import annotations

import asyncio
import socket
import time

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.simulation.traffic import Injection
from tests.integration.kafka.conftest import (
    anomalies_on,
    consume,
    create_topic,
    produce,
    serving_messages,
    wait_until,
)
from tests.integration.kafka.traffic import rows_with_tail
from tests.integration.patience import bound
from tools.servers import ServerInfo

DRAIN_SECONDS = 3
STOP_BOUND = 60  # the worker's stop on a quiet machine, at most (stretched by bound())


def _closed_port() -> int:
    """A loopback port nothing listens on: every request is refused, as when the node is down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _committed(url: str, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=url)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(
        meta.offset
        for tp, meta in offsets.items()
        if isinstance(tp, TopicPartition) and tp.topic == topic and meta.offset > 0
    )


def test_sigterm_during_an_outage_stops_in_bounded_time_and_commits_nothing_unindexed(
    kafka: ServerInfo, start_worker, app_id: str
) -> None:
    create_topic(kafka.url, f"{app_id}-serving-logs", 4)
    rows, _ = rows_with_tail(4_000, [Injection("category_surge", 2_000)])
    worker = start_worker(
        app_id,
        LOGDRIFT_ELASTICSEARCH__URL=f"http://127.0.0.1:{_closed_port()}",
        LOGDRIFT_ELASTICSEARCH__SHUTDOWN_DRAIN_SECONDS=str(DRAIN_SECONDS),
    )
    worker.wait_for(rf"ready: assigned .*{app_id}-anomalies/3", timeout=120)
    produce(kafka.url, f"{app_id}-serving-logs", serving_messages(rows))
    anomalies_topic = f"{app_id}-anomalies"
    wait_until(lambda: len(anomalies_on(kafka.url, anomalies_topic)) > 0, 90, "anomalies raised")
    # the index stage is now retrying against the closed port
    worker.wait_for(r"elasticsearch: backlog of \d+ documents not yet acknowledged", timeout=60)

    began = time.monotonic()
    worker.stop(timeout=STOP_BOUND)  # SIGTERM; SIGKILL only past the bound
    took = time.monotonic() - began

    assert worker.proc.returncode == 0, worker.text()[-3000:]
    # Bounded means the drain time plus the worker's own shutdown, whatever the node does (it
    # never answers here); a busy machine stretches the shutdown, never the drain.
    assert took < DRAIN_SECONDS + bound(25), f"stop took {took:.1f} s"
    assert "not acknowledged by Elasticsearch" in worker.text()
    assert worker.counters().get("indexed", 0) == 0
    on_topic = len(consume(kafka.url, anomalies_topic))
    committed = asyncio.run(_committed(kafka.url, app_id, anomalies_topic))
    assert on_topic > 0 and committed == 0, (on_topic, committed)  # every anomaly to be indexed
