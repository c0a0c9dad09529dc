"""Prometheus metrics and readiness of `logdrift run` and `logdrift worker`.

    Pipeline / agents --record_*()--> counters and gauges in REGISTRY
    ForwardServer.stats, the outbox ----read at scrape time (collectors)--^
    ElasticSink --BulkObserver--> bulk latency, failures, backlog
    REGISTRY + Health --connectors.http_metrics--> /metrics, /healthz, /readyz

Labels take values from small fixed sets (topics, anomaly kinds, severities, reason kinds,
models from the baselines): never a record's value, so the series count stays bounded and no
raw feature value reaches a scrape.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from config.settings import ObservabilitySettings
from connectors.elasticsearch import observe_bulks
from connectors.forward_server import ForwardStats
from connectors.http_metrics import MetricsServer
from detectors.anomaly import Anomaly
from detectors.labels.feedback import PendingStats
from detectors.window_report import WindowReport

# *_created series would double what a scrape carries, and nobody reads them
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)  # memory, CPU, open files: bounded memory is a promise

RECORDS_IN = Counter(
    "logdrift_records_in",
    "Records read, by topic (forward: the embedded runner's listener).",
    ["topic"],
    registry=REGISTRY,
)
RECORDS_OUT = Counter(
    "logdrift_records_out",
    "Records written, by topic (or the embedded runner's store).",
    ["topic"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "logdrift_dead_letters",
    "Records dead-lettered, by reason kind.",
    ["reason"],
    registry=REGISTRY,
)
DEAD_LETTERS_DROPPED = Counter(
    "logdrift_dead_letters_dropped",
    "Stored dead letters dropped, oldest first, past the dead_letters count or age bound.",
    registry=REGISTRY,
)
FEEDBACK_IGNORED = Counter(
    "logdrift_feedback_ignored",
    "Feedback records that arrived with labels off (set labels.enabled to join them).",
    registry=REGISTRY,
)
ANOMALIES = Counter(
    "logdrift_anomalies",
    "Anomalies raised, by kind and severity.",
    ["kind", "severity"],
    registry=REGISTRY,
)
WINDOWS = Counter(
    "logdrift_windows_closed", "Windows judged, by model.", ["model"], registry=REGISTRY
)
CONSUMER_LAG = Gauge(
    "logdrift_consumer_lag",
    "Records not yet committed: highwater - committed offset.",
    ["topic", "partition"],
    registry=REGISTRY,
)
ES_BULK_SECONDS = Histogram(
    "logdrift_elasticsearch_bulk_seconds",
    "Elasticsearch bulk request latency.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
ES_BULK_FAILURES = Counter(
    "logdrift_elasticsearch_bulk_failures",
    "Bulk requests that failed (transport: no answer; http: an error status for the request).",
    ["reason"],
    registry=REGISTRY,
)
ES_DOCUMENTS = Counter(
    "logdrift_elasticsearch_documents",
    "Documents by bulk outcome: acked, retried, rejected.",
    ["outcome"],
    registry=REGISTRY,
)
ES_BACKLOG = Gauge(
    "logdrift_elasticsearch_backlog",
    "Documents waiting for Elasticsearch to acknowledge them.",
    registry=REGISTRY,
)
READY = Gauge("logdrift_ready", "1 when every readiness check passes.", registry=REGISTRY)


# --- reason kinds: bounded label values ------------------------------------------------------
_CUT = re.compile(r"['\"(\[{:0-9]")


def reason_kind(reason: str) -> str:
    """A dead-letter reason without the values in it, fit for a label.

    >>> reason_kind("model: no baseline for model 'fraud' (have: ctr)")
    'model: no baseline for model'
    >>> reason_kind("features: expected an object, got list")
    'features: expected an object, got list'
    """
    head, sep, tail = reason.partition(": ")
    if sep and re.fullmatch(r"[\w.<>-]{1,40}", head):
        cut = _CUT.search(tail)
        return f"{head}: {(tail[: cut.start()] if cut else tail).strip()[:60]}".rstrip(": ")
    cut = _CUT.search(reason)
    return (reason[: cut.start()] if cut else reason).strip()[:60] or "other"


# --- small functions the runner and the agents call -----------------------------------------
def record_in(topic: str, n: int = 1) -> None:
    RECORDS_IN.labels(topic).inc(n)


def record_out(topic: str, n: int = 1) -> None:
    RECORDS_OUT.labels(topic).inc(n)


def record_dead_letter(reason: str) -> None:
    DEAD_LETTERS.labels(reason_kind(reason)).inc()


def record_dead_letters_dropped(n: int) -> None:
    if n:
        DEAD_LETTERS_DROPPED.inc(n)


def record_feedback_ignored(n: int) -> None:
    FEEDBACK_IGNORED.inc(n)


def record_anomalies(anomalies: Iterable[Anomaly]) -> None:
    for a in anomalies:
        ANOMALIES.labels(a.kind, a.severity).inc()


def record_windows(reports: Iterable[WindowReport]) -> None:
    for r in reports:
        WINDOWS.labels(r.model).inc()


class ElasticMetrics:
    """``connectors.elasticsearch.BulkObserver``: what every sink's bulk requests did."""

    def bulk_done(
        self, seconds: float, acked: int, retried: int, rejected: int, failure: str | None
    ) -> None:
        ES_BULK_SECONDS.observe(seconds)
        for outcome, n in (("acked", acked), ("retried", retried), ("rejected", rejected)):
            if n:
                ES_DOCUMENTS.labels(outcome).inc(n)
        if failure is not None:
            ES_BULK_FAILURES.labels(failure).inc()

    def backlog(self, documents: int) -> None:
        ES_BACKLOG.set(documents)


# --- collectors: state read at scrape time ---------------------------------------------------
class ForwardCollector(Collector):
    """The forward listener's own counters (``ForwardStats``), read when scraped."""

    def __init__(self, stats: Callable[[], ForwardStats | None]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        if stats is None:
            return
        yield CounterMetricFamily(
            "logdrift_forward_connections",
            "Forward-protocol connections accepted.",
            value=stats.connections_total,
        )
        yield GaugeMetricFamily(
            "logdrift_forward_connections_open",
            "Forward-protocol connections open now.",
            value=stats.connections_open,
        )
        yield CounterMetricFamily(
            "logdrift_forward_messages", "Forward-protocol messages handled.", value=stats.messages
        )
        rejected = CounterMetricFamily(
            "logdrift_forward_rejected",
            "Connections closed on a bad or oversized frame, a connection limit, a deadline, "
            "a failed handshake or a handler error, by reason.",
            labels=["reason"],
        )
        for reason, n in sorted(stats.rejected.items()):
            rejected.add_metric([reason], n)
        yield rejected
        bad = CounterMetricFamily(
            "logdrift_forward_bad_entries",
            "Entries of accepted frames that could not be decoded (dead-lettered), by reason.",
            labels=["reason"],
        )
        for reason, n in sorted(stats.bad_entries.items()):
            bad.add_metric([reason], n)
        yield bad


def watch_forward(stats: Callable[[], ForwardStats | None]) -> ForwardCollector:
    collector = ForwardCollector(stats)
    REGISTRY.register(collector)
    return collector


def unwatch(collector: Collector) -> None:
    REGISTRY.unregister(collector)


# --- readiness -------------------------------------------------------------------------------
@dataclass
class Health:
    """Named readiness checks; ready when every one passes. A check is a flag set by the code
    that knows (``mark``) or a function asked at each probe (``check``)."""

    flags: dict[str, bool] = field(default_factory=dict)
    probes: dict[str, Callable[[], bool]] = field(default_factory=dict)

    def mark(self, name: str, ok: bool = True) -> None:
        self.flags[name] = ok
        self.checks()

    def check(self, name: str, probe: Callable[[], bool]) -> None:
        self.probes[name] = probe

    def checks(self) -> dict[str, bool]:
        """Every check's answer now; also sets the ``logdrift_ready`` gauge."""
        result = dict(self.flags)
        for name, probe in self.probes.items():
            try:
                result[name] = bool(probe())
            except Exception:  # a probe that cannot answer says "not ready", never a 500
                result[name] = False
        READY.set(1 if _all(result) else 0)
        return result

    def ready(self) -> bool:
        return _all(self.checks())


def _all(checks: dict[str, bool]) -> bool:
    return bool(checks) and all(checks.values())


# --- one process's endpoint ------------------------------------------------------------------
class Endpoint:
    """The HTTP endpoint and readiness of one process (``metrics_enabled: false``: readiness
    is still kept, for the log, but nothing listens)."""

    def __init__(self, settings: ObservabilitySettings) -> None:
        self.health = Health()
        self.server = (
            MetricsServer(REGISTRY, self.health.checks, settings.host, settings.port)
            if settings.metrics_enabled
            else None
        )
        observe_bulks(ElasticMetrics())

    @property
    def url(self) -> str | None:
        return self.server.url if self.server is not None else None

    async def start(self) -> None:
        if self.server is not None:
            await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()


def watch_backlog(backlog: Callable[[], int]) -> None:
    """Read the Elasticsearch backlog from ``backlog`` at each scrape (the runner's outbox)."""

    def read() -> float:
        try:
            return float(backlog())
        except Exception:  # a closed store at shutdown: no number rather than a failed scrape
            return float("nan")

    ES_BACKLOG.set_function(read)


def runner_endpoint(settings: ObservabilitySettings, backlog: Callable[[], int] | None) -> Endpoint:
    """The embedded runner's endpoint, made once its baselines are loaded; ``backlog``: the
    outbox's, when Elasticsearch is configured."""
    endpoint = Endpoint(settings)
    endpoint.health.mark("baseline_loaded")
    if backlog is not None:
        watch_backlog(backlog)
    return endpoint


class LabelJoinCollector(Collector):
    """Predictions waiting for labels and what became of them (``PendingStats``), when scraped."""

    def __init__(self, stats: Callable[[], tuple[PendingStats, int] | None]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        found = self._stats()
        if found is None:
            return
        stats, pending = found
        yield GaugeMetricFamily(
            "logdrift_pending_predictions", "Predictions waiting for their label.", value=pending
        )
        outcomes = CounterMetricFamily(
            "logdrift_label_join",
            "Predictions and labels by join outcome: joined; expired (past the horizon); "
            "evicted (by the cap); unmatched (a label with no prediction waiting).",
            labels=["outcome"],
        )
        for outcome in ("joined", "expired", "evicted", "unmatched"):
            outcomes.add_metric([outcome], getattr(stats, outcome))
        yield outcomes


def watch_label_join(stats: Callable[[], tuple[PendingStats, int] | None]) -> Collector:
    collector = LabelJoinCollector(stats)
    REGISTRY.register(collector)
    return collector
