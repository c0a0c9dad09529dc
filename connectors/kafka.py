"""Kafka clients from settings: connection options (SASL/SSL) shared by the Faust worker and the
plain aiokafka producer behind ``logdrift forward-to-kafka``.

Secrets are read at connect time (``KafkaSettings.sasl_password_value``) and handed to the
client only; nothing here logs or formats them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from config.settings import KafkaSettings
from connectors.forward import ForwardEvent
from detectors.records import field_at, with_field

logger = logging.getLogger(__name__)


def bootstrap_servers(settings: KafkaSettings) -> list[str]:
    return [s.strip() for s in settings.brokers.split(",") if s.strip()]


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """A verifying TLS context for SSL and SASL_SSL (a private CA from ``ssl_cafile``, a
    client certificate from ``ssl_certfile``/``ssl_keyfile``); None for plaintext."""
    if not settings.security_protocol.endswith("SSL"):
        return None
    context = ssl.create_default_context(
        cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None
    )
    if settings.ssl_certfile is not None:
        context.load_cert_chain(
            str(settings.ssl_certfile),
            str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
        )
    return context


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(settings),
        "security_protocol": settings.security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = settings.sasl_password_value()
    return options


def request_id_key(record: dict[str, Any], field: str) -> bytes | None:
    """The message key: the record's request id, so serving logs and feedback of one request
    land on the same partition (the label join is local). None spreads keyless records."""
    value = field_at(record, field)
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value).encode()
    return None


def serving_message(event: ForwardEvent, request_id: str, ts: str) -> tuple[bytes | None, bytes]:
    """(key, value) of one event's serving-logs message; the fields are dotted paths."""
    record = event.record
    if field_at(record, ts) is None:
        # fluent-logger carries the event time beside the record: keep it.
        record = with_field(record, ts, event.time)
    return request_id_key(record, request_id), orjson.dumps(record, default=str)


class ServingLogPublisher:
    """Publishes forward-protocol events to serving-logs, one message per record (JSON, keyed
    by request id). ``publish`` returns once the broker has acknowledged every record, so the
    forward server acks a chunk only after Kafka has it."""

    def __init__(
        self, settings: KafkaSettings, request_id_field: str = "request_id", ts_field: str = "ts"
    ) -> None:
        self.topic = settings.topic("serving_logs")
        self.request_id_field = request_id_field
        self.ts_field = ts_field
        self.published = 0
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # aiokafka binds to the running loop: the producer is made here, not in __init__.
        self._producer = AIOKafkaProducer(
            **client_options(self._settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            # The default partitioner is murmur2 over the key, as in every Kafka client and in
            # Fluentd's rdkafka2 with partitioner murmur2_random: one request id, one partition.
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def publish(self, events: list[ForwardEvent]) -> None:
        if self._producer is None:
            raise RuntimeError("ServingLogPublisher.publish before start")
        futures = []
        for event in events:
            key, value = serving_message(event, self.request_id_field, self.ts_field)
            futures.append(await self._producer.send(self.topic, value, key=key))
        if futures:
            await asyncio.gather(*futures)
        self.published += len(futures)


async def ensure_topics(settings: KafkaSettings, names: list[str], partitions: int) -> list[str]:
    """Create the worker's own topics that do not exist yet (with ``partitions`` partitions);
    returns the ones created. Done before the worker starts, so no send ever waits on a broker
    auto-creating a topic mid-stream."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            new = [NewTopic(n, partitions, settings.replication_factor) for n in missing]
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
                await admin.create_topics(new)
        return missing
    finally:
        await admin.close()
