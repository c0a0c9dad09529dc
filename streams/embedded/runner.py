"""The embedded runner: one process, no Kafka, no Elasticsearch.

    fluent-logger / Fluentd out_forward --forward protocol--> ForwardServer
      --> decode_record --> Engine.process_batch, one batch per forward chunk; a chunk whose
          every entry decodes cleanly goes column by column instead (detectors/blocks.py,
          Engine.process_blocks: the same verdicts, no ServingRecord per entry)
          (a record with a label and no features is feedback: Engine.feedback joins it to
          the prediction logged with its request id, when labels are enabled)
          (a record under ``feature_skew.forward_tag`` is the pipeline's features of a
          request: Engine.pipeline joins it to the serving record, feature skew)
      --> IncidentTracker (detectors/incidents/tracker.py): anomalies are evidence, incidents page
      --> AnomalyStore (SQLite): anomalies, incidents, roll-ups and the tracker's state;
          one readable line on stdout per incident opened or resolved, and per closed window
      --> with Elasticsearch configured: the store's outbox --> a background shipper

A forward chunk is acknowledged only after its records are accounted, every anomaly they
raised is committed to the store and the records it accepted are in the journal
(streams/embedded/durable.py, connectors/journal.py): after ``kill -9`` the last checkpoint
and the journal rebuild the windows and detectors as they were. SIGTERM or SIGINT stops accepting,
lets in-flight chunks finish, judges every open window and stores the result: nothing acknowledged
is lost. Records stamped too far ahead of the clock or older than the horizon are dead-lettered
(detectors/event_time.py); feedback with labels off is counted and said once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from prometheus_client.registry import Collector

from connectors.es_incidents import incident_items
from connectors.forward import ForwardEvent
from connectors.forward_server import ForwardServer
from connectors.outbox import OutboxItem
from connectors.store import AnomalyStore, DeadLetter
from detectors.anomaly import iso
from detectors.blocks import decode_block
from detectors.engine import Engine, Result
from detectors.event_time import EventTimeError, EventTimeLimits, check_event_time
from detectors.incidents.feed import track
from detectors.incidents.tracker import Change, Incident, IncidentOptions, IncidentTracker
from detectors.labels.feedback import PendingStats
from detectors.labels.monitor import LabelReport
from detectors.privacy import redact
from detectors.records import (
    DecodeError,
    FieldMapping,
    ServingRecord,
    decode_feedback,
    decode_pipeline,
    decode_record,
    is_feedback,
)
from detectors.window_report import WindowReport
from streams import metrics
from streams.embedded.label_queue import Queued, RunnerQueue
from streams.skew_metrics import watch_skew_join

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class RunnerStats:
    records: int = 0
    dead_letters: int = 0
    anomalies: int = 0
    windows: int = 0
    labels: int = 0  # feedback records accounted
    pipeline: int = 0  # pipeline feature records accounted (feature skew)
    incidents_opened: int = 0
    incidents_resolved: int = 0
    feedback_ignored: int = 0  # feedback records that came with labels off
    replayed: int = 0  # records replayed from the journal at start
    queued_for_raters: int = 0  # serving records the runner put in the labelling queue
    dead_by_reason: dict[str, int] = field(default_factory=dict)


def _short_reason(exc: DecodeError) -> str:
    if isinstance(exc, EventTimeError):
        return exc.code
    return f"{exc.field}: {exc.problem.split(' (')[0]}"


LABELS_OFF = "labels are off: %d feedback records ignored; set labels.enabled"
# [default time, raw record] (+ PIPELINE for a pipeline feature record): what the journal keeps
# of an accepted record.
Entry = list[Any]
PIPELINE = "pipeline"


class Pipeline:
    """Decode, detect, store: the runner's step, without any socket (the check command and the
    tests drive it directly)."""

    def __init__(
        self,
        engine: Engine,
        store: AnomalyStore,
        mapping: FieldMapping,
        emit: Callable[[str], None] = print,
        documents: Callable[[Result], list[OutboxItem]] | None = None,
        incidents: IncidentOptions | None = None,
        every_anomaly: bool = False,
        event_time: EventTimeLimits | None = None,
        clock: Callable[[], float] = time.time,
        pipeline_tag: str | None = None,
        labelling: RunnerQueue | None = None,
        columnar: bool = True,
    ) -> None:
        self.engine = engine
        self.labelling = labelling  # fills the labelling queue as incidents open, when set
        # A chunk whose every entry decodes cleanly goes column by column (detectors/blocks.py).
        self.columnar = columnar
        self.pipeline_tag = pipeline_tag  # forward tag of pipeline feature records (skew on)
        self.store = store
        self.mapping = mapping
        self.emit = emit
        self.documents = documents  # what goes to the outbox for Elasticsearch, if anything
        self.every_anomaly = every_anomaly  # a line per anomaly too, not only per incident
        self.stats = RunnerStats()
        self.event_time = event_time  # None: event time is not checked against the clock
        self.clock = clock
        self.accepted: list[Entry] = []  # the last chunk's accepted records, for the journal
        self._quiet = False  # replaying the journal: what it prints was printed before
        self._told_labels_off = 0  # feedback ignored when that was last said
        self.tracker = _restored(store, incidents or IncidentOptions())
        # Dead letters keep the original record, less any sensitive value in it.
        self._sensitive = [
            (b.privacy_key, frozenset(n for n, r in b.references.items() if r.spec.sensitive))
            for b in engine.baselines.values()
        ]

    def handle(self, events: list[ForwardEvent]) -> Result:
        """One forward chunk: its serving records go to the Engine as one batch (cut before
        each label, which must find every prediction before it already held)."""
        result = Result()
        self.accepted = []
        metrics.record_in("forward", len(events))
        letters: list[DeadLetter] = []  # one transaction for the batch, not one each
        now = self.clock() if self.event_time is not None else None
        ignored = self.stats.feedback_ignored
        batch: list[tuple[ForwardEvent, ServingRecord]] = []
        if self._columns(events, now, result, letters):
            events = []  # taken whole, column by column
        for event in events:
            try:
                pipeline = event.tag == self.pipeline_tag
                if not pipeline and not is_feedback(event.record, self.mapping):
                    record = decode_record(event.record, self.mapping, default_ts=event.time)
                    self._check_time(record.ts, now)
                    batch.append((event, record))
                    continue
                self._process(batch, result, letters)
                if self._account(event.record, event.time, now, result, pipeline=pipeline):
                    kind = [PIPELINE] if pipeline else []
                    self.accepted.append([event.time, event.record, *kind])
            except DecodeError as exc:
                letters.append(self._dead_letter(event, exc))
        self._process(batch, result, letters)
        if letters:
            dropped = self.store.dropped_dead_letters
            self.store.put_dead_letters(letters)
            metrics.record_dead_letters_dropped(self.store.dropped_dead_letters - dropped)
        if self.stats.feedback_ignored > ignored:
            metrics.record_feedback_ignored(self.stats.feedback_ignored - ignored)
        self.publish(result)
        return result

    def _columns(
        self,
        events: list[ForwardEvent],
        now: float | None,
        result: Result,
        letters: list[DeadLetter],
    ) -> bool:
        """The chunk column by column when every entry is a serving record that decodes
        cleanly within the event-time bounds (no ServingRecord built); False, with nothing
        done, when any entry needs the exact path, which then takes the chunk record by
        record: the verdicts are the same either way."""
        if not (self.columnar and len(events) > 1):
            return False
        if self.pipeline_tag is not None and any(e.tag == self.pipeline_tag for e in events):
            return False
        raws = [e.record for e in events]
        groups = decode_block(raws, self.mapping, default_ts=[e.time for e in events])
        if groups is None:
            return False
        if now is not None and self.event_time is not None:
            for group in groups:
                low, high = min(group.ts), max(group.ts)
                if check_event_time(low, now, self.event_time) is not None:
                    return False
                if check_event_time(high, now, self.event_time) is not None:
                    return False
        found, refused = self.engine.process_blocks(groups)
        result.extend(found)
        bad = dict(refused)
        for i, event in enumerate(events):
            if i in bad:
                letters.append(self._dead_letter(event, bad[i]))
            else:
                self.accepted.append([event.time, event.record])
        if self.labelling is not None:  # its pool of recent records takes each one accepted
            taken = {i: r for g in groups for i, r in zip(g.index, g.records(), strict=True)}
            for i in sorted(taken.keys() - bad.keys()):
                self.labelling.offer(taken[i])
        self.stats.records += len(events) - len(bad)
        return True

    def _process(
        self,
        batch: list[tuple[ForwardEvent, ServingRecord]],
        result: Result,
        letters: list[DeadLetter],
    ) -> None:
        """The serving records gathered so far, to the Engine as one batch; what it accepted goes
        to the journal in the order it was taken."""
        if not batch:
            return
        found, refused = self.engine.process_batch([record for _, record in batch])
        result.extend(found)
        bad = dict(refused)
        for i, (event, record) in enumerate(batch):
            if i in bad:
                letters.append(self._dead_letter(event, bad[i]))
            else:
                self.accepted.append([event.time, event.record])
                if self.labelling is not None:
                    self.labelling.offer(record)
        self.stats.records += len(batch) - len(bad)
        batch.clear()

    def tell_labels_off(self, final: bool = False) -> None:
        """Say once that feedback is being ignored (the runner calls this on its one-second
        tick, so the count covers a first burst); at shutdown again only if more came since."""
        n = self.stats.feedback_ignored
        if n and (not self._told_labels_off or (final and n > self._told_labels_off)):
            logger.warning(LABELS_OFF, n)
            self._told_labels_off = n

    def replay(self, entries: list[Entry]) -> None:
        """Account records the journal kept (accepted before a crash): not checked against
        today's clock again, not counted as new, and nothing printed a second time."""
        result = Result()
        for default_ts, record, *kind in entries:
            with contextlib.suppress(DecodeError):  # accepted once, so it is accepted again
                pipeline = kind == [PIPELINE]
                self._account(record, float(default_ts), None, result, False, pipeline)
            self.stats.replayed += 1
        self._quiet = True
        try:
            self.publish(result)
        finally:
            self._quiet = False

    def _account(
        self,
        raw: Any,
        default_ts: float,
        now: float | None,
        result: Result,
        counted: bool = True,
        pipeline: bool = False,
    ) -> bool:
        """Decode one record and hand it to the engine; False when labels are off and it is
        feedback. Raises DecodeError for a record to dead-letter."""
        if pipeline:
            features = decode_pipeline(raw, self.mapping, default_ts=default_ts)
            self._check_time(features.ts, now)
            result.extend(self.engine.pipeline(features))
            self.stats.pipeline += counted
            return True
        if is_feedback(raw, self.mapping):
            if self.engine.labels is None:
                self.stats.feedback_ignored += counted
                return False
            label = decode_feedback(raw, self.mapping, default_ts=default_ts)
            self._check_time(label.ts, now)
            result.extend(self.engine.feedback(label))
            self.stats.labels += counted
            return True
        record = decode_record(raw, self.mapping, default_ts=default_ts)
        self._check_time(record.ts, now)
        result.extend(self.engine.process(record))
        if self.labelling is not None:
            self.labelling.offer(record)
        self.stats.records += counted
        return True

    def _check_time(self, ts: float, now: float | None) -> None:
        if now is not None and self.event_time is not None:
            problem = check_event_time(ts, now, self.event_time)
            if problem is not None:
                raise problem

    def _dead_letter(self, event: ForwardEvent, exc: DecodeError) -> DeadLetter:
        reason = _short_reason(exc)
        metrics.record_dead_letter(reason)
        metrics.record_out("dead-letters")
        self.stats.dead_letters += 1
        self.stats.dead_by_reason[reason] = self.stats.dead_by_reason.get(reason, 0) + 1
        record: object = event.record
        for key, names in self._sensitive:
            record = redact(record, self.mapping.features, names, key)
        return DeadLetter(
            reason=str(exc),
            raw=orjson.dumps(record, default=str),
            source=f"forward:{event.tag}",
            ts=event.time,
        )

    def publish(self, result: Result) -> None:
        """Commit anomalies, the incidents they opened, updated or resolved and the roll-ups
        of closed windows (and their outbox documents, in the same transaction) before anything
        is acknowledged, then tell the terminal: one line per incident opened or resolved."""
        step = track(self.tracker, result)
        incidents, state = step.incidents(), None
        if step.changes or step.rollups or result.anomalies:
            state = self.tracker.to_plain()
        outbox: list[OutboxItem] = []
        if self.documents is not None:
            outbox = self.documents(result) + incident_items(incidents, step.rollups)
        if result.anomalies or outbox or result.reports or state is not None:
            self.store.put(
                result.anomalies,
                outbox=outbox,
                reports=result.reports,  # window scores feed `logdrift report`
                incidents=incidents,
                rollups=step.rollups,
                tracker=state,
            )
        queued = self._queue_for_raters(step.changes, result.labels)
        self.stats.anomalies += len(result.anomalies)
        self.stats.windows += len(result.reports)
        metrics.record_anomalies(result.anomalies)
        metrics.record_out("anomalies", len(result.anomalies))
        metrics.record_windows(result.reports)
        if self._quiet:
            return
        if self.every_anomaly:
            for anomaly in result.anomalies:
                self.emit(anomaly.line())
        for change in step.changes:
            if change.action in ("opened", "resolved"):
                self.stats.incidents_opened += change.action == "opened"
                self.stats.incidents_resolved += change.action == "resolved"
                self.emit(f"{iso(_when(change.incident))} {change.incident.line()}")
        for report in result.reports:
            self.emit(window_line(report))
        for q in queued:
            self.emit(f"{iso(q.ts)} {q.line()}")
        for labelled in result.labels:
            self.emit(labelled.line())
        for skewed in result.skew:
            self.emit(skewed.line())

    def _queue_for_raters(self, changes: list[Change], labels: list[LabelReport]) -> list[Queued]:
        """Records for raters, from the ones just seen, for every incident that opened and every
        slice a judged window of labels found short of labels (after the incidents are
        committed: a crash between the two samples again on replay, a record once)."""
        if self.labelling is None:
            return []
        opened = [c.incident for c in changes if c.action == "opened"]
        queued = self.labelling.opened(opened) if opened else []
        queued += self.labelling.labelled(labels) if labels else []
        self.stats.queued_for_raters += sum(len(q.items) for q in queued)
        return queued


def _when(incident: Incident) -> float:
    return incident.resolved_at if incident.resolved_at is not None else incident.opened_at


def _restored(store: AnomalyStore, options: IncidentOptions) -> IncidentTracker:
    """The tracker a previous runner left in the store (its open incidents go on), or a new
    one when there is none or it does not load."""
    plain = store.tracker_state()
    if plain is None:
        return IncidentTracker(options)
    try:
        return IncidentTracker.from_plain(options, plain)
    except (KeyError, TypeError, ValueError) as exc:
        logger.warning("incident state in %s not loaded (%s); tracking afresh", store.path, exc)
        return IncidentTracker(options)


def window_line(report: WindowReport) -> str:
    version = f" v{report.version}" if report.version else ""
    late = f", {report.late:,} late" if report.late else ""
    if report.partial:
        late += " (partial: judged at shutdown on fewer records than a window needs)"
    flagged = sorted({a.feature for a in report.anomalies})
    verdict = f"anomalies on {', '.join(flagged)}" if flagged else "no anomaly"
    return (
        f"{iso(report.end)} window {report.model}{version} "
        f"{iso(report.start)}..{iso(report.end)}: {report.count:,} records{late}, {verdict}"
    )


class Background(Protocol):
    """A companion task (the Elasticsearch shipper): runs until ``done`` is set, then finishes
    its own work and returns."""

    async def run(self, done: asyncio.Event) -> None: ...


class Journalled(Protocol):
    """What makes an acknowledged chunk durable (streams/embedded/durable.py)."""

    def recover(self) -> int: ...
    def append(self) -> None: ...
    def maybe_checkpoint(self) -> None: ...
    def checkpoint(self) -> None: ...
    def close(self) -> None: ...


class EmbeddedRunner:
    def __init__(
        self,
        pipeline: Pipeline,
        server_factory: Callable[..., ForwardServer],
        idle_close_seconds: float,
        background: Background | None = None,
        endpoint: metrics.Endpoint | None = None,
        durable: Journalled | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.durable = durable  # None: acked once in memory (tests, the demo)
        self.background = background
        self.endpoint = endpoint  # /metrics, /healthz, /readyz: ready once the listener is up
        self.server = server_factory(self._on_events)
        self.idle_close_seconds = idle_close_seconds
        self._last_arrival = time.monotonic()
        self._stop = asyncio.Event()

    async def _on_events(self, events: list[ForwardEvent]) -> None:
        self._last_arrival = time.monotonic()
        self.pipeline.handle(events)
        if self.durable is not None:
            self.durable.append()  # on disk before the server acks the chunk

    def request_stop(self) -> None:
        self._stop.set()

    async def _close_idle_windows(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=1.0)
            if time.monotonic() - self._last_arrival >= self.idle_close_seconds:
                closed = self.pipeline.engine.close_until(float("inf"))
                self.pipeline.publish(closed)
                self._last_arrival = time.monotonic()
                if self.durable is not None and closed.reports:
                    self.durable.checkpoint()  # closing is not journalled: fold it in now
            if self.durable is not None:
                self.durable.maybe_checkpoint()
            self.pipeline.tell_labels_off()

    async def run(self, ready: Callable[[int], None] | None = None) -> RunnerStats:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        watched = await self._start_endpoint()
        if self.durable is not None:
            self.durable.recover()  # before the listener: nothing new lands on stale state
        await self.server.start()
        logger.info(
            "listening for the forward protocol on %s:%d", self.server.host, self.server.port
        )
        if self.endpoint is not None:
            self.endpoint.health.mark("listener_up")
        if ready is not None:
            ready(self.server.port)
        done = asyncio.Event()
        companion = asyncio.create_task(self.background.run(done)) if self.background else None
        idle = asyncio.create_task(self._close_idle_windows())
        await self._stop.wait()
        if self.endpoint is not None:
            self.endpoint.health.mark("listener_up", False)  # draining: send traffic elsewhere
        await idle
        await self.server.stop()  # in-flight chunks finish (and are acked) before this returns
        self.pipeline.publish(self.pipeline.engine.close_all())
        self.pipeline.tell_labels_off(final=True)
        if self.durable is not None:
            self.durable.checkpoint()  # the judged windows: a restart goes on from here
            self.durable.close()
        done.set()
        if companion is not None:
            await companion  # ships what the last windows produced, within its drain time
        if self.endpoint is not None:
            await self.endpoint.stop()
        for collector in watched:
            metrics.unwatch(collector)
        return self.pipeline.stats

    async def _start_endpoint(self) -> list[Collector]:
        """Serve metrics before the listener: readiness says "not yet" until it is up."""
        if self.endpoint is None:
            return []
        self.endpoint.health.mark("listener_up", False)
        await self.endpoint.start()
        engine = self.pipeline.engine  # its label monitor is replaced when a checkpoint loads

        def label_join() -> tuple[PendingStats, int] | None:
            labels = engine.labels
            return None if labels is None else (labels.pending.stats, len(labels.pending))

        def skew_join() -> tuple[PendingStats, int] | None:
            skew = engine.skew
            return None if skew is None else (skew.join.stats, skew.join.live)

        return [
            metrics.watch_forward(lambda: self.server.stats),
            metrics.watch_label_join(label_join),
            watch_skew_join(skew_join),
        ]
