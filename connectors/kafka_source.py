"""serving-logs read in micro-batches by a plain aiokafka consumer, for the worker's stage one.

Why not a Faust stream: Faust hands messages to an agent one at a time through several
coroutines and queues; measured on the bench topic (bench/worker.py), an agent that does nothing
but ``take_events`` reads ~6,000 events/s where a bare aiokafka consumer reads ~300,000-600,000.
Stage one keeps no table state (a micro-batch is summarized and published whole), so it needs
only a consumer group and explicit commits: the caller commits a batch's offsets after the
summaries it caused were acknowledged, so a crash re-delivers the batch (at least once) and
stage two's per-partition offset guards drop the repeats.
"""

from __future__ import annotations

import logging
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord

from config.settings import KafkaSettings
from connectors.kafka import client_options

logger = logging.getLogger(__name__)

# One record as read: .partition, .offset, .key, .value, .timestamp (ms). aiokafka's own type,
# named here so streams/ imports no client library; not copied into one of ours, because stage
# one reads hundreds of thousands a second.
SourceRecord: TypeAlias = ConsumerRecord[bytes, bytes]
Batch = dict[int, list[SourceRecord]]  # partition -> records, in offset order


class PartitionBatches:
    """One topic, one consumer group, batches of up to ``per_partition`` records per assigned
    partition; nothing is committed but what ``commit`` is given."""

    def __init__(self, settings: KafkaSettings, topic: str, group_id: str) -> None:
        self.topic = topic
        self._settings = settings
        self._group_id = group_id
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        s = self._settings
        # aiokafka binds to the running loop: the consumer is made here, not in __init__.
        self._consumer = AIOKafkaConsumer(
            **client_options(s),
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(s.session_timeout * 1000),
            heartbeat_interval_ms=int(s.heartbeat_interval * 1000),
            max_partition_fetch_bytes=s.max_fetch_bytes,
            fetch_max_bytes=max(s.max_fetch_bytes * 4, 52_428_800),
        )
        self._consumer.subscribe([self.topic])
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    def assignment(self) -> list[int]:
        if self._consumer is None:
            return []
        return sorted(tp.partition for tp in self._consumer.assignment())

    def partitions(self) -> int | None:
        """How many partitions the topic has (None until the metadata is known)."""
        if self._consumer is None:
            return None
        known = self._consumer.partitions_for_topic(self.topic)
        return len(known) if known else None

    async def next_batch(self, per_partition: int, wait: float) -> Batch:
        """What arrived within ``wait`` seconds, at most ``per_partition`` records for each
        assigned partition (empty when nothing came)."""
        consumer = self._require()
        limit = per_partition * max(1, len(consumer.assignment()))
        fetched = await consumer.getmany(timeout_ms=int(wait * 1000), max_records=limit)
        return {tp.partition: records for tp, records in fetched.items() if records}

    def rewind(self, batch: Batch) -> None:
        """Read the batch again from its first records (after a failure to handle it)."""
        consumer = self._require()
        assigned = consumer.assignment()
        for partition, records in batch.items():
            tp = TopicPartition(self.topic, partition)
            if tp in assigned:
                consumer.seek(tp, records[0].offset)

    async def commit(self, next_offsets: dict[int, int]) -> bool:
        """Commit the offsets to read next, per partition. False when a rebalance took the
        partitions meanwhile: the batch is then re-delivered to their new owner."""
        if not next_offsets:
            return True
        consumer = self._require()
        offsets = {TopicPartition(self.topic, p): o for p, o in next_offsets.items()}
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            logger.warning("stage one: offsets not committed (%s); the batch will be re-read", exc)
            return False
        except KafkaError as exc:
            logger.warning("stage one: commit failed (%r); the batch will be re-read", exc)
            return False
        return True

    def _require(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("PartitionBatches used before start()")
        return self._consumer
