"""The worker's agents, in the order data flows through them:

```
Fluentd / forward-to-kafka ──▶ serving-logs (key = request id)
  ──▶ profile_records   per partition: decode, validate (detectors.stages.observe; a clean batch
                        column by column: detectors.blocks, observe_columns), micro-batch;
                        a task reading with a plain consumer group (connectors/kafka_source.py)
  ──▶ feature-summaries (key = model/version/feature)          bad input ──▶ dead-letters
  ──▶ compare_windows   per feature: merge partitions in event time, windows, change detectors,
                        comparisons (detectors.feature_state.CompareStep); state in feature_to_state
  ──▶ anomalies         (key = anomaly id)
  compare_windows: each feature's anomalies and closed windows into its incident tracker
                        (streams/worker/incidents.py; state in feature_to_incidents)
  ──▶ incidents         (key = incident id; each version overwrites the last)
  ──▶ index_incidents   (only with elasticsearch.url) into the incidents index
  ──▶ rollups           each feature's part of a closed window's roll-up
                        (streams/worker/rollup_agents.py)
  ──▶ index_anomalies   (only with elasticsearch.url) bulk-index Anomaly documents; a batch is
                        acked once Elasticsearch acknowledged or refused every document, so
                        offsets wait out an outage; refused documents ──▶ dead-letters
  compare_windows, with elasticsearch.url: each closed feature window's scores
  ──▶ drift-scores      (key = document id, the embedded runner's ids)
  ──▶ index_scores      the same, into the drift-score indices
```

Agents run with concurrency 1, and stage one handles one batch at a time: offsets are committed
in order, after the broker acknowledged what the handled records caused. Nothing a record
contains stops an agent: bad input is dead-lettered and counted, and an unexpected error in a
step is logged, dead-lettered and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from faust.types import EventT

from connectors.elasticsearch import ElasticSink
from connectors.es_documents import score_documents
from connectors.kafka_source import Batch, PartitionBatches, SourceRecord
from detectors.anomaly import Anomaly
from detectors.blocks import decode_block
from detectors.event_time import EventTimeLimits, check_event_time
from detectors.feature_state import FeatureState
from detectors.incidents.tracker import IncidentTracker, Step
from detectors.records import DecodeError, decode_record, is_feedback
from detectors.stages import (
    MAX_RECORD_BYTES,
    SummaryBuilder,
    largest_text,
    most_text,
    observe,
    observe_columns,
)
from detectors.state_codec import from_plain
from detectors.window_report import WindowReport
from streams.metrics import reason_kind, record_feedback_ignored
from streams.worker import incidents as worker_incidents
from streams.worker import metrics as measured  # metrics, /readyz, lag
from streams.worker.app import Detection, app, detection, kafka, settings
from streams.worker.indexing import (
    ANOMALIES,
    INCIDENTS,
    SCORES,
    WITHIN_SECONDS,
    Document,
    Kind,
    Source,
    documents_of,
    new_sink,
    source_of,
)
from streams.worker.payloads import ANOMALY, DRIFT_SCORE, ROLLUP
from streams.worker.tables import decode_state, feature_to_state, state_bytes
from streams.worker.topics import (
    anomalies,
    dead_letters,
    drift_scores,
    encode_parts,
    feature_summaries,
    incidents,
    label_outcomes,
    rollups,
    serving_logs,
    window_rollups,
)

logger = logging.getLogger("logdrift.worker")
T = TypeVar("T")


@dataclass(slots=True)
class Counters:
    records: int = 0
    summaries: int = 0
    applied: int = 0  # feature-summaries messages stage two took (its own idle markers too)
    anomalies: int = 0
    indexed: int = 0
    scores_indexed: int = 0
    incidents: int = 0  # versions of incidents published
    incidents_indexed: int = 0
    dead_letters: int = 0
    dead_by_reason: dict[str, int] = field(default_factory=dict)
    feedback_ignored: int = 0  # on serving-logs with labels off

    def line(self) -> str:
        reasons = ", ".join(f"{r}={n}" for r, n in sorted(self.dead_by_reason.items()))
        return (
            f"records={self.records} summaries={self.summaries} applied={self.applied} "
            f"anomalies={self.anomalies} "
            f"indexed={self.indexed} scores_indexed={self.scores_indexed} "
            f"incidents={self.incidents} incidents_indexed={self.incidents_indexed} "
            + (f"feedback_ignored={self.feedback_ignored} " if self.feedback_ignored else "")
            + f"dead_letters={self.dead_letters}"
            + (f" ({reasons})" if reasons else "")
        )


counters = Counters()
INDEXING = settings.elasticsearch.url is not None  # then windows' drift scores are published too
MAX_DEAD_VALUE_BYTES = 900_000  # a dead letter's value; over it, the head and a digest
MAX_REASON_CHARS = 4_096
MAX_STATE_BYTES = 768 * 1024  # a feature's state; the producer refuses messages over 1,000,000
EVENT_TIME = EventTimeLimits(
    settings.event_time.future_tolerance_seconds, settings.event_time.max_age_seconds
)
IGNORED = ("", "")  # feedback with labels off: counted and said once, not a dead letter
SUMMARY_BATCH = 1_000  # summaries per stage-two batch (a feature's state is written once per batch)


def dead_letter(
    key: bytes | None, value: bytes, reason: str, kind: str, where: str
) -> Awaitable[Any]:
    """Count and send one dead letter; await the result to wait for the broker's ack."""
    counters.dead_letters += 1
    measured.dead_lettered(kind)
    label = reason_kind(kind)  # without the model names or values in it: a bounded set
    counters.dead_by_reason[label] = counters.dead_by_reason.get(label, 0) + 1
    headers = [
        ("logdrift.reason", reason[:MAX_REASON_CHARS].encode()),
        ("logdrift.kind", kind.encode()),
        ("logdrift.source", where.encode()),
    ]
    if len(value) > MAX_DEAD_VALUE_BYTES:
        # The producer refuses messages over 1,000,000 bytes, and the broker takes a little
        # more: the head goes, with the original's size and digest (the original stays in its
        # topic, at the offset in logdrift.source).
        headers += [
            ("logdrift.original_bytes", str(len(value)).encode()),
            (
                "logdrift.original_blake2b",
                hashlib.blake2b(value, digest_size=16).hexdigest().encode(),
            ),
        ]
        value = value[:MAX_DEAD_VALUE_BYTES]
    return delivered(dead_letters.send(key=key, value=value, headers=headers))


async def delivered(sending: Awaitable[Awaitable[Any]]) -> Any:
    return await (await sending)


# ---- stage one ---------------------------------------------------------------------------
_stage_one: list[PartitionBatches] = []  # the running source, for the assignment line


@app.task  # type: ignore[untyped-decorator]
async def profile_records() -> None:
    """Stage one: serving-logs in micro-batches from a plain consumer group
    (connectors/kafka_source.py; a Faust stream costs ~150 us per event before any work). A
    batch's offsets are committed only after every summary and dead letter it caused was
    acknowledged, so a crash re-delivers it and stage two's offset guards drop the repeats."""
    source = PartitionBatches(kafka, serving_logs.get_topic_name(), f"{kafka.app_id}-stage-one")
    await source.start()
    _stage_one.append(source)
    try:
        while not app.should_stop:
            batch = await source.next_batch(kafka.batch_max_records, kafka.batch_max_seconds)
            if not batch:
                continue
            try:
                await _profile_batch(source, batch)
            except Exception:  # the producer, most likely: read the batch again, later
                logger.exception("stage one failed on a batch; it will be read again")
                source.rewind(batch)
                await asyncio.sleep(1.0)
    finally:
        _stage_one.clear()
        await source.stop()


async def _profile_batch(source: PartitionBatches, batch: Batch) -> None:
    found = detection()
    partitions = source.partitions() or kafka.partitions
    sending: list[Awaitable[Any]] = []
    good = 0
    summaries: list[tuple[str, dict[str, Any]]] = []
    for partition, records in batch.items():
        builder = SummaryBuilder(partition, partitions)
        if _profile_block(found, builder, records):
            good += len(records)
            summaries += builder.drain()
            continue
        for record in records:
            problem = _profile_one(found, builder, record)
            if problem is None:
                good += 1
                continue
            if problem is IGNORED:
                continue
            where = f"{record.topic}/{record.partition}/{record.offset}"
            sending.append(dead_letter(record.key, record.value or b"", *problem, where))
        summaries += builder.drain()
    parts = [(key, part) for key, summary in summaries for part in encode_parts(summary)]
    for key, part in parts:
        sending.append(delivered(feature_summaries.send(key=key, value=part)))
    await asyncio.gather(*sending)
    counters.records += good
    counters.summaries += len(parts)
    measured.consumed(serving_logs.get_topic_name(), sum(len(r) for r in batch.values()))
    measured.produced(feature_summaries.get_topic_name(), len(parts))
    await source.commit({p: records[-1].offset + 1 for p, records in batch.items()})


def _profile_block(found: Detection, builder: SummaryBuilder, messages: list[SourceRecord]) -> bool:
    """A partition's batch column by column (detectors/blocks.py, ``observe_columns``): True
    when it is in the builder; False, with nothing added, when any record needs the exact path
    (not JSON, not a clean serving record, out of the event-time bounds, a model without a
    baseline, too much text): then ``_profile_one`` takes each, and dead-letters what it must."""
    try:
        values = [orjson.loads(m.value or b"") for m in messages]
    except orjson.JSONDecodeError:
        return False
    groups = decode_block(values, found.mapping)
    if groups is None:
        return False
    now = time.time()
    observed = []
    try:
        for group in groups:
            if check_event_time(min(group.ts), now, EVENT_TIME) is not None:
                return False
            if check_event_time(max(group.ts), now, EVENT_TIME) is not None:
                return False
            baseline = found.engine.baseline_for(group.model)
            columns = observe_columns(baseline, group.features, group.predictions)
            if most_text(columns) > MAX_RECORD_BYTES:
                return False
            observed.append((group, columns))
    except DecodeError:
        return False
    for group, columns in observed:
        offsets = [messages[i].offset for i in group.index]
        builder.add_columns(offsets, group.model, group.version, group.ts, columns)
    return True


def _profile_one(
    found: Detection, builder: SummaryBuilder, message: SourceRecord
) -> tuple[str, str] | None:
    """Add one record to the builder; or (reason, kind) to dead-letter it with. Never raises."""
    try:
        value = orjson.loads(message.value or b"")
        if not settings.labels.enabled and is_feedback(value, found.mapping):
            return _labels_off()
        record = decode_record(value, found.mapping)
        late = check_event_time(record.ts, time.time(), EVENT_TIME)
        if late is not None:
            return str(late), late.code
        baseline = found.engine.baseline_for(record.model)
        observations = observe(baseline, record)
        size, feature = largest_text(observations)
        if size > MAX_RECORD_BYTES:
            return (
                f"{feature}: the record's category values and column names hold {size:,} bytes "
                f"of text, over the {MAX_RECORD_BYTES:,} a summary takes",
                "too_large",
            )
        builder.add(message.offset, record, observations)
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {exc}", "not_json"
    except DecodeError as exc:
        return str(exc), f"{exc.field}: {exc.problem}"[:80]
    except Exception as exc:  # a bug must not stop the stream: keep the record, say why
        logger.exception("stage one failed on a record")
        return repr(exc), "internal_error"
    return None


def _labels_off() -> tuple[str, str]:
    counters.feedback_ignored += 1
    record_feedback_ignored(1)
    if counters.feedback_ignored == 1:
        logger.warning("labels are off: 1 feedback records ignored; set labels.enabled")
    return IGNORED


# ---- stage two ---------------------------------------------------------------------------
# Decoded states by key, with the table value they came from: a value replaced by recovery or
# a standby (after a rebalance) is a different object, and then the state is decoded again.
_cache: dict[str, tuple[bytes, FeatureState]] = {}


def _state(key: str, summary: dict[str, Any]) -> FeatureState:
    model = str(summary["model"])
    step = detection().step_for(model)
    stored = feature_to_state.get(key)
    cached = _cache.get(key)
    if cached is not None and stored is cached[0]:
        return cached[1]
    if stored is None:
        return step.new_state(model, str(summary["version"]), str(summary["feature"]))
    state, notes = from_plain(step, decode_state(stored))
    for note in notes:
        logger.warning("%s: %s", key, note)
    return state


@app.agent(feature_summaries, concurrency=1)
async def compare_windows(stream: AsyncIterable[Any]) -> None:
    """Stage two: one owner per model/version/feature (the topic's key). A batch of summaries
    is grouped by key; each feature's state is written once per batch, after the anomalies
    its summaries raised were acknowledged (a crash re-raises them, with the same ids)."""
    await in_batches(stream, SUMMARY_BATCH, kafka.batch_max_seconds, _compare_batch, _forget)


def _forget() -> None:
    _cache.clear()
    worker_incidents.forget()


async def in_batches(
    stream: AsyncIterable[Any],
    size: int,
    within: float,
    handle: Callable[[Sequence[EventT[Any]]], Awaitable[None]],
    forget: Callable[[], None],
) -> None:
    """Each batch handled whole or not at all. A cancelled (rebalance) or stopped batch counts
    as not done: ``forget`` drops the states it changed (the table holds the last written
    ones) and its offsets stay uncommitted, so it is read again, by this worker after a
    rebalance or by the next start."""
    giving_up = False
    async for events in stream.take_events(size, within=within):  # type: ignore[attr-defined]
        if giving_up and app.should_stop:
            let_go(events)
            continue
        try:
            await handle(events)
        except (Stopping, asyncio.CancelledError) as exc:
            forget()
            let_go(events)
            if isinstance(exc, asyncio.CancelledError):
                raise
            giving_up = True
            logger.warning("stopping before what %d events raised was published", len(events))


async def _compare_batch(events: Sequence[EventT[Any]]) -> None:
    measured.consumed(feature_summaries.get_topic_name(), len(events))
    by_key: dict[str, list[EventT[Any]]] = {}
    for event in events:
        by_key.setdefault(str(event.key), []).append(event)
    raised: list[Anomaly] = []
    closed: list[WindowReport] = []
    states: dict[str, FeatureState] = {}
    encoded: dict[str, bytes] = {}
    trackers: dict[str, IncidentTracker] = {}
    changed = Step()
    for key, group in by_key.items():
        found: list[Anomaly] = []
        reports: list[WindowReport] = []
        moved: list[tuple[str, str, float, float]] = []
        state = await _compare_key(key, group, found, reports, moved)
        if state is not None:
            states[key] = state
            encoded[key] = _encoded(key, state, found, reports)  # may release held entries
            tracker = trackers[key] = worker_incidents.tracker_for(key)
            step = worker_incidents.feature_step(tracker, state.feature, found, reports, moved)
            changed.extend(step)
        raised += found
        closed += reports
    scores = [doc for report in closed for doc in score_documents(report)] if INDEXING else []
    found_incidents = worker_incidents.messages(changed.incidents())
    parts = [(f"{r.model}/{r.version}", ROLLUP.encode(r)) for r in changed.rollups]
    if raised or scores or found_incidents or parts:
        await publish(raised, scores, found_incidents, parts)
        counters.anomalies += len(raised)
        measured.raised(raised)
        for a in raised:
            logger.info("anomaly %s %s", a.id, a.line(), extra=measured.keys_of(a))
        counters.incidents += len(found_incidents)
        worker_incidents.log_changes(changed)
    for key, state in states.items():
        feature_to_state[key] = encoded[key]
        _cache[key] = (encoded[key], state)
        worker_incidents.store(key, trackers[key])
    counters.applied += len(events)


def _encoded(
    key: str, state: FeatureState, raised: list[Anomaly], closed: list[WindowReport]
) -> bytes:
    """The state's changelog value. Kafka refuses one over 1 MB, and a refused changelog write
    stops the worker: a state that large releases the entries it holds for event-time order
    first (they are applied now; a later one that is older counts as late)."""
    raw = state_bytes(state)
    if len(raw) > MAX_STATE_BYTES:
        held = len(state.buffer)
        raised += detection().step_for(state.model).flush(state, closed)
        logger.warning(
            "%s: state of %d bytes is near Kafka's 1 MB limit; released %d held entries early",
            key,
            len(raw),
            held,
        )
        raw = state_bytes(state)
    return raw


_declared: list[bool] = []  # the output topics, once per process


async def declare_outputs() -> None:
    """Create the worker's output topics (with its partition count) before their first send:
    left to the broker's auto-creation, concurrent first sends to two new topics (anomalies
    and incidents) could wait on metadata forever."""
    if not _declared:
        for topic in (anomalies, incidents, drift_scores, rollups, label_outcomes, window_rollups):
            await _unless_stopping(topic.maybe_declare(), settings.kafka.session_timeout)
        _declared.append(True)


async def publish(
    raised: list[Anomaly],
    scores: Sequence[Document] = (),
    found_incidents: Sequence[tuple[str, bytes]] = (),
    parts: Sequence[tuple[str, bytes]] = (),
) -> None:
    """Every anomaly, drift-score document, incident and roll-up part acknowledged by the
    broker, retried with backoff (the states are written only after this, so giving up would
    lose them); ``Stopping`` after the drain time."""
    delay = 0.5
    while True:
        try:
            await declare_outputs()
            sends = [anomalies.send(key=a.id, value=ANOMALY.encode(a)) for a in raised]
            sends += [drift_scores.send(key=i, value=DRIFT_SCORE.encode(doc)) for i, doc in scores]
            sends += [incidents.send(key=i, value=value) for i, value in found_incidents]
            sends += [rollups.send(key=k, value=value) for k, value in parts]
            gathered = asyncio.gather(*(delivered(send) for send in sends))
            await _unless_stopping(gathered, settings.elasticsearch.shutdown_drain_seconds)
            measured.produced(drift_scores.get_topic_name(), len(scores))
            return
        except Stopping:
            raise
        except Exception:  # same ids on the retry: anything sent twice overwrites itself
            logger.exception(
                "could not publish %d anomalies and %d drift scores; retrying in %.1f s",
                len(raised),
                len(scores),
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(2 * delay, 30.0)


async def _compare_key(
    key: str,
    events: list[EventT[Any]],
    raised: list[Anomaly],
    closed: list[WindowReport],
    moved: list[tuple[str, str, float, float]],
) -> FeatureState | None:
    """Apply one feature's summaries, in order; the state to write, if any was applied.
    ``moved``: the windows the unknown-columns owner closed (it makes no window report)."""
    state: FeatureState | None = None
    for event in events:
        value = event.value if isinstance(event.value, bytes) else b""
        try:
            summary = orjson.loads(value)
            if state is None:
                state = _state(key, summary)
            opened, start = state.opened, state.start
            step = detection().step_for(state.model)
            if summary.get("idle"):
                raised += step.idle(state, closed) if idle_still(state, summary) else []
            else:
                raised += step.receive(state, summary, closed)
                _heard[key] = time.monotonic()
            measured.window_moved(state.model, opened, start, state.start)
            moved += worker_incidents.window_passed(
                state.feature, state.model, state.version, opened, start, state.start
            )
        except Exception as exc:
            logger.exception("stage two failed on a summary of %s", key)
            await dead_letter(key.encode(), value, repr(exc), "internal_error", key)
    return state


# ---- idle close ----------------------------------------------------------------------------
# The embedded runner's rule for a stream that went quiet: after window.idle_close_seconds of
# wall clock without a record, its open windows close as Engine.close_until closes them. Only
# compare_windows may write a feature's state (a table is written inside its stream), so the
# timer sends the owner a close message on the feature's own key; the owner applies it unless
# a summary came in after it was sent (the offsets it names are no longer the state's).
_heard: dict[str, float] = {}  # key -> when its last summary was applied (monotonic seconds)


@app.timer(interval=1.0)  # type: ignore[untyped-decorator]
async def close_idle_windows() -> None:
    now = time.monotonic()
    for key, heard in list(_heard.items()):
        cached = _cache.get(key)
        if now - heard < settings.window.idle_close_seconds or cached is None:
            continue
        del _heard[key]  # one close message per quiet spell
        state = cached[1]
        if state.count or state.buffer:
            await delivered(feature_summaries.send(key=key, value=orjson.dumps(idle_of(state))))


def idle_of(state: FeatureState) -> dict[str, Any]:
    offsets = {str(p): o for p, o in state.offsets.items()}
    key = {"model": state.model, "version": state.version, "feature": state.feature}
    return {"idle": True, **key, "offsets": offsets}


def idle_still(state: FeatureState, message: dict[str, Any]) -> bool:
    return {str(p): o for p, o in state.offsets.items()} == message.get("offsets")


class Stopping(Exception):
    """The worker is stopping and Elasticsearch has not acknowledged within the drain time."""


def index_documents(kind: Kind) -> Callable[[AsyncIterable[Any]], Awaitable[None]]:
    """Stage three for one kind of document (registered below only when ``elasticsearch.url``
    is set). The body returns only once every document is acknowledged or refused: while
    Elasticsearch is down it waits (``ElasticSink`` retries), and the batch's offsets are not
    committed. On stop it waits at most ``elasticsearch.shutdown_drain_seconds``, then lets go
    of what is still unacknowledged without committing it: indexed at the next start (same
    ids), never lost, never a hang."""

    async def index(stream: AsyncIterable[Any]) -> None:
        sink: ElasticSink | None = None
        es = settings.elasticsearch
        giving_up = False
        try:
            async for events in stream.take_events(es.bulk_size, within=WITHIN_SECONDS):  # type: ignore[attr-defined]
                if giving_up and app.should_stop:
                    let_go(events)
                    continue
                if sink is None:
                    try:
                        sink = new_sink(es)
                    except Exception as exc:  # a CA file that does not load: say so per batch
                        logger.exception("stage three cannot create its Elasticsearch client")
                        await _dead_letter_all(events, repr(exc))
                        continue
                try:
                    await _index_batch(kind, sink, events, es.shutdown_drain_seconds)
                except asyncio.CancelledError:  # a rebalance restarts the agent: read it again
                    let_go(events)
                    raise
                except Stopping:
                    giving_up = True
                    let_go(events)
                    logger.warning(
                        "stopping with %d %s not acknowledged by Elasticsearch: their offsets "
                        "stay uncommitted, and they are indexed at the next start",
                        len(events),
                        kind.name,
                    )
        finally:
            if sink is not None:
                with contextlib.suppress(Exception):
                    await sink.close()

    return index


def let_go(events: Sequence[EventT[Any]]) -> None:
    """Mark messages done without acking them to the consumer: Faust's stop stops waiting for
    them (stream_wait_empty), and their offsets are never committed, so they are read again."""
    for event in events:
        event.message.acked = True


async def _unless_stopping(work: Awaitable[T], grace: float) -> T:
    """``work``'s result; ``Stopping`` once the worker has been stopping for ``grace`` s."""
    task = asyncio.ensure_future(work)
    stopping_since: float | None = None
    while True:
        done, _ = await asyncio.wait({task}, timeout=0.25)
        if done:
            return task.result()
        if app.should_stop:
            stopping_since = stopping_since or time.monotonic()
            if time.monotonic() - stopping_since >= grace:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                raise Stopping


async def _index_batch(
    kind: Kind, sink: ElasticSink, events: Sequence[EventT[Any]], grace: float
) -> None:
    try:
        measured.consumed(events[0].message.topic, len(events))
        batch = documents_of(kind, events)
        for source, reason, bad in batch.bad:
            await dead_letter(source.key, source.value, reason, bad, source.where)
        if not batch.documents:
            return
        refused = await _unless_stopping(kind.index(sink, batch.documents), grace)
        if kind is ANOMALIES:
            counters.indexed += len(batch.documents) - len(refused)
        elif kind is INCIDENTS:
            counters.incidents_indexed += len(batch.documents) - len(refused)
        else:
            counters.scores_indexed += len(batch.documents) - len(refused)
        for rejection in refused:
            fallback = Source(rejection.doc.doc_id.encode(), rejection.doc.body, "index")
            source = batch.sources.get(rejection.doc.doc_id, fallback)
            await dead_letter(
                source.key, source.value, rejection.reason, "elasticsearch_refused", source.where
            )
    except Stopping:
        raise
    except Exception as exc:  # never raise out of the agent: it would ack without indexing
        logger.exception("stage three failed on a batch of %d %s", len(events), kind.name)
        await _dead_letter_all(events, repr(exc))


async def _dead_letter_all(events: Sequence[EventT[Any]], reason: str) -> None:
    for event in events:
        source = source_of(event)
        try:
            await dead_letter(source.key, source.value, reason, "internal_error", source.where)
        except Exception:
            logger.exception("could not dead-letter %s", source.where)


if INDEXING:
    app.agent(anomalies, concurrency=1, name="index_anomalies")(index_documents(ANOMALIES))
    app.agent(drift_scores, concurrency=1, name="index_scores")(index_documents(SCORES))
    app.agent(incidents, concurrency=1, name="index_incidents")(index_documents(INCIDENTS))


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
        for source in _stage_one:
            assigned |= {f"{source.topic}/{p}" for p in source.assignment()}
        if assigned != announced:
            announced = assigned
            logger.info("ready: assigned %s", " ".join(sorted(assigned)) or "nothing")
