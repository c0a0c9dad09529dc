"""Feature-skew scenarios: serving traffic and the training pipeline's records for the same
requests, where the pipeline computes one feature differently for some of them."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from detectors.anomaly import Anomaly
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions, Result
from detectors.records import PipelineRecord, decode_record
from detectors.skew.monitor import FeatureSkewMonitor, SkewOptions
from streams.simulation.traffic import serving_records

START = 1_800_000_000.0
RATE = 100.0  # serving records per second
OPTIONS = SkewOptions(window_seconds=300.0, wait_seconds=60.0, horizon=600.0, max_pending=50_000)
LAG = 30.0  # the pipeline's record of a request comes this long after it was served

# what the pipeline makes of one request's features (index, features) -> features
Rewrite = Callable[[int, dict[str, Any]], dict[str, Any]]


def recomputed(i: int, features: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's own arithmetic for the same values: equal within float noise."""
    price = features["price"]
    score = features["score"]
    return features | {
        "price": None if price is None else price * 3.0 / 3.0 + 1e-12 * price,
        "score": math.fsum([score, 1e-9, -1e-9]),
    }


def cents_for(share: float) -> Rewrite:
    every = round(1 / share)
    return lambda i, f: (
        f | {"price": None if f["price"] is None else f["price"] * 100} if i % every == 0 else f
    )


def mapped(value: str, to: str) -> Rewrite:
    return lambda i, f: f | {"country": to} if f["country"] == value else f


@dataclass(slots=True)
class SkewRun:
    anomalies: list[Anomaly]
    joined: int
    windows: int

    def of_kind(self, kind: str) -> list[Anomaly]:
        return [a for a in self.anomalies if a.kind == kind]

    def describe(self) -> str:
        return "\n".join(a.message for a in self.anomalies[:10]) or "no anomaly"


def run_engine(baseline: Baseline, n: int, rewrite: Rewrite, seed: int = 3) -> SkewRun:
    """Serving records and (LAG later) the pipeline's records through the Engine, in event-time
    order, as the embedded runner receives them."""
    engine = Engine([baseline], EngineOptions(window_seconds=60.0), skew=OPTIONS)
    result = Result()
    waiting: list[PipelineRecord] = []
    for i, raw in enumerate(serving_records(n, rate=RATE, start=START, seed=seed)):
        record = decode_record(raw)
        while waiting and waiting[0].ts <= record.ts:
            result.extend(engine.pipeline(waiting.pop(0)))
        result.extend(engine.process(record))
        assert record.request_id is not None
        features = rewrite(i, dict(record.features))
        waiting.append(PipelineRecord(record.ts + LAG, record.request_id, "ctr", features))
    for late in waiting:
        result.extend(engine.pipeline(late))
    result.extend(engine.close_all())
    assert engine.skew is not None
    return SkewRun(result.anomalies, engine.skew.join.stats.joined, len(result.skew))


def agreeing_pairs(baseline: Baseline, n: int) -> Iterator[tuple[float, str, dict[str, Any]]]:
    """n requests (ts, request id, features), cycling 5,000 generated feature sets: a long run
    without the cost of generating a million records."""
    pool = [r["features"] for r in serving_records(5_000, rate=RATE, start=START, seed=9)]
    for i, features in zip(range(n), itertools.cycle(pool), strict=False):
        yield START + i / RATE, f"q{i:x}", features


def run_monitor(baseline: Baseline, n: int) -> SkewRun:
    """The monitor alone (the Engine's distribution tests are not what is measured here)."""
    from detectors.records import ServingRecord

    monitor = FeatureSkewMonitor(OPTIONS, lambda model: baseline)
    anomalies: list[Anomaly] = []
    windows = 0
    waiting: list[PipelineRecord] = []
    for i, (ts, request_id, features) in enumerate(agreeing_pairs(baseline, n)):
        while waiting and waiting[0].ts <= ts:
            found = monitor.pipeline(waiting.pop(0))
            anomalies += found.anomalies
            windows += len(found.reports)
        found = monitor.serving(ServingRecord(ts, "ctr", "3", features, 0.1, request_id))
        anomalies += found.anomalies
        windows += len(found.reports)
        waiting.append(PipelineRecord(ts + LAG, request_id, "ctr", recomputed(i, features)))
    for late in waiting:
        anomalies += monitor.pipeline(late).anomalies
    rest = monitor.close_all()
    return SkewRun(
        anomalies + rest.anomalies, monitor.join.stats.joined, windows + len(rest.reports)
    )
