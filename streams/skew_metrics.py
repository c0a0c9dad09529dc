"""Prometheus counters of the feature-skew join (runner and worker alike): what waits, and what
became of every serving and pipeline record joined by request id."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from detectors.labels.feedback import PendingStats
from streams.metrics import REGISTRY

OUTCOMES = ("joined", "expired", "evicted", "unmatched")


class SkewJoinCollector(Collector):
    def __init__(self, stats: Callable[[], tuple[PendingStats, int] | None]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        found = self._stats()
        if found is None:
            return
        stats, pending = found
        yield GaugeMetricFamily(
            "logdrift_pending_features",
            "Serving records waiting for the pipeline's features of the same request.",
            value=pending,
        )
        outcomes = CounterMetricFamily(
            "logdrift_feature_skew_join",
            "Serving and pipeline records by join outcome: joined; expired (past the horizon); "
            "evicted (by the cap); unmatched (a pipeline record with no serving record).",
            labels=["outcome"],
        )
        for outcome in OUTCOMES:
            outcomes.add_metric([outcome], getattr(stats, outcome))
        yield outcomes


def watch_skew_join(stats: Callable[[], tuple[PendingStats, int] | None]) -> Collector:
    collector = SkewJoinCollector(stats)
    REGISTRY.register(collector)
    return collector
