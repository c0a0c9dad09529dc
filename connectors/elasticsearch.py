"""The Elasticsearch sink: templates, idempotent bulk indexing with bounded retries, retention.

    documents --> ElasticSink.bulk --> /_bulk (index operations, _id = document id)
                      |-- 2xx: acknowledged
                      |-- 429, 5xx, transport error: retried (capped exponential backoff)
                      '-- other 4xx: rejected with the reason, logged, handed back

Works against the integ-test distribution (no ingest pipelines, scripts, ILM or data streams;
``GET /`` answers 405, so nothing here calls ``info()`` or ``ping()``). Index templates are
(re)installed before the first bulk and after every outage, so a replaced node never gets
dynamically mapped indices. Credentials go to the client only; the transport logs requests with
the Authorization header hidden, and nothing here formats a secret into a message.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, cast

import orjson
from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch

from config.settings import ElasticsearchSettings
from connectors.es_documents import (
    ANOMALIES,
    DRIFT_SCORES,
    TARGETS,
    IndexNames,
    expired_indices,
    load_templates,
    score_documents,
    window_start_of,
)
from detectors.window_report import WindowReport

logger = logging.getLogger(__name__)


class ElasticError(Exception):
    """A request to Elasticsearch failed (refused, or the node unreachable): the client
    library's errors translated here, so that streams/ catches only this. The message is
    ``describe``'s one line (status and error type, never headers)."""


@dataclass(frozen=True, slots=True)
class Doc:
    """One index operation; ``ref`` is the caller's handle (an outbox sequence number)."""

    index: str
    doc_id: str
    body: bytes
    ref: int = 0


@dataclass(frozen=True, slots=True)
class Rejection:
    doc: Doc
    reason: str


@dataclass(slots=True)
class BulkOutcome:
    acked: list[Doc] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    pending: list[Doc] = field(default_factory=list)  # still failing after the retries
    error: str | None = None  # the last transient failure, for the log


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 5
    initial: float = 0.5
    maximum: float = 30.0
    log_every: float = 5.0


class BulkObserver(Protocol):
    """Told about every bulk request (for metrics); must be quick and must not raise."""

    def bulk_done(
        self, seconds: float, acked: int, retried: int, rejected: int, failure: str | None
    ) -> None: ...

    def backlog(self, documents: int) -> None: ...


class _Unobserved:
    def bulk_done(
        self, seconds: float, acked: int, retried: int, rejected: int, failure: str | None
    ) -> None:
        pass

    def backlog(self, documents: int) -> None:
        pass


_observer: BulkObserver = _Unobserved()


def observe_bulks(observer: BulkObserver) -> None:
    """Report every sink's bulk requests in this process to ``observer`` (one per process: the
    runner and the worker create sinks in several places)."""
    global _observer
    _observer = observer


class Backoff:
    """Capped exponential delays with jitter (so restarted clients do not retry in step).

    >>> b = Backoff(1.0, 4.0, jitter=False)
    >>> [b.next() for _ in range(4)]
    [1.0, 2.0, 4.0, 4.0]
    """

    def __init__(self, initial: float, maximum: float, jitter: bool = True) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"need 0 < initial <= maximum, got {initial} and {maximum}")
        self.initial, self.maximum, self.jitter = initial, maximum, jitter
        self.attempt = 0

    def next(self) -> float:
        delay = min(self.maximum, self.initial * 2.0 ** min(self.attempt, 60))
        self.attempt += 1
        return delay * random.uniform(0.5, 1.0) if self.jitter else delay

    def reset(self) -> None:
        self.attempt = 0


def client_from_settings(settings: ElasticsearchSettings) -> AsyncElasticsearch:
    """An async client with the configured auth and TLS; retries are ours, not the client's."""
    if settings.url is None:
        raise ValueError("elasticsearch.url is not set")
    auth: dict[str, Any] = {}
    api_key, password = settings.api_key_value(), settings.password_value()
    if api_key is not None:
        auth["api_key"] = api_key
    elif settings.username is not None:
        auth["basic_auth"] = (settings.username, password or "")
    if settings.ca_file is not None:
        auth["ca_certs"] = str(settings.ca_file)
    try:
        return AsyncElasticsearch(
            settings.url,
            request_timeout=settings.request_timeout,
            max_retries=0,
            retry_on_timeout=False,
            **auth,
        )
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: an unreadable CA file
        raise ValueError(f"elasticsearch settings (url, ca_file): {exc}") from None


class ElasticSink:
    """Indexes documents into daily indices; never drops one without saying so."""

    def __init__(
        self,
        client: AsyncElasticsearch,
        names: IndexNames | None = None,
        policy: RetryPolicy | None = None,
        retention_days: int = 30,
    ) -> None:
        self.client = client
        self.names = names or IndexNames()
        self.policy = policy or RetryPolicy()
        self.retention_days = retention_days
        self._templates_installed = False

    @classmethod
    def from_settings(cls, settings: ElasticsearchSettings) -> ElasticSink:
        policy = RetryPolicy(
            settings.max_retries,
            settings.backoff_initial,
            settings.backoff_max,
            settings.backlog_log_seconds,
        )
        return cls(
            client_from_settings(settings),
            IndexNames(settings.index_prefix),
            policy,
            settings.retention_days,
        )

    async def setup(self) -> list[str]:
        """Install (or update) every index template and bring the mappings of existing daily
        indices up to date (additive changes only); returns the template names. Raises
        ElasticError when the node refuses or cannot be reached."""
        try:
            return await self._install_templates()
        except (ApiError, TransportError) as exc:
            raise ElasticError(describe(exc)) from exc

    async def _install_templates(self) -> list[str]:
        templates = load_templates(self.names)
        for name, body in templates.items():
            await self.client.indices.put_index_template(name=name, body=body)
        for target, body in zip(TARGETS, templates.values(), strict=True):
            await self.client.indices.put_mapping(
                index=self.names.pattern(target),
                body=body["template"]["mappings"],
                allow_no_indices=True,
            )
        self._templates_installed = True
        return list(templates)

    def doc(self, target: str, doc_id: str, window_start: float, body: bytes, ref: int = 0) -> Doc:
        return Doc(self.names.daily(target, window_start), doc_id, body, ref)

    async def bulk(self, docs: Sequence[Doc], max_retries: int | None = None) -> BulkOutcome:
        """One batch, retrying what failed transiently up to ``max_retries`` times (default:
        the policy's)."""
        outcome = BulkOutcome()
        todo = list(docs)
        backoff = Backoff(self.policy.initial, self.policy.maximum)
        retries = self.policy.max_retries if max_retries is None else max_retries
        for attempt in range(retries + 1):
            if attempt:
                await asyncio.sleep(backoff.next())
            todo, error = await self._send(todo, outcome)
            if not todo:
                return outcome
            outcome.error = error
        outcome.pending = todo
        return outcome

    async def index_until_acked(self, docs: Sequence[Doc]) -> list[Rejection]:
        """Index ``docs``, waiting out any outage (the caller does not move on meanwhile);
        returns the documents Elasticsearch refused for good."""
        rejected: list[Rejection] = []
        todo = list(docs)
        backoff = Backoff(self.policy.initial, self.policy.maximum)
        last_log = 0.0
        while todo:
            outcome = await self.bulk(todo)
            rejected += outcome.rejected
            todo = outcome.pending
            _observer.backlog(len(todo))
            if not todo:
                break
            if time.monotonic() - last_log >= self.policy.log_every:
                last_log = time.monotonic()
                logger.warning(
                    "elasticsearch: backlog of %d documents not yet acknowledged; retrying (%s)",
                    len(todo),
                    outcome.error,
                )
            await asyncio.sleep(backoff.next())
        return rejected

    async def index_anomalies(self, documents: Sequence[Mapping[str, Any]]) -> list[Rejection]:
        """For the worker's index stage: ``Anomaly.to_document()`` dicts in; returns once every
        one is acknowledged or rejected (so offsets are committed only after the ack)."""
        docs = [
            self.doc(ANOMALIES, d["anomaly"]["id"], window_start_of(dict(d)), orjson.dumps(d))
            for d in documents
        ]
        return await self.index_until_acked(docs)

    async def index_drift_scores(self, reports: Sequence[WindowReport]) -> list[Rejection]:
        """The same, for the drift-score documents of closed windows."""
        return await self.index_scores(
            [item for report in reports for item in score_documents(report)]
        )

    async def index_scores(
        self, documents: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[Rejection]:
        """The same, for drift-score documents already built, by id (the worker's)."""
        docs = [
            self.doc(DRIFT_SCORES, doc_id, window_start_of(dict(d)), orjson.dumps(d))
            for doc_id, d in documents
        ]
        return await self.index_until_acked(docs)

    async def index_documents(
        self, target: str, documents: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[Rejection]:
        """The same, for any target's documents by id (incidents, roll-ups): each into the daily
        index of its ``window.start``."""
        docs = [
            self.doc(target, doc_id, window_start_of(dict(d)), orjson.dumps(d))
            for doc_id, d in documents
        ]
        return await self.index_until_acked(docs)

    async def enforce_retention(self, today: date) -> list[str]:
        """Delete whole daily indices older than ``retention_days`` (no ILM in every
        distribution); returns their names. Raises ElasticError as ``setup`` does."""
        patterns = ",".join(self.names.pattern(t) for t in TARGETS)
        try:
            found = await self.client.indices.get(
                index=patterns, allow_no_indices=True, ignore_unavailable=True
            )
            expired = expired_indices(found.body.keys(), self.names, today, self.retention_days)
            if expired:
                await self.client.indices.delete(index=",".join(expired))
        except (ApiError, TransportError) as exc:
            raise ElasticError(describe(exc)) from exc
        if expired:
            logger.info("elasticsearch: retention deleted %s", ", ".join(expired))
        return expired

    async def close(self) -> None:
        await self.client.close()

    async def _send(self, docs: list[Doc], outcome: BulkOutcome) -> tuple[list[Doc], str | None]:
        """One bulk request; returns what to retry and why."""
        began = time.monotonic()
        try:
            if not self._templates_installed:
                await self._install_templates()
            response = await self.client.bulk(operations=cast(Any, _ndjson(docs)))
        except (ApiError, TransportError) as exc:
            self._templates_installed = False  # the node may be new when it is back
            failure = f"http_{exc.meta.status}" if isinstance(exc, ApiError) else "transport"
            _observer.bulk_done(time.monotonic() - began, 0, len(docs), 0, failure)
            return docs, describe(exc)
        acked_before, rejected_before = len(outcome.acked), len(outcome.rejected)
        retry: list[Doc] = []
        error = None
        for doc, item in zip(docs, response["items"], strict=True):
            result = item["index"]
            status = int(result["status"])
            if status < 300:
                outcome.acked.append(doc)
            elif status == 429 or status >= 500:
                retry.append(doc)
                error = f"{status} {_reason(result)}"
            else:
                reason = f"{status} {_reason(result)}"
                logger.error(
                    "elasticsearch rejected document %s for %s: %s", doc.doc_id, doc.index, reason
                )
                outcome.rejected.append(Rejection(doc, reason))
        _observer.bulk_done(
            time.monotonic() - began,
            len(outcome.acked) - acked_before,
            len(retry),
            len(outcome.rejected) - rejected_before,
            None,
        )
        return retry, error


def _ndjson(docs: Sequence[Doc]) -> bytes:
    lines = []
    for doc in docs:
        lines.append(orjson.dumps({"index": {"_index": doc.index, "_id": doc.doc_id}}))
        lines.append(doc.body)
    return b"\n".join(lines) + b"\n"


def _reason(result: Mapping[str, Any]) -> str:
    error = result.get("error") or {}
    if isinstance(error, Mapping):
        return f"{error.get('type', 'error')}: {error.get('reason', '')}"
    return str(error)


def describe(exc: BaseException) -> str:
    """A one-line account of a failed request (status and error type, never headers)."""
    if isinstance(exc, ElasticError):
        return str(exc)
    if isinstance(exc, ApiError):
        return f"{exc.meta.status} {exc.message}"
    return f"{type(exc).__name__}: {exc}"
