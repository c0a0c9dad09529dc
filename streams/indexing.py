"""Helpers of the worker's index stage (``streams.agents.index_anomalies``):

    anomalies --take_events(bulk_size, within 1 s)--> Anomaly documents
      --ElasticSink.index_anomalies (waits out outages)--> Elasticsearch
      --every document acknowledged or refused--> the batch is acked, offsets committed
    refused, or not an anomaly at all --> dead-letters, with the reason

The sink is created with the first batch and closed when the agent stops.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from faust.types import EventT

from config.settings import ElasticsearchSettings
from connectors.elasticsearch import ElasticSink
from detectors.anomaly import Anomaly

WITHIN_SECONDS = 1.0  # a batch waits at most this long for bulk_size anomalies


@dataclass(frozen=True, slots=True)
class Source:
    """Where a document came from, to dead-letter the original bytes."""

    key: bytes | None
    value: bytes
    where: str


@dataclass(slots=True)
class Batch:
    documents: list[dict[str, Any]] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)  # by anomaly id
    bad: list[tuple[Source, str, str]] = field(default_factory=list)  # source, reason, kind


def source_of(event: EventT[Any]) -> Source:
    message = event.message
    key = message.key if isinstance(message.key, bytes | None) else str(message.key).encode()
    value = message.value if isinstance(message.value, bytes) else b""
    return Source(key, value, f"{message.topic}/{message.partition}/{message.offset}")


def documents_of(events: Sequence[EventT[Any]]) -> Batch:
    """Anomaly documents of a batch; values that are not anomalies go to ``bad``."""
    batch = Batch()
    for event in events:
        source = source_of(event)
        try:
            anomaly = Anomaly.from_dict(orjson.loads(source.value))
            document = anomaly.to_document()
        except orjson.JSONDecodeError as exc:
            batch.bad.append((source, f"not JSON: {exc}", "not_json"))
            continue
        except (TypeError, ValueError, KeyError) as exc:
            batch.bad.append((source, f"not an anomaly: {exc!r}", "not_an_anomaly"))
            continue
        batch.documents.append(document)
        batch.sources[anomaly.id] = source
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
