"""The worker's agents, in the order data flows through them:

```
Fluentd / forward-to-kafka ──▶ serving-logs (key = request id)
  ──▶ profile_records   per partition: decode, validate (detectors.stages.observe), micro-batch
  ──▶ feature-summaries (key = model/version/feature)          bad input ──▶ dead-letters
  ──▶ compare_windows   per feature: merge partitions in event time, windows, change detectors,
                        comparisons (detectors.feature_state.CompareStep); state in feature_to_state
  ──▶ anomalies         (key = anomaly id)
  ──▶ index_anomalies   (only with elasticsearch.url) bulk-index Anomaly documents; a batch is
                        acked once Elasticsearch acknowledged or refused every document, so
                        offsets wait out an outage; refused documents ──▶ dead-letters
```

Agents run with concurrency 1: offsets are committed in order, after the producer flushed what
the acked events caused. Nothing a record contains stops an agent: bad input is dead-lettered
and counted, and an unexpected error in a step is logged, dead-lettered and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from faust.types import EventT

from connectors.elasticsearch import ElasticSink
from detectors.feature_state import FeatureState
from detectors.records import DecodeError, decode_record
from detectors.stages import SummaryBuilder, observe, summary_key
from detectors.state_codec import from_plain, to_plain
from streams.app import app, detection, kafka, settings
from streams.indexing import WITHIN_SECONDS, Source, documents_of, new_sink, source_of
from streams.tables import decode_state, encode_state, feature_to_state
from streams.topics import FeatureSummary, anomalies, dead_letters, feature_summaries, serving_logs

logger = logging.getLogger("logdrift.worker")


@dataclass(slots=True)
class Counters:
    records: int = 0
    summaries: int = 0
    anomalies: int = 0
    indexed: int = 0
    dead_letters: int = 0
    dead_by_reason: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        reasons = ", ".join(f"{r}={n}" for r, n in sorted(self.dead_by_reason.items()))
        return (
            f"records={self.records} summaries={self.summaries} anomalies={self.anomalies} "
            f"indexed={self.indexed} dead_letters={self.dead_letters}"
            + (f" ({reasons})" if reasons else "")
        )


counters = Counters()


async def _dead_letter(key: bytes | None, value: bytes, reason: str, kind: str, where: str) -> None:
    counters.dead_letters += 1
    counters.dead_by_reason[kind] = counters.dead_by_reason.get(kind, 0) + 1
    headers = [
        ("logdrift.reason", reason.encode()),
        ("logdrift.kind", kind.encode()),
        ("logdrift.source", where.encode()),
    ]
    await dead_letters.send(key=key, value=value, headers=headers)


def _source_partitions() -> int:
    """How many partitions serving-logs has: stage two waits for each one's watermark."""
    known = app.consumer.topic_partitions(serving_logs.get_topic_name())
    return int(known) if known else kafka.partitions


async def _profile_one(
    event: EventT[Any], builders: dict[int, SummaryBuilder], partitions: int
) -> None:
    message = event.message
    where = f"{message.topic}/{message.partition}/{message.offset}"
    raw = message.value if isinstance(message.value, bytes) else b""
    found = detection()
    try:
        record = decode_record(orjson.loads(raw), found.mapping)
        baseline = found.engine.baseline_for(record.model)
    except orjson.JSONDecodeError as exc:
        await _dead_letter(message.key, raw, f"not JSON: {exc}", "not_json", where)
        return
    except DecodeError as exc:
        await _dead_letter(message.key, raw, str(exc), f"{exc.field}: {exc.problem}"[:80], where)
        return
    builder = builders.get(message.partition)
    if builder is None:
        builder = builders[message.partition] = SummaryBuilder(message.partition, partitions)
    builder.add(message.offset, record, observe(baseline, record))
    counters.records += 1


@app.agent(serving_logs, concurrency=1)
async def profile_records(stream: AsyncIterable[Any]) -> None:
    """Stage one. ``take_events`` acks a batch only after its summaries were handed to the
    producer, so a crash re-delivers the batch and stage two's offset guards drop repeats."""
    async for events in stream.take_events(kafka.batch_max_records, within=kafka.batch_max_seconds):  # type: ignore[attr-defined]
        await _profile_batch(events)


async def _profile_batch(events: Sequence[EventT[Any]]) -> None:
    builders: dict[int, SummaryBuilder] = {}
    partitions = _source_partitions()
    for event in events:
        try:
            await _profile_one(event, builders, partitions)
        except Exception as exc:  # a bug must not stop the stream: keep the record, say why
            logger.exception("stage one failed on a record")
            message = event.message
            await _dead_letter(
                message.key,
                bytes(message.value or b""),
                repr(exc),
                "internal_error",
                f"{message.topic}/{message.partition}/{message.offset}",
            )
    for builder in builders.values():
        for key, summary in builder.drain():
            await feature_summaries.send(key=key, value=FeatureSummary(**summary))
            counters.summaries += 1


# Decoded states by key, with the table value they came from: a value replaced by recovery or
# a standby (after a rebalance) is a different object, and then the state is decoded again.
_cache: dict[str, tuple[bytes, FeatureState]] = {}


def _state(key: str, summary: FeatureSummary) -> FeatureState:
    step = detection().step_for(summary.model)
    stored = feature_to_state.get(key)
    cached = _cache.get(key)
    if cached is not None and stored is cached[0]:
        return cached[1]
    if stored is None:
        return step.new_state(summary.model, summary.version, summary.feature)
    state, notes = from_plain(step, decode_state(stored))
    for note in notes:
        logger.warning("%s: %s", key, note)
    return state


@app.agent(feature_summaries, concurrency=1)
async def compare_windows(summaries: AsyncIterable[FeatureSummary]) -> None:
    """Stage two: one owner per model/version/feature (the topic's key)."""
    async for summary in summaries:
        key = summary_key(summary.model, summary.version, summary.feature)
        try:
            await _compare(key, summary)
        except Exception as exc:
            logger.exception("stage two failed on a summary of %s", key)
            await _dead_letter(
                key.encode(), orjson.dumps(summary.asdict()), repr(exc), "internal_error", key
            )


async def _compare(key: str, summary: FeatureSummary) -> None:
    state = _state(key, summary)
    found = detection().step_for(summary.model).receive(state, summary.asdict())
    # Anomalies are acknowledged by the broker before the state that raised them is written:
    # a crash in between re-raises them on replay, with the same ids (they overwrite).
    sent = [await anomalies.send(key=a.id, value=orjson.dumps(a.to_dict())) for a in found]
    if sent:
        await asyncio.gather(*sent)
        counters.anomalies += len(sent)
        for a in found:
            logger.info("anomaly %s %s", a.id, a.line())
    raw = encode_state(to_plain(state))
    feature_to_state[key] = raw
    _cache[key] = (raw, state)


async def index_anomalies(stream: AsyncIterable[Any]) -> None:
    """Stage three (registered below only when ``elasticsearch.url`` is set). The body returns
    only once every document is acknowledged or refused: while Elasticsearch is down it waits
    (``ElasticSink`` retries), and the batch's offsets are not committed."""
    sink: ElasticSink | None = None
    es = settings.elasticsearch
    try:
        async for events in stream.take_events(es.bulk_size, within=WITHIN_SECONDS):  # type: ignore[attr-defined]
            if sink is None:
                try:
                    sink = new_sink(es)
                except Exception as exc:  # a CA file that does not load: say so per batch
                    logger.exception("stage three cannot create its Elasticsearch client")
                    await _dead_letter_all(events, repr(exc))
                    continue
            await _index_batch(sink, events)
    finally:
        if sink is not None:
            with contextlib.suppress(Exception):
                await sink.close()


async def _index_batch(sink: ElasticSink, events: Sequence[EventT[Any]]) -> None:
    try:
        batch = documents_of(events)
        for source, reason, kind in batch.bad:
            await _dead_letter(source.key, source.value, reason, kind, source.where)
        if not batch.documents:
            return
        refused = await sink.index_anomalies(batch.documents)
        counters.indexed += len(batch.documents) - len(refused)
        for rejection in refused:
            fallback = Source(rejection.doc.doc_id.encode(), rejection.doc.body, "index")
            source = batch.sources.get(rejection.doc.doc_id, fallback)
            await _dead_letter(
                source.key, source.value, rejection.reason, "elasticsearch_refused", source.where
            )
    except Exception as exc:  # never raise out of the agent: it would ack without indexing
        logger.exception("stage three failed on a batch of %d anomalies", len(events))
        await _dead_letter_all(events, repr(exc))


async def _dead_letter_all(events: Sequence[EventT[Any]], reason: str) -> None:
    for event in events:
        source = source_of(event)
        try:
            await _dead_letter(source.key, source.value, reason, "internal_error", source.where)
        except Exception:
            logger.exception("could not dead-letter %s", source.where)


if settings.elasticsearch.url is not None:
    app.agent(anomalies, concurrency=1, name="index_anomalies")(index_anomalies)


@app.timer(interval=kafka.stats_log_seconds)  # type: ignore[untyped-decorator]
async def log_counters() -> None:
    logger.info("counters: %s", counters.line())


@app.task  # type: ignore[untyped-decorator]
async def announce_assignment() -> None:
    """One line per settled assignment: tests and operators wait for it."""
    announced: frozenset[str] = frozenset()
    while not app.should_stop:
        await asyncio.sleep(0.25)
        recovery = app.tables.recovery  # type: ignore[attr-defined]
        if app.rebalancing or not recovery.completed.is_set():
            continue
        assigned = frozenset(f"{tp.topic}/{tp.partition}" for tp in app.consumer.assignment())
        if assigned != announced:
            announced = assigned
            logger.info("ready: assigned %s", " ".join(sorted(assigned)) or "nothing")
