"""The worker's feature-skew path (on with ``feature_skew.enabled``), beside the label path:

```
serving-logs + pipeline-features (co-partitioned by request id)
  ──▶ join_feature_skew   per partition: detectors.keyed_join.KeyedJoin (the label join's
                          machinery) over pending_features (changelog table; horizon, cap);
                          emits, per batch and model, the joined pairs and the join's clocks
                          (pipeline records that do not decode ──▶ dead-letters)
  ──▶ skew-outcomes       (key = model/version)
  ──▶ judge_feature_skew  per model (streams/worker/skew_judge.py):
                          detectors.skew.monitor.SkewWindows,
                          the Engine's; state in model_to_skew, with the model's incident tracker
  ──▶ anomalies, incidents, drift-scores (with elasticsearch.url), as the other judges
```

Replays after a crash are harmless: a record held again is the same entry, and the judge drops
pairs at or below the last offset it applied per source partition and side.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterable, Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from faust.types import EventT, Message

from detectors.keyed_join import KeyedJoin
from detectors.records import DecodeError, decode_pipeline, decode_record
from detectors.skew.monitor import PipelineSide, ServingSide
from streams.skew_metrics import watch_skew_join
from streams.skew_options import skew_options
from streams.worker import metrics as measured
from streams.worker.agents import (
    Stopping,
    dead_letter,
    declare_outputs,
    delivered,
    in_batches,
)
from streams.worker.app import app, detection, kafka, settings
from streams.worker.label_agents import TableStore
from streams.worker.skew_judge import judge_feature_skew
from streams.worker.tables import pending_features
from streams.worker.topics import (
    pipeline_features,
    serving_and_pipeline,
    serving_logs,
    skew_outcomes,
)

logger = logging.getLogger("logdrift.worker")
OPTIONS = skew_options(settings.feature_skew)
PIPELINE = pipeline_features.get_topic_name()


# ---- the join (stage one) ---------------------------------------------------------------
def encode_side(e: ServingSide | PipelineSide) -> bytes:
    if isinstance(e, ServingSide):
        raw = orjson.dumps(("s", e.ts, e.partition, e.model, e.version, e.features))
    else:
        raw = orjson.dumps(("p", e.ts, e.partition, e.model, e.features))
    return bytes(memoryview(raw))  # a copy: orjson's bytes keep a 4 KiB buffer


def decode_side(raw: bytes) -> ServingSide | PipelineSide:
    side, *fields = orjson.loads(raw)
    return ServingSide(*fields) if side == "s" else PipelineSide(*fields)


@dataclass(slots=True)
class Joiner:
    store: TableStore
    join: KeyedJoin[ServingSide, PipelineSide]
    partitions: frozenset[int] | None = None  # the ones indexed; None: index them again
    skipped: int = 0  # serving records the join cannot hold: no request id, bad record
    model_mismatch: int = 0  # the two sides of a request name different models


_joiner: list[Joiner] = []
Pairs = dict[tuple[str, str], list[list[Any]]]  # a batch's joined pairs, by model and version


def joiner() -> Joiner:
    """This worker's join, re-indexed from the table whenever its partitions changed."""
    assert OPTIONS is not None
    if not _joiner:
        store = TableStore(pending_features, encode_side, decode_side)
        join = KeyedJoin(store, OPTIONS.horizon, OPTIONS.max_pending, ServingSide, PipelineSide)
        _joiner.append(Joiner(store, join))
    j = _joiner[0]
    topic = serving_logs.get_topic_name()
    owned = frozenset(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic)
    if owned != j.partitions:
        entries = ((k, decode_side(v)) for k, v in pending_features.items())
        j.join.rebuild(entries, set(owned))
        j.partitions = owned
        logger.info("feature skew join: %d pending in partitions %s", j.join.live, sorted(owned))
    return j


async def join_feature_skew(stream: AsyncIterable[Any]) -> None:
    await in_batches(
        stream, kafka.batch_max_records, kafka.batch_max_seconds, _join_batch, _forget_join
    )


def _forget_join() -> None:
    if _joiner:
        _joiner[0].store.forget_deletes()
        _joiner[0].partitions = None


async def _join_batch(events: Sequence[EventT[Any]]) -> None:
    j = joiner()
    pairs: Pairs = {}
    dead: list[Awaitable[Any]] = []
    read = 0
    for event in events:
        m = event.message
        value = event.value if isinstance(event.value, bytes) else b""
        read += m.topic == PIPELINE
        problem = _join_one(j, m, value, pairs)
        if problem is not None:
            dead.append(dead_letter(m.key, value, *problem, f"{m.topic}/{m.partition}/{m.offset}"))
    clocks = {
        str(p): [t if math.isfinite(t) else None for t in ts] for p, ts in j.join.clocks().items()
    }
    await asyncio.gather(*dead)
    messages = [
        (
            f"{m}/{v}",
            orjson.dumps({"v": 1, "model": m, "version": v, "pairs": rows, "clocks": clocks}),
        )
        for (m, v), rows in pairs.items()
    ]
    await _send(messages)
    j.store.apply_deletes()
    measured.consumed(PIPELINE, read)
    measured.produced(skew_outcomes.get_topic_name(), len(messages))


def _join_one(j: Joiner, m: Message, value: bytes, pairs: Pairs) -> tuple[str, str] | None:
    """Hold a serving record or join a pipeline record; (reason, kind) to dead-letter it with."""
    try:
        if m.topic == PIPELINE:
            return _join_pipeline(j, m, value, pairs)
        _hold(j, m, value, pairs)
    except Exception as exc:  # a bug must not stop the join: keep the record, say why
        logger.exception("the feature skew join failed on %s/%d/%d", m.topic, m.partition, m.offset)
        return repr(exc), "internal_error"
    return None


def _hold(j: Joiner, m: Message, value: bytes, pairs: Pairs) -> None:
    try:
        record = decode_record(orjson.loads(value), detection().mapping)
        detection().engine.baseline_for(record.model)
    except (orjson.JSONDecodeError, DecodeError):
        j.skipped += 1  # stage one dead-letters what does not decode; counted here
        return
    if record.request_id is None:
        j.skipped += 1
        return
    side = ServingSide(record.ts, m.partition, record.model, record.version, record.features)
    rows = pairs.setdefault((record.model, record.version), [])  # its clocks reach the judge
    found = j.join.hold(record.request_id, side)
    if found is not None:
        _pair(j, rows, ["s", m.partition, m.offset], side, found)


def _join_pipeline(j: Joiner, m: Message, value: bytes, pairs: Pairs) -> tuple[str, str] | None:
    try:
        record = decode_pipeline(orjson.loads(value), detection().mapping, default_ts=m.timestamp)
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {exc}", "not_json"
    except DecodeError as exc:
        return str(exc), f"{exc.field}: {exc.problem}"[:80]
    side = PipelineSide(record.ts, m.partition, record.model, record.features)
    found = j.join.match(record.request_id, side)
    if found is not None:
        rows = pairs.setdefault((found.model, found.version), [])
        _pair(j, rows, ["p", m.partition, m.offset], found, side)
    return None


def _pair(
    j: Joiner, rows: list[list[Any]], guard: list[Any], s: ServingSide, p: PipelineSide
) -> None:
    if s.model != p.model:
        j.model_mismatch += 1  # as FeatureSkewMonitor: not compared
        return
    rows.append([*guard, s.ts, s.features, p.features])


async def _send(messages: list[tuple[str, bytes]]) -> None:
    """Every message acknowledged, retried with backoff (the judge's guards drop repeats)."""
    delay = 0.5
    while True:
        try:
            await declare_outputs()
            await skew_outcomes.maybe_declare()
            sends = [skew_outcomes.send(key=key, value=value) for key, value in messages]
            await asyncio.gather(*(delivered(send) for send in sends))
            return
        except Exception as exc:
            if app.should_stop:
                raise Stopping from exc
            logger.exception(
                "could not send %d skew outcomes; retrying in %.1f s", len(messages), delay
            )
            await asyncio.sleep(delay)
            delay = min(2 * delay, 30.0)


if OPTIONS is not None:
    app.agent(serving_and_pipeline, concurrency=1, name="join_feature_skew")(join_feature_skew)
    app.agent(skew_outcomes, concurrency=1, name="judge_feature_skew")(judge_feature_skew)
    watch_skew_join(lambda: (_joiner[0].join.stats, _joiner[0].join.live) if _joiner else None)

    @app.timer(interval=kafka.stats_log_seconds)  # type: ignore[untyped-decorator]
    async def log_skew_counters() -> None:
        if _joiner:
            j = _joiner[0]
            s = j.join.stats
            logger.info(
                "feature skew join: pending=%d added=%d joined=%d expired=%d evicted=%d "
                "unmatched=%d replaced=%d skipped=%d model_mismatch=%d",
                j.join.live,
                s.added,
                s.joined,
                s.expired,
                s.evicted,
                s.unmatched,
                s.replaced,
                j.skipped,
                j.model_mismatch,
            )
