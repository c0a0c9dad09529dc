"""The embedded runner's road to Elasticsearch: the SQLite outbox, shipped in the background.

    Pipeline.publish --same transaction as the anomalies--> outbox (SQLite)
      --> Shipper --ElasticSink.bulk--> Elasticsearch --ack--> row marked shipped

Nothing waits on Elasticsearch: records are acknowledged to Fluentd once their anomalies and
documents are in SQLite. While Elasticsearch is away the outbox grows (bounded by disk) and its
size is logged every few seconds; when it is back the backlog drains, oldest first. A restarted
runner ships whatever the last one left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from config.settings import ElasticsearchSettings
from connectors import es_labelling
from connectors.elasticsearch import Backoff, BulkOutcome, Doc, ElasticSink, describe
from connectors.es_documents import (
    ANOMALIES,
    DRIFT_SCORES,
    label_documents,
    score_documents,
    skew_documents,
)
from connectors.outbox import Outbox, OutboxItem, OutboxRow
from connectors.store import AnomalyStore
from detectors.engine import Result

logger = logging.getLogger(__name__)

HOUSEKEEPING_SECONDS = 6 * 3600.0  # retention and outbox pruning: cheap, but no need to hurry
KEEP_SHIPPED_SECONDS = 24 * 3600.0  # shipped rows kept a day, to answer "was it sent?"


def documents_for(result: Result) -> list[OutboxItem]:
    """Every document a step produced: its anomalies and one drift score per feature and
    closed window (written whether or not anything fired, so dashboards see the quiet too)."""
    items = [
        OutboxItem(ANOMALIES, a.id, a.window_start, orjson.dumps(a.to_document()))
        for a in result.anomalies
    ]
    for report in result.reports:
        for doc_id, doc in score_documents(report):
            items.append(OutboxItem(DRIFT_SCORES, doc_id, report.start, orjson.dumps(doc)))
    for labelled in result.labels:
        for doc_id, doc in label_documents(labelled):
            items.append(OutboxItem(DRIFT_SCORES, doc_id, labelled.start, orjson.dumps(doc)))
    for skewed in result.skew:
        for doc_id, doc in skew_documents(skewed):
            items.append(OutboxItem(DRIFT_SCORES, doc_id, skewed.start, orjson.dumps(doc)))
    return items


@dataclass(frozen=True, slots=True)
class Mark:
    at: float  # monotonic seconds
    shipped: int
    backlog: int


@dataclass(slots=True)
class ShipperStats:
    shipped: int = 0
    rejected: int = 0
    peak_backlog: int = 0
    outages: int = 0


class Shipper:
    """Background task: outbox rows to Elasticsearch, acknowledged rows marked shipped."""

    documents = staticmethod(documents_for)  # what Pipeline.publish puts in the outbox

    def __init__(
        self,
        outbox: Outbox,
        sink: ElasticSink,
        batch_size: int = 500,
        drain_seconds: float = 10.0,
        idle_seconds: float = 0.5,
    ) -> None:
        self.outbox = outbox
        self.sink = sink
        self.batch_size = batch_size
        self.drain_seconds = drain_seconds
        self.idle_seconds = idle_seconds
        self.stats = ShipperStats()
        self.failing_since: float | None = None
        self.last_error: str | None = None
        self._backoff = Backoff(sink.policy.initial, sink.policy.maximum)
        self._recovered: Mark | None = None  # set while a backlog drains after an outage
        self._housekeeping_due = 0.0
        self._queue_ready = False  # the labelling queue's index is there (created if absent)

    async def run(self, done: asyncio.Event) -> None:
        """Ship until ``done`` is set and the outbox is empty, or ``drain_seconds`` after it."""
        reporter = asyncio.create_task(self._report_backlog())
        try:
            await self._install_templates()
            while not done.is_set():
                if not await self._step():
                    await self._pause(done)
            await self._drain()
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
            await self.sink.close()
            self._log_summary()

    async def _install_templates(self) -> None:
        try:
            await self.sink.setup()
        except Exception as exc:  # the first bulk installs them once the node answers
            self._failed(f"installing index templates: {describe(exc)}")

    async def _drain(self) -> None:
        """Last documents out before the runner exits, within ``drain_seconds``."""
        deadline = time.monotonic() + self.drain_seconds
        while self.outbox.backlog() and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                if not await asyncio.wait_for(self._step(), timeout=left):
                    await asyncio.sleep(min(self._backoff.next(), max(0.0, left)))

    async def _pause(self, done: asyncio.Event) -> None:
        delay = self._backoff.next() if self.failing_since is not None else self.idle_seconds
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=delay)

    async def _step(self) -> bool:
        """Ship one batch; True when the outbox moved. Never raises: a runner must not die of
        an unreachable or misbehaving Elasticsearch."""
        try:
            await self._housekeeping()
            rows = self.outbox.pending(self.batch_size)
            if not rows:
                self._succeeded()
                return False
            mark = self._mark()
            # While the node is away, one attempt per probe: this loop's backoff paces them,
            # and the moment it is back is seen (and measured) at once.
            retries = 0 if mark is not None else None
            await self._queue_index(rows)
            outcome = await self.sink.bulk([self._doc(r) for r in rows], max_retries=retries)
            self._record(rows, outcome)
        except Exception as exc:
            logger.exception("elasticsearch shipper: unexpected error; retrying")
            self._failed(repr(exc))
            return False
        if outcome.pending:
            self._failed(outcome.error or "not acknowledged")
            return bool(outcome.acked or outcome.rejected)
        self._succeeded(mark)
        return True

    def _mark(self) -> Mark | None:
        """Before a bulk that may end an outage: when it began, what had shipped, what waited."""
        if self.failing_since is None:
            return None
        return Mark(time.monotonic(), self.stats.shipped, self.outbox.backlog())

    def _doc(self, row: OutboxRow) -> Doc:
        item = row.item
        if es_labelling.is_queue(item.target):  # one index, rewritten by request id
            return Doc(self.sink.names.alias(item.target), item.doc_id, item.body, row.seq)
        return self.sink.doc(item.target, item.doc_id, item.window_start, item.body, row.seq)

    async def _queue_index(self, rows: Sequence[OutboxRow]) -> None:
        """The labelling queue's index (strict mapping) before its first documents go."""
        if not self._queue_ready and any(es_labelling.is_queue(r.item.target) for r in rows):
            await es_labelling.ensure_index(self.sink)
            self._queue_ready = True

    def _record(self, rows: Sequence[OutboxRow], outcome: BulkOutcome) -> None:
        self.outbox.mark_shipped([d.ref for d in outcome.acked], time.time())
        self.outbox.mark_rejected([(r.doc.ref, r.reason) for r in outcome.rejected])
        self.stats.shipped += len(outcome.acked)
        self.stats.rejected += len(outcome.rejected)

    def _failed(self, error: str) -> None:
        if self.failing_since is None:
            self.failing_since = time.monotonic()
            self.stats.outages += 1
            backlog = self.outbox.backlog()
            logger.warning(
                "elasticsearch unavailable (%s); keeping %d documents in the outbox", error, backlog
            )
        self.last_error = error
        self._recovered = None
        self.stats.peak_backlog = max(self.stats.peak_backlog, self.outbox.backlog())

    def _succeeded(self, mark: Mark | None = None) -> None:
        if self.failing_since is not None:
            mark = mark or Mark(time.monotonic(), self.stats.shipped, self.outbox.backlog())
            logger.warning(
                "elasticsearch is back after %.1f s; shipping a backlog of %d documents",
                mark.at - self.failing_since,
                mark.backlog,
            )
            self.failing_since = None
            self.stats.peak_backlog = max(self.stats.peak_backlog, mark.backlog)
            self._recovered = mark
            self._backoff.reset()
        if self._recovered is not None and self.outbox.backlog() == 0:
            logger.warning(
                "elasticsearch backlog drained: %d documents shipped in %.2f s after the outage",
                self.stats.shipped - self._recovered.shipped,
                time.monotonic() - self._recovered.at,
            )
            self._recovered = None

    async def _report_backlog(self) -> None:
        """While Elasticsearch is away, say every few seconds how much is waiting."""
        while True:
            await asyncio.sleep(self.sink.policy.log_every)
            if self.failing_since is None:
                continue
            backlog = self.outbox.backlog()
            self.stats.peak_backlog = max(self.stats.peak_backlog, backlog)
            logger.warning(
                "elasticsearch backlog: %d documents waiting in the outbox for %.0f s (%s)",
                backlog,
                time.monotonic() - self.failing_since,
                self.last_error,
            )

    async def _housekeeping(self) -> None:
        if time.monotonic() < self._housekeeping_due or self.failing_since is not None:
            return
        self.outbox.prune_shipped(time.time() - KEEP_SHIPPED_SECONDS)
        await self.sink.enforce_retention(datetime.now(UTC).date())
        self._housekeeping_due = time.monotonic() + HOUSEKEEPING_SECONDS  # after success only

    def _log_summary(self) -> None:
        counts = self.outbox.counts()
        logger.info(
            "elasticsearch shipper stopped: %d shipped, %d rejected, %d left in the outbox%s",
            self.stats.shipped,
            self.stats.rejected,
            counts.pending,
            " (they ship at the next start)" if counts.pending else "",
        )


def shipper_from_settings(settings: ElasticsearchSettings, store: AnomalyStore) -> Shipper | None:
    """The shipper for a configured Elasticsearch, or None when ``elasticsearch.url`` is null."""
    if settings.url is None:
        return None
    # One INFO line per bulk request, and one warning per failed connection attempt, would
    # drown the runner's output; the shipper's own backlog line says what matters.
    for name, level in (
        ("elastic_transport", logging.WARNING),
        ("elastic_transport.node_pool", logging.ERROR),
    ):
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(level)
    return Shipper(
        Outbox(store),
        ElasticSink.from_settings(settings),
        settings.bulk_size,
        settings.shutdown_drain_seconds,
    )
