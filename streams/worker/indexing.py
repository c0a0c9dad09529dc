"""Helpers of the worker's index stage (``streams.worker.agents.index_documents``), one agent
per topic:

    anomalies | drift-scores | incidents | window-rollups
      --take_events(bulk_size, within 1 s)--> (id, document)   (payloads: streams.worker.payloads)
      --ElasticSink.index_anomalies | index_scores | index_documents (waits out outages)-->
      Elasticsearch
      --every document acknowledged or refused--> the batch is acked, offsets committed
    refused, or not a document of that kind at all --> dead-letters, with the reason

The sink is created with the first batch and closed when the agent stops.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from faust.types import EventT

from config.settings import ElasticsearchSettings
from connectors.elasticsearch import ElasticSink, Rejection
from connectors.es_documents import INCIDENTS as INCIDENTS_TARGET
from connectors.es_documents import ROLLUPS as ROLLUPS_TARGET
from connectors.es_documents import window_start_of
from connectors.es_incidents import incident_document, rollup_document
from streams.worker.payloads import ANOMALY, INCIDENT, ROLLUP

WITHIN_SECONDS = 1.0  # a batch waits at most this long for bulk_size anomalies


@dataclass(frozen=True, slots=True)
class Source:
    """Where a document came from, to dead-letter the original bytes."""

    key: bytes | None
    value: bytes
    where: str


Document = tuple[str, dict[str, Any]]  # (id, body)


@dataclass(slots=True)
class Batch:
    documents: list[Document] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)  # by document id
    bad: list[tuple[Source, str, str]] = field(default_factory=list)  # source, reason, kind


@dataclass(frozen=True, slots=True)
class Kind:
    """What one index agent indexes: how a message becomes a document, and where it goes."""

    name: str  # "anomalies" or "drift scores", for log lines
    not_one: str  # the dead-letter kind of a message that is not such a document
    parse: Callable[[Source], Document]  # raises TypeError, ValueError or KeyError if not one
    index: Callable[[ElasticSink, list[Document]], Awaitable[list[Rejection]]]


def _anomaly(source: Source) -> Document:
    anomaly = ANOMALY.decode(source.value)
    return anomaly.id, anomaly.to_document()


def _score(source: Source) -> Document:
    document = orjson.loads(source.value)
    if not isinstance(document, dict) or not source.key:
        raise ValueError("a drift-score document is a JSON object keyed by its id")
    window_start_of(document)  # its daily index is named by it
    return source.key.decode(), document


ANOMALIES = Kind(
    "anomalies",
    "not_an_anomaly",
    _anomaly,
    lambda sink, docs: sink.index_anomalies([d for _, d in docs]),
)
SCORES = Kind(
    "drift scores", "not_a_drift_score", _score, lambda sink, docs: sink.index_scores(docs)
)


def _incident(source: Source) -> Document:
    incident = INCIDENT.decode(source.value)
    return incident.id, incident_document(incident)


INCIDENTS = Kind(
    "incidents",
    "not_an_incident",
    _incident,
    lambda sink, docs: sink.index_documents(INCIDENTS_TARGET, docs),
)


def source_of(event: EventT[Any]) -> Source:
    message = event.message
    key = message.key if isinstance(message.key, bytes | None) else str(message.key).encode()
    value = message.value if isinstance(message.value, bytes) else b""
    return Source(key, value, f"{message.topic}/{message.partition}/{message.offset}")


def documents_of(kind: Kind, events: Sequence[EventT[Any]]) -> Batch:
    """The documents of a batch; values that are not documents of ``kind`` go to ``bad``."""
    batch = Batch()
    for event in events:
        source = source_of(event)
        try:
            doc_id, document = kind.parse(source)
        except orjson.JSONDecodeError as exc:
            batch.bad.append((source, f"not JSON: {exc}", "not_json"))
            continue
        except (TypeError, ValueError, KeyError) as exc:
            reason = f"{kind.not_one.replace('_', ' ')}: {exc!r}"
            batch.bad.append((source, reason, kind.not_one))
            continue
        batch.documents.append((doc_id, document))
        batch.sources[doc_id] = source
    return batch


def new_sink(settings: ElasticsearchSettings) -> ElasticSink:
    """The sink, with the transport's per-request INFO lines kept out of the worker log."""
    for name, level in (
        ("elastic_transport", logging.WARNING),
        ("elastic_transport.node_pool", logging.ERROR),
    ):
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(level)
    return ElasticSink.from_settings(settings)


def _rollup(source: Source) -> Document:
    rollup = ROLLUP.decode(source.value)
    return rollup.id, rollup_document(rollup)


ROLLUPS = Kind(
    "roll-ups",
    "not_a_rollup",
    _rollup,
    lambda sink, docs: sink.index_documents(ROLLUPS_TARGET, docs),
)
