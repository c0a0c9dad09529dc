"""The feature-skew judge (stage two of streams/worker/skew_agents.py): per model/version, the
joined pairs of skew-outcomes into ``detectors.skew.monitor.SkewWindows`` (the Engine's windows),
judged once every partition's two clocks passed a window by ``wait_seconds``; the state (with
the model's incident tracker and offset guards) in model_to_skew, written after what the batch
raised was acknowledged (a crash raises it again, with the same ids).
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson

from connectors.es_documents import skew_documents
from detectors.anomaly import Anomaly
from detectors.incidents.tracker import SKEW, Close, IncidentTracker, Step
from detectors.keyed_join import complete_watermark
from detectors.records import DecodeError
from detectors.skew.monitor import SkewReport, SkewWindows
from detectors.skew.state import from_plain, to_plain
from streams.skew_options import skew_options
from streams.worker import incidents as worker_incidents
from streams.worker.agents import SUMMARY_BATCH, in_batches
from streams.worker.app import detection, kafka, settings
from streams.worker.judging import Judge, judge_batch
from streams.worker.tables import decode_state, encode_state, model_to_skew
from streams.worker.topics import skew_outcomes

logger = logging.getLogger("logdrift.worker")
OPTIONS = skew_options(settings.feature_skew)
JUDGE_SECONDS = 1.0


@dataclass(slots=True)
class Judged:
    windows: SkewWindows
    guards: dict[str, int] = field(default_factory=dict)  # "s3"/"p3": side and partition
    clocks: dict[int, tuple[float, float]] = field(default_factory=dict)
    incidents: IncidentTracker = field(default_factory=lambda: worker_incidents.restore("", None))

    def tick(self, clocks: dict[str, list[float | None]]) -> float:
        for p, pair in clocks.items():
            old = self.clocks.get(int(p), (-math.inf, -math.inf))
            new = [-math.inf if t is None else t for t in pair]
            self.clocks[int(p)] = (max(old[0], new[0]), max(old[1], new[1]))
        # every partition of serving-logs (kafka.partitions) on both sides, as the runner's one
        return complete_watermark(self.clocks, kafka.partitions, self.windows.options.horizon)

    def fresh(self, side: str, partition: int, offset: int) -> bool:
        key = f"{side}{partition}"
        if offset <= self.guards.get(key, -1):
            return False
        self.guards[key] = offset
        return True


_judged: dict[str, tuple[bytes, Judged]] = {}


def _windows() -> SkewWindows:
    assert OPTIONS is not None
    return SkewWindows(OPTIONS, _baseline)


def _baseline(model: str) -> Any:
    try:
        return detection().engine.baseline_for(model)
    except DecodeError:
        return None


def _load(key: str) -> Judged:
    assert OPTIONS is not None
    stored = model_to_skew.get(key)
    cached = _judged.get(key)
    if cached is not None and stored is cached[0]:
        return cached[1]
    if stored is None:
        return Judged(_windows())
    try:
        plain = decode_state(zlib.decompress(stored))
        windows, notes = from_plain(OPTIONS, _baseline, plain["windows"])
        guards = {k: int(v) for k, v in plain["guards"].items()}
        clocks = {int(p): (float(a), float(b)) for p, (a, b) in plain["clocks"].items()}
    except (KeyError, TypeError, ValueError, zlib.error) as exc:
        logger.warning("%s: feature skew state unreadable (%s); judging afresh", key, exc)
        return Judged(_windows())
    for note in notes:
        logger.warning("%s: %s", key, note)
    return Judged(windows, guards, clocks, worker_incidents.restore(key, plain.get("incidents")))


async def judge_feature_skew(stream: AsyncIterable[Any]) -> None:
    within = max(kafka.batch_max_seconds, JUDGE_SECONDS)
    await in_batches(stream, SUMMARY_BATCH, within, partial(judge_batch, JUDGE), _judged.clear)


def _apply_bytes(
    judged: Judged, value: bytes, raised: list[Anomaly], reports: list[SkewReport]
) -> Step:
    return _apply(judged, orjson.loads(value), raised, reports)


def _save(key: str, judged: Judged) -> None:
    plain = {"v": 1, "windows": to_plain(judged.windows), "guards": judged.guards}
    plain["clocks"] = {str(p): list(pair) for p, pair in judged.clocks.items()}
    plain["incidents"] = judged.incidents.to_plain()
    raw = zlib.compress(encode_state(plain), 1)
    model_to_skew[key] = raw
    _judged[key] = (raw, judged)


JUDGE: Judge[Judged, SkewReport] = Judge(
    "the feature skew judge",
    skew_outcomes.get_topic_name(),
    _load,
    _apply_bytes,
    skew_documents,
    _save,
)


def _apply(
    judged: Judged, message: dict[str, Any], raised: list[Anomaly], reports: list[SkewReport]
) -> Step:
    """One outcome message into the judge; the incidents its anomalies and windows changed."""
    model = (str(message["model"]), str(message["version"]))
    for side, partition, offset, ts, serving, pipeline in message["pairs"]:
        if judged.fresh(side, partition, offset):
            judged.windows.add(model, ts, serving, pipeline)
    result = judged.windows.advance_to(judged.tick(message["clocks"]))
    raised += result.anomalies
    reports += result.reports
    closes = [Close(r.model, r.version, r.start, r.end, SKEW) for r in result.reports]
    return judged.incidents.apply(result.anomalies, closes)
