"""The worker's metrics, readiness and consumer lag, on the same endpoint as the runner's:

    agents --consumed/produced/dead_lettered/raised/window_moved--> streams.metrics counters
    update_lag (timer)   highwater (end offset, asked of the broker) - committed offset,
                         per assigned partition of the agents' source topics
    serve_metrics (task) /metrics, /healthz, /readyz on observability.host:port
    ready = broker_connected (the last end-offset round trip succeeded, recently)
          + tables_recovered (changelogs replayed, no rebalance under way)
          + baseline_loaded

Imported by streams.agents (so ``faust -A streams.app worker`` gets it too).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from detectors.anomaly import Anomaly
from streams import metrics
from streams.app import app, detection, kafka, settings

logger = logging.getLogger("logdrift.worker")

LAG_SECONDS = 2.0  # how often the lag gauges are refreshed (one end-offsets request)
BROKER_STALE_SECONDS = max(15.0, 3 * kafka.session_timeout)  # no answer this long: not ready

endpoint = metrics.Endpoint(settings.observability)
_last_broker_answer: float | None = None
_lagging: set[tuple[str, int]] = set()


# --- what the agents call --------------------------------------------------------------------
def consumed(topic: str, n: int = 1) -> None:
    metrics.record_in(topic, n)


def produced(topic: str, n: int = 1) -> None:
    metrics.record_out(topic, n)


def dead_lettered(kind: str) -> None:
    metrics.record_dead_letter(kind)
    metrics.record_out(kafka.topic("dead_letters"))


def raised(anomalies: Iterable[Anomaly]) -> None:
    found = list(anomalies)
    metrics.record_anomalies(found)
    metrics.record_out(kafka.topic("anomalies"), len(found))


def window_moved(model: str, opened_before: bool, start_before: float, start_after: float) -> None:
    """Stage two judges each feature's window on its own: one count per feature window."""
    if opened_before and start_after != start_before:
        metrics.WINDOWS.labels(model).inc()


# --- readiness -------------------------------------------------------------------------------
def _baseline_loaded() -> bool:
    return bool(detection().steps)


def _tables_recovered() -> bool:
    recovery = app.tables.recovery  # type: ignore[attr-defined]
    return bool(recovery.completed.is_set()) and not app.rebalancing


def _broker_connected() -> bool:
    answered = _last_broker_answer
    return answered is not None and time.monotonic() - answered < BROKER_STALE_SECONDS


endpoint.health.check("broker_connected", _broker_connected)
endpoint.health.check("tables_recovered", _tables_recovered)
endpoint.health.check("baseline_loaded", _baseline_loaded)


# --- lag -------------------------------------------------------------------------------------
def _source_topics() -> set[str]:
    names = ["serving_logs", "feature_summaries"]
    if settings.elasticsearch.url is not None:
        names.append("anomalies")
    return {kafka.topic(n) for n in names}


async def refresh_lag() -> None:
    """One end-offsets round trip for the assigned source partitions; gauges updated."""
    global _last_broker_answer
    consumer = app.consumer
    assigned = [tp for tp in consumer.assignment() if tp.topic in _source_topics()]
    ends = await consumer.highwaters(*assigned) if assigned else {}
    _last_broker_answer = time.monotonic()
    # faust's own record of what it committed (next offset to read), per partition
    committed: dict[Any, int | None] = getattr(consumer, "_committed_offset", {})
    now = set()
    for tp, lag in metrics.consumer_lag(ends, committed).items():
        metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)
        now.add((tp.topic, tp.partition))
    for topic, partition in _lagging - now:  # revoked: no stale series
        metrics.CONSUMER_LAG.remove(topic, str(partition))
    _lagging.clear()
    _lagging.update(now)


@app.timer(interval=LAG_SECONDS)  # type: ignore[untyped-decorator]
async def update_lag() -> None:
    try:
        await refresh_lag()
    except Exception as exc:  # not connected yet, or a rebalance: readiness says so
        logger.debug("consumer lag not refreshed: %r", exc)


@app.task  # type: ignore[untyped-decorator]
async def serve_metrics() -> None:
    await endpoint.start()
    try:
        await asyncio.Event().wait()  # until the worker stops and cancels its tasks
    finally:
        await endpoint.stop()
