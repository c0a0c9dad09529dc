"""Consumer lag as an outside observer measures it: a consumer group's committed offsets
against the topics' end offsets, both asked of the broker.

    LagProbe.lag(group, topics) --> {(topic, partition): end offset - committed offset}

Independent of who consumes (Faust's consumer, or the worker's own stage-one consumer group):
what the group committed is what a restart resumes from, so this is the lag that matters. A
partition the group never committed lags by its whole end offset (minus nothing: earliest is
assumed 0, which overstates only after retention deleted the head). Each call is two requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from config.settings import KafkaSettings
from connectors.kafka import client_options

Lag = dict[tuple[str, int], int]
K = TypeVar("K")


def lag_of(ends: Mapping[K, int], committed: Mapping[K, int]) -> dict[K, int]:
    """Per partition: end offset minus committed offset (Kafka's "next offset to read", both);
    never committed (absent, or -1) lags by the whole end offset; never below zero.

    >>> lag_of({"p0": 120, "p1": 50, "p2": 9, "p3": 7}, {"p0": 100, "p1": 50, "p3": -1})
    {'p0': 20, 'p1': 0, 'p2': 9, 'p3': 7}
    """
    return {tp: max(0, end - max(0, committed.get(tp, 0))) for tp, end in ends.items()}


class LagProbe:
    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None  # no group: only asks for end offsets

    async def start(self) -> None:
        options = client_options(self._settings)
        self._admin = AIOKafkaAdminClient(**options)
        self._consumer = AIOKafkaConsumer(**options, enable_auto_commit=False)
        await self._admin.start()
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._admin is not None:
            await self._admin.close()
            self._admin = None

    async def lag(self, group: str, topics: list[str]) -> Lag:
        if self._admin is None or self._consumer is None:
            raise RuntimeError("LagProbe not started")
        found = await self._admin.list_consumer_group_offsets(group)
        committed = {(tp.topic, tp.partition): m.offset for tp, m in found.items()}
        partitions = await self._partitions(topics)
        ends = await self._consumer.end_offsets(partitions) if partitions else {}
        return lag_of({(tp.topic, tp.partition): end for tp, end in ends.items()}, committed)

    async def _partitions(self, topics: list[str]) -> list[TopicPartition]:
        """Every partition of ``topics`` that exists now (asked afresh: topics come and go)."""
        assert self._admin is not None
        found = []
        for topic in await self._admin.describe_topics(topics):
            if topic.get("error_code", 0) == 0:
                for p in sorted(int(part["partition"]) for part in topic["partitions"]):
                    found.append(TopicPartition(topic["topic"], p))
        return found
