"""The embedded runner: one process, no Kafka, no Elasticsearch.

    fluent-logger / Fluentd out_forward --forward protocol--> ForwardServer
      --> decode_record --> Engine.process (the same step the Faust agents call)
          (a record with a label and no features is feedback: Engine.feedback joins it to
          the prediction logged with its request id, when labels are enabled)
      --> IncidentTracker (detectors/incidents.py): anomalies are evidence, incidents page
      --> AnomalyStore (SQLite): anomalies, incidents, roll-ups and the tracker's state;
          one readable line on stdout per incident opened or resolved, and per closed window
      --> with Elasticsearch configured: the store's outbox --> a background shipper

A forward chunk is acknowledged only after its records are accounted and every anomaly they
raised is committed to the store. SIGTERM or SIGINT stops accepting, lets in-flight chunks
finish, judges every open window and stores the result: nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import orjson
from prometheus_client.registry import Collector

from connectors.es_incidents import incident_items
from connectors.forward import ForwardEvent
from connectors.forward_server import ForwardServer
from connectors.outbox import OutboxItem
from connectors.store import AnomalyStore
from detectors.anomaly import iso
from detectors.engine import Engine, Result, WindowReport
from detectors.incident_feed import track
from detectors.incidents import Incident, IncidentOptions, IncidentTracker
from detectors.privacy import redact
from detectors.records import (
    DecodeError,
    FieldMapping,
    ServingRecord,
    decode_feedback,
    decode_record,
    is_feedback,
)
from streams import metrics

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class RunnerStats:
    records: int = 0
    dead_letters: int = 0
    anomalies: int = 0
    windows: int = 0
    labels: int = 0  # feedback records accounted
    incidents_opened: int = 0
    incidents_resolved: int = 0
    dead_by_reason: dict[str, int] = field(default_factory=dict)


def _short_reason(exc: DecodeError) -> str:
    return f"{exc.field}: {exc.problem.split(' (')[0]}"


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
    ) -> None:
        self.engine = engine
        self.store = store
        self.mapping = mapping
        self.emit = emit
        self.documents = documents  # what goes to the outbox for Elasticsearch, if anything
        self.every_anomaly = every_anomaly  # a line per anomaly too, not only per incident
        self.stats = RunnerStats()
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
        metrics.record_in("forward", len(events))
        batch: list[tuple[ForwardEvent, ServingRecord]] = []
        for event in events:
            try:
                if is_feedback(event.record, self.mapping):
                    label = decode_feedback(event.record, self.mapping, default_ts=event.time)
                    self._process(batch, result)
                    result.extend(self.engine.feedback(label))
                    self.stats.labels += 1
                    continue
                record = decode_record(event.record, self.mapping, default_ts=event.time)
                batch.append((event, record))
            except DecodeError as exc:
                self._dead_letter(event, exc)
        self._process(batch, result)
        self.publish(result)
        return result

    def _process(self, batch: list[tuple[ForwardEvent, ServingRecord]], result: Result) -> None:
        if not batch:
            return
        found, refused = self.engine.process_batch([record for _, record in batch])
        result.extend(found)
        for i, exc in refused:
            self._dead_letter(batch[i][0], exc)
        self.stats.records += len(batch) - len(refused)
        batch.clear()

    def _dead_letter(self, event: ForwardEvent, exc: DecodeError) -> None:
        reason = _short_reason(exc)
        metrics.record_dead_letter(reason)
        metrics.record_out("dead-letters")
        self.stats.dead_letters += 1
        self.stats.dead_by_reason[reason] = self.stats.dead_by_reason.get(reason, 0) + 1
        record: object = event.record
        for key, names in self._sensitive:
            record = redact(record, self.mapping.features, names, key)
        self.store.put_dead_letter(
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
        self.stats.anomalies += len(result.anomalies)
        self.stats.windows += len(result.reports)
        metrics.record_anomalies(result.anomalies)
        metrics.record_out("anomalies", len(result.anomalies))
        metrics.record_windows(result.reports)
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
        for labelled in result.labels:
            self.emit(labelled.line())


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


class EmbeddedRunner:
    def __init__(
        self,
        pipeline: Pipeline,
        server_factory: Callable[..., ForwardServer],
        idle_close_seconds: float,
        background: Background | None = None,
        endpoint: metrics.Endpoint | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.background = background
        self.endpoint = endpoint  # /metrics, /healthz, /readyz: ready once the listener is up
        self.server = server_factory(self._on_events)
        self.idle_close_seconds = idle_close_seconds
        self._last_arrival = time.monotonic()
        self._stop = asyncio.Event()

    async def _on_events(self, events: list[ForwardEvent]) -> None:
        self._last_arrival = time.monotonic()
        self.pipeline.handle(events)

    def request_stop(self) -> None:
        self._stop.set()

    async def _close_idle_windows(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=1.0)
            if time.monotonic() - self._last_arrival >= self.idle_close_seconds:
                self.pipeline.publish(self.pipeline.engine.close_until(float("inf")))
                self._last_arrival = time.monotonic()

    async def run(self, ready: Callable[[int], None] | None = None) -> RunnerStats:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        watched = await self._start_endpoint()
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
        labels = self.pipeline.engine.labels
        return [
            metrics.watch_forward(lambda: self.server.stats),
            metrics.watch_label_join(
                lambda: None if labels is None else (labels.pending.stats, len(labels.pending))
            ),
        ]
