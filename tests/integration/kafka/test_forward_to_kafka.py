"""`logdrift forward-to-kafka`: the real fluent-logger client in, serving-logs out, one message
per record, keyed by request id and partitioned as any Kafka client partitions that key (so
feedback produced elsewhere lands beside its prediction)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
from aiokafka.partitioner import DefaultPartitioner
from fluent import sender

from tests.integration.conftest import _wait_listening, free_port
from tests.integration.kafka.conftest import consume, create_topic, wait_until
from tools.servers import ServerInfo


def test_fluent_logger_records_reach_serving_logs_keyed_by_request_id(
    kafka: ServerInfo, app_id: str, tmp_path: Path
) -> None:
    topic = f"{app_id}-serving-logs"
    create_topic(kafka.url, topic, 4)
    port = free_port()
    log = (tmp_path / "forward.log").open("w")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "streams", "forward-to-kafka", "--port", str(port)),
            *("--brokers", kafka.url, "--topic-prefix", f"{app_id}-"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
    )
    try:
        _wait_listening(port, proc)  # type: ignore[arg-type]
        logger = sender.FluentSender("serving", host="127.0.0.1", port=port)
        for i in range(200):
            record = {"request_id": f"r{i}", "model": "ctr", "features": {"price": float(i)}}
            assert logger.emit("ctr", record), logger.last_error
        logger.close()
        wait_until(lambda: len(consume(kafka.url, topic)) >= 200, 60, "200 records")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0, (tmp_path / "forward.log").read_text()
    messages = consume(kafka.url, topic)
    assert len(messages) == 200
    partitioner = DefaultPartitioner()
    for m in messages:
        record = orjson.loads(m.value)
        assert m.key == record["request_id"].encode()
        assert isinstance(record["ts"], int | float)  # fluent-logger's event time, kept
    # Same key, same partition as a plain Kafka client would choose (murmur2).
    by_partition = {(m.key, p) for p, m in _with_partitions(kafka.url, topic)}
    assert all(p == partitioner(k, [0, 1, 2, 3], [0, 1, 2, 3]) for k, p in by_partition)


def _with_partitions(url: str, topic: str) -> list[tuple[int, object]]:
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def read() -> list[tuple[int, object]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=url, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(4)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            out: list[tuple[int, object]] = []
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                for tp, batch in (await consumer.getmany(timeout_ms=1000)).items():
                    out += [(tp.partition, m) for m in batch]
            return out
        finally:
            await consumer.stop()

    return asyncio.run(read())
