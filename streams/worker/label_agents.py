"""The worker's label path (on with ``labels.enabled``), beside the feature stages:

```
serving-logs + feedback (co-partitioned by request id)
  ──▶ join_labels    per partition: a prediction waits in pending_labels (changelog table,
                     expiry at the horizon, a cap) until its label arrives; emits, per batch and
                     model, the predictions counted and the labels joined
                     (feedback that does not decode ──▶ dead-letters)
  ──▶ label-outcomes (key = model/version)
  ──▶ judge_labels   per model: detectors.labels.monitor.LabelMonitor (windows by prediction time,
                     ADWIN and DDM on the error stream, slices, fairness) and, with a slice
                     key, detectors.labels.slice_features (each top-K slice's feature windows, the
                     join sending the values as slice windows count them); state in
                     model_to_labels
  ──▶ anomalies      concept_drift and fairness, indexed by stage three like every anomaly
  ──▶ incidents      its anomalies gathered by the model's incident tracker (in its state),
                     resolved by windows of labels (and by the slice windows it closes)
  ──▶ drift-scores   each judged window's metrics, coverage and latency, per model, slice and
                     group (only with elasticsearch.url), indexed by stage three
```

Replays after a crash are harmless: a prediction held again is the same entry, and the judge
drops outcome rows at or below the last offset it applied per source partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import zlib
from collections.abc import AsyncIterable, Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from faust.types import EventT, Message

from connectors.es_documents import label_documents
from detectors.anomaly import Anomaly
from detectors.baseline.calibrate_errors import calibrate_errors
from detectors.baseline.schema import PREDICTION
from detectors.incidents.feed import label_closes
from detectors.incidents.tracker import IncidentTracker, Step
from detectors.labels import slice_features as slice_state
from detectors.labels.feedback import PendingStats
from detectors.labels.join import Label, LabelJoin, Pending, watermark
from detectors.labels.monitor import LabelMonitor, LabelOptions, LabelReport, group_values
from detectors.labels.slice_features import SliceFeatures
from detectors.labels.slice_windows import observed
from detectors.labels.state import from_plain, to_plain
from detectors.records import (
    DecodeError,
    FeedbackRecord,
    FieldMapping,
    decode_feedback,
    decode_record,
)
from streams import metrics
from streams.label_options import label_options
from streams.worker import incidents as worker_incidents
from streams.worker import metrics as measured
from streams.worker.agents import (
    SUMMARY_BATCH,
    Stopping,
    dead_letter,
    declare_outputs,
    delivered,
    in_batches,
)
from streams.worker.app import app, detection, kafka, settings
from streams.worker.judging import Judge, judge_batch
from streams.worker.payloads import LabelOutcomes, LabelRow, PartitionClocks, PredictionRow
from streams.worker.tables import (
    decode_state,
    encode_state,
    model_to_labels,
    pending_labels,
    writing_to,
)
from streams.worker.topics import feedback, label_outcomes, predictions_and_labels, serving_logs

logger = logging.getLogger("logdrift.worker")
OPTIONS: LabelOptions | None = label_options(settings.labels)
FEEDBACK = feedback.get_topic_name()
JUDGE_SECONDS = 1.0
STATE_WARN_BYTES = 512 * 1024  # a changelog record over max.message.bytes (1 MB) fails


# ---- the join ----------------------------------------------------------------------------
class TableStore:
    """``detectors.keyed_join.PendingStore`` over a table (pending_labels; pending_features
    with the feature-skew join's codec). Deletes wait for the batch's outcomes to be
    acknowledged (``apply_deletes``): a batch read again after a crash finds its predictions
    still waiting and joins them again (the judge's offset guards drop the repeats); deleted
    first, its labels would have found nothing."""

    def __init__(
        self,
        table: MutableMapping[str, bytes],
        encode: Callable[[Any], bytes] | None = None,
        decode: Callable[[bytes], Any] | None = None,
    ) -> None:
        self.table = table
        self.encode = encode or encode_pending
        self.decode = decode or decode_pending
        self.deleting: dict[str, int] = {}  # key -> partition, deleted once the batch is done

    def get(self, key: str) -> Any:
        raw = None if key in self.deleting else self.table.get(key)
        return None if raw is None else self.decode(raw)

    def put(self, key: str, entry: Any) -> None:
        self.deleting.pop(key, None)
        with writing_to(entry.partition):
            self.table[key] = self.encode(entry)

    def delete(self, partition: int, key: str) -> None:
        self.deleting[key] = partition

    def forget_deletes(self) -> None:
        self.deleting.clear()

    def apply_deletes(self) -> None:
        for key, partition in self.deleting.items():
            with writing_to(partition), contextlib.suppress(KeyError):
                del self.table[key]
        self.deleting.clear()


def encode_pending(e: Pending | Label) -> bytes:
    if isinstance(e, Label):  # a human label has a fifth field; process feedback has four
        human = (e.source,) if e.source != "process" else ()
        raw = orjson.dumps((e.ts, e.partition, e.label, e.offset, *human))
    else:
        raw = orjson.dumps((e.ts, e.partition, e.prediction, e.model, e.version, e.slice, e.groups))
    # A copy: orjson's bytes keep their 4 KiB buffer (measured, orjson 3.13), and these stay
    # in the table until the label comes: 4 KiB per pending prediction instead of ~90 bytes.
    return bytes(memoryview(raw))


def decode_pending(raw: bytes) -> Pending | Label:
    fields = orjson.loads(raw)
    if len(fields) in (4, 5):
        return Label(*fields)
    ts, partition, prediction, model, version, slice_, groups = fields
    return Pending(ts, partition, prediction, model, version, slice_, tuple(groups))


@dataclass(slots=True)
class Outcomes:
    """One model's share of a join batch, as it is gathered: label-outcomes' message
    (streams.worker.payloads.LabelOutcomes) once the batch's clocks are known."""

    model: str
    version: str
    predictions: list[PredictionRow] = field(default_factory=list)
    labels: list[LabelRow] = field(default_factory=list)
    waited: list[LabelRow] = field(default_factory=list)  # labels met by their prediction

    def add_label(
        self, partition: int, offset: int, entry: Pending, label: Label, waited: bool
    ) -> None:
        joined = (entry.prediction, label.ts, label.label, label.source)
        row = LabelRow(partition, offset, entry.ts, entry.slice, entry.groups, *joined)
        (self.waited if waited else self.labels).append(row)

    def message(self, clocks: PartitionClocks) -> bytes:
        """With the join's partition clocks, for the judge's watermark."""
        rows = (self.predictions, self.labels, self.waited)
        return LabelOutcomes(self.model, self.version, *rows, clocks).encode()


ByModel = dict[tuple[str, str], Outcomes]  # a join batch's outcomes, by model and version


@dataclass(slots=True)
class Joiner:
    store: TableStore
    join: LabelJoin
    partitions: frozenset[int] | None = None  # the ones indexed; None: index them again
    skipped: int = 0  # predictions the join cannot hold: no request id, no number, bad record


_joiner: list[Joiner] = []


def joiner(options: LabelOptions) -> Joiner:
    """This worker's join, re-indexed from the table whenever its partitions changed."""
    if not _joiner:
        store = TableStore(pending_labels)
        _joiner.append(Joiner(store, LabelJoin(store, options.horizon, options.max_pending)))
    j = _joiner[0]
    topic = serving_logs.get_topic_name()
    owned = frozenset(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic)
    if owned != j.partitions:
        entries = ((k, decode_pending(v)) for k, v in pending_labels.items())
        j.join.rebuild(entries, set(owned))
        j.partitions = owned
        logger.info(
            "label join: %d pending predictions in partitions %s", j.join.live, sorted(owned)
        )
    return j


async def join_labels(stream: AsyncIterable[Any]) -> None:
    """Hold predictions, join labels; outcomes sent (and acknowledged) before the batch is done."""
    options = OPTIONS
    assert options is not None
    await in_batches(
        stream,
        kafka.batch_max_records,
        kafka.batch_max_seconds,
        lambda events: _join_batch(options, events),
        _forget_join,
    )


def _forget_join() -> None:
    """A batch not done: its deletes are dropped and the join re-read from the table."""
    if _joiner:
        _joiner[0].store.forget_deletes()
        _joiner[0].partitions = None


async def _join_batch(options: LabelOptions, events: Sequence[EventT[Any]]) -> None:
    j = joiner(options)
    by_model: ByModel = {}
    dead: list[Awaitable[Any]] = []
    labels = 0
    for event in events:
        m = event.message
        value = event.value if isinstance(event.value, bytes) else b""
        labels += m.topic == FEEDBACK
        problem = _join_one(options, j, m, value, by_model)
        if problem is not None:
            dead.append(dead_letter(m.key, value, *problem, f"{m.topic}/{m.partition}/{m.offset}"))
    clocks = j.join.clocks()
    await asyncio.gather(*dead)
    await _send_outcomes([(f"{m}/{v}", out.message(clocks)) for (m, v), out in by_model.items()])
    j.store.apply_deletes()
    measured.consumed(FEEDBACK, labels)
    measured.produced(label_outcomes.get_topic_name(), len(by_model))


def _join_one(
    options: LabelOptions, j: Joiner, m: Message, value: bytes, by_model: ByModel
) -> tuple[str, str] | None:
    """Hold a prediction or join a label; (reason, kind) to dead-letter it with. Never raises."""
    try:
        if m.topic == FEEDBACK:
            return _join_label(j.join, m, value, by_model)
        if not _hold(options, j.join, m, value, by_model):
            j.skipped += 1  # stage one dead-letters what does not decode; counted here
    except Exception as exc:  # a bug must not stop the join: keep the record, say why
        logger.exception("the label join failed on %s/%d/%d", m.topic, m.partition, m.offset)
        return repr(exc), "internal_error"
    return None


async def _send_outcomes(messages: list[tuple[str, bytes]]) -> None:
    """Every message acknowledged, retried with backoff: the batch is not done before (the
    judge's offset guards drop what a retry sends twice)."""
    delay = 0.5
    while True:
        try:
            await declare_outputs()
            sends = [label_outcomes.send(key=key, value=value) for key, value in messages]
            await asyncio.gather(*(delivered(send) for send in sends))
            return
        except Exception as exc:
            if app.should_stop:  # the batch is not done: read again at the next start
                raise Stopping from exc
            logger.exception(
                "could not send %d label outcomes; retrying in %.1f s", len(messages), delay
            )
            await asyncio.sleep(delay)
            delay = min(2 * delay, 30.0)


def _outcomes(by_model: ByModel, model: str, version: str) -> Outcomes:
    found = by_model.get((model, version))
    if found is None:
        found = by_model[(model, version)] = Outcomes(model, version)
    return found


def _hold(
    options: LabelOptions, join: LabelJoin, m: Message, value: bytes, by_model: ByModel
) -> bool:
    found = detection()
    try:
        record = decode_record(orjson.loads(value), found.mapping)
        baseline = found.engine.baseline_for(record.model)
    except (orjson.JSONDecodeError, DecodeError):
        return False
    score = record.prediction
    if record.request_id is None or isinstance(score, bool) or not isinstance(score, int | float):
        return False
    slice_ = record.slice.get(options.slice_key) if options.slice_key else None
    groups = group_values(baseline, record, options.groups)
    version = record.version
    partition, offset = m.partition, m.offset
    entry = Pending(record.ts, partition, float(score), record.model, version, slice_, groups)
    waited = join.hold(record.request_id, entry)
    out = _outcomes(by_model, record.model, version)
    values = None
    if options.slice_key:
        values = observed(baseline, {**record.features, PREDICTION: record.prediction})
    out.predictions.append(PredictionRow(partition, offset, record.ts, slice_, groups, values))
    if waited is not None:
        out.add_label(partition, offset, entry, waited, waited=True)
    return True


def read_label(m: Message, value: bytes, mapping: FieldMapping) -> FeedbackRecord:
    """A feedback record; one without a time of its own takes the broker's (Faust's message
    timestamps are in seconds)."""
    return decode_feedback(orjson.loads(value), mapping, default_ts=m.timestamp)


def _join_label(
    join: LabelJoin, m: Message, value: bytes, by_model: ByModel
) -> tuple[str, str] | None:
    """Join one label; or (reason, kind) to dead-letter it with."""
    try:
        label = read_label(m, value, detection().mapping)
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {exc}", "not_json"
    except DecodeError as exc:
        return str(exc), f"{exc.field}: {exc.problem}"[:80]
    waiting = Label(label.ts, m.partition, label.label, m.offset, label.source)
    entry = join.label(label.request_id, waiting)
    if entry is not None:
        _outcomes(by_model, entry.model, entry.version).add_label(
            m.partition, m.offset, entry, waiting, waited=False
        )
    return None


# ---- the judge ---------------------------------------------------------------------------
@dataclass(slots=True)
class Judged:
    """One model's label judge: the monitor and the last offset applied per source partition."""

    monitor: LabelMonitor
    # "p3": predictions of partition 3; "l3": labels read there; "w3": labels met by a prediction
    guards: dict[str, int] = field(default_factory=dict)
    clocks: dict[int, tuple[float, float]] = field(default_factory=dict)  # the joins' partitions
    features: SliceFeatures | None = None  # per-slice feature windows, when slices are on
    incidents: IncidentTracker = field(default_factory=lambda: worker_incidents.restore("", None))

    def tick(self, clocks: PartitionClocks) -> float:
        """Merge a message's partition clocks; the watermark every partition has passed."""
        for p, new in clocks.items():
            old = self.clocks.get(p, (-math.inf, -math.inf))
            self.clocks[p] = (max(old[0], new[0]), max(old[1], new[1]))
        return watermark(self.clocks)

    def predicted_until(self) -> float:
        """What every partition's predictions have passed, or ``kafka.max_lateness`` behind the
        newest (as stage two's watermark): the per-slice feature windows close up to here."""
        seen = [p for p, _ in self.clocks.values() if p > -math.inf]
        return max(min(seen), max(seen) - kafka.max_lateness) if seen else -math.inf

    def fresh(self, kind: str, partition: int, offset: int) -> bool:
        key = f"{kind}{partition}"
        if offset <= self.guards.get(key, -1):
            return False
        self.guards[key] = offset
        return True


_judged: dict[str, tuple[bytes, Judged]] = {}


def _load(options: LabelOptions, key: str) -> Judged:
    stored = model_to_labels.get(key)
    cached = _judged.get(key)
    if cached is not None and stored is cached[0]:
        return cached[1]
    if stored is None:
        return Judged(LabelMonitor(options))
    try:
        plain = decode_state(zlib.decompress(stored))
        if plain.get("v") != 1:
            raise ValueError(f"unknown label state version {plain.get('v')!r}")
        monitor, notes = from_plain(options, plain["monitor"])
        guards = {k: int(v) for k, v in plain["guards"].items()}
        clocks = {int(p): (float(a), float(b)) for p, (a, b) in plain["clocks"].items()}
        features = None
        if options.slice_key and plain.get("slices"):
            saved = plain["slices"]
            features = slice_features(options, str(saved["model"]), str(saved["version"]))
            notes += slice_state.from_plain(features, saved)
    except (
        KeyError,
        TypeError,
        ValueError,
        zlib.error,
    ) as exc:  # never stuck on a state it cannot read
        logger.warning("%s: label state unreadable (%s); judging afresh", key, exc)
        return Judged(LabelMonitor(options))
    for note in notes:
        logger.warning("%s: %s", key, note)
    tracker = worker_incidents.restore(key, plain.get("incidents"))
    return Judged(monitor, guards, clocks, features, tracker)


def slice_features(options: LabelOptions, model: str, version: str) -> SliceFeatures:
    found = detection()
    baseline = found.engine.baseline_for(model)
    assert options.slice_key is not None
    return SliceFeatures(baseline, options.slice_key, found.step_for(model).options, model, version)


async def judge_labels(stream: AsyncIterable[Any]) -> None:
    """One owner per model/version; its state written once per batch, after the anomalies the
    batch raised were acknowledged (a crash raises them again, with the same ids)."""
    options = OPTIONS
    assert options is not None
    # A model's state is a few hundred KB of JSON (histograms of every open window and slice),
    # written once per batch: batches of at least a second keep that to a few percent of a core.
    within = max(kafka.batch_max_seconds, JUDGE_SECONDS)
    await in_batches(
        stream, SUMMARY_BATCH, within, partial(judge_batch, _judge(options)), _judged.clear
    )


def _judge(options: LabelOptions) -> Judge[Judged, LabelReport]:
    return Judge(
        "the label judge",
        label_outcomes.get_topic_name(),
        lambda key: _load(options, key),
        lambda judged, value, raised, reports: _apply(
            judged, LabelOutcomes.decode(value), raised, reports
        ),
        label_documents,
        _save,
    )


def _save(key: str, judged: Judged) -> None:
    clocks = {str(p): list(pair) for p, pair in judged.clocks.items()}
    plain = {"v": 1, "monitor": to_plain(judged.monitor), "guards": judged.guards}
    plain["incidents"] = judged.incidents.to_plain()
    if judged.features is not None:
        plain["slices"] = slice_state.to_plain(judged.features)
    raw = zlib.compress(encode_state(plain | {"clocks": clocks}), 1)  # ~4x smaller
    if len(raw) > STATE_WARN_BYTES:
        logger.warning(
            "%s: label state is %d bytes, near Kafka's 1 MB message limit: lower "
            "labels.slices.top_k or the group attributes, or wait_seconds",
            key,
            len(raw),
        )
    model_to_labels[key] = raw
    _judged[key] = (raw, judged)


def _apply(
    judged: Judged, message: LabelOutcomes, raised: list[Anomaly], reports: list[LabelReport]
) -> Step:
    """One outcome message into the judge; the incidents its anomalies and windows changed."""
    before = len(raised)
    sliced: list[tuple[str, str, float, float]] = []
    model = (message.model, message.version)
    m = judged.monitor
    late = judged.features.late if judged.features is not None else 0
    for p in message.predictions:
        if judged.fresh("p", p.partition, p.offset):
            label = m.slice_label(p.slice)
            m.predicted(model, p.ts, label, p.groups)
            if p.values is not None:  # slices on
                judged.features = judged.features or slice_features(m.options, *model)
                judged.features.observe(p.ts, label, p.values)
    for kind, rows in (("l", message.labels), ("w", message.waited)):
        for r in rows:
            if judged.fresh(kind, r.partition, r.offset):
                fb = FeedbackRecord(r.label_ts, "", r.label, r.source)
                slice_ = m.known_slice(r.slice)
                raised += m.labelled(model, r.ts, r.prediction, slice_, r.groups, fb).anomalies
    judged_now = m.advance_to(judged.tick(message.clocks))
    raised += judged_now.anomalies
    if judged.features is not None:
        still = set(judged.features.open)
        raised += judged.features.close_until(judged.predicted_until())
        width = judged.features.options.window_seconds
        sliced = [(*model, s, s + width) for s in sorted(still - set(judged.features.open))]
        if judged.features.late > late:
            logger.warning(
                "%s v%s: %d predictions came after their slice feature window closed and were "
                "left out of it (%d in all); kafka.max_lateness is %.0f s",
                *model,
                judged.features.late - late,
                judged.features.late,
                kafka.max_lateness,
            )
    reports += judged_now.reports
    closes = label_closes(judged_now.reports, sliced)
    return judged.incidents.apply(raised[before:], closes)


def _join_stats() -> tuple[PendingStats, int] | None:
    return (_joiner[0].join.stats, _joiner[0].join.live) if _joiner else None


if OPTIONS is not None:
    calibrate_errors(OPTIONS.budget)  # ~3 s, cached: at start, not in the first batch's loop
    metrics.watch_label_join(_join_stats)
    app.agent(predictions_and_labels, concurrency=1, name="join_labels")(join_labels)
    app.agent(label_outcomes, concurrency=1, name="judge_labels")(judge_labels)

    @app.timer(interval=kafka.stats_log_seconds)  # type: ignore[untyped-decorator]
    async def log_label_counters() -> None:
        if _joiner:
            s, j = _joiner[0].join.stats, _joiner[0]
            logger.info(
                "label join: pending=%d added=%d joined=%d expired=%d evicted=%d unmatched=%d "
                "replaced=%d skipped=%d",
                j.join.live,
                s.added,
                s.joined,
                s.expired,
                s.evicted,
                s.unmatched,
                s.replaced,
                j.skipped,
            )
