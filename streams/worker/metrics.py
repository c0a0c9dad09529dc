"""The worker's metrics, readiness and consumer lag, on the same endpoint as the runner's:

    agents --consumed/produced/dead_lettered/raised/window_moved--> streams.metrics counters
    update_lag (timer)   per partition of each source topic: end offset - the reading
                         group's committed offset, both asked of the broker (connectors/kafka_lag)
    serve_metrics (task) /metrics, /healthz, /readyz on observability.host:port
    ready = broker_connected (the last end-offset round trip succeeded, recently)
          + tables_recovered (changelogs replayed, no rebalance under way)
          + baseline_loaded

Imported by streams.worker.agents (so ``faust -A streams.worker.app worker`` gets it too).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from connectors.kafka_lag import LagProbe
from detectors.anomaly import Anomaly
from streams import metrics
from streams.worker.app import app, detection, kafka, settings

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
def lag_groups() -> dict[str, list[str]]:
    """Consumer group -> the topics it reads: stage one's own group (serving-logs), and
    Faust's (the stages after it)."""
    faust_topics = [kafka.topic("feature_summaries")]
    if settings.elasticsearch.url is not None:
        faust_topics.append(kafka.topic("anomalies"))
    return {f"{kafka.app_id}-stage-one": [kafka.topic("serving_logs")], kafka.app_id: faust_topics}


_probe: LagProbe | None = None


async def refresh_lag() -> None:
    """Ask the broker for each group's committed and end offsets; gauges updated."""
    global _last_broker_answer, _probe
    if _probe is None:
        probe = LagProbe(kafka)
        await probe.start()
        _probe = probe
    now: set[tuple[str, int]] = set()
    for group, topics in lag_groups().items():
        for (topic, partition), lag in (await _probe.lag(group, topics)).items():
            metrics.CONSUMER_LAG.labels(topic, str(partition)).set(lag)
            now.add((topic, partition))
    _last_broker_answer = time.monotonic()
    for topic, partition in _lagging - now:  # a topic gone: no stale series
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
        if _probe is not None:
            await _probe.stop()


def keys_of(anomaly: Anomaly) -> dict[str, str]:
    """The stable log keys of an anomaly (streams/logs.py)."""
    return {
        "model": anomaly.model,
        "feature": anomaly.feature,
        "anomaly_id": anomaly.id,
        "kind": anomaly.kind,
        "severity": anomaly.severity,
    }
