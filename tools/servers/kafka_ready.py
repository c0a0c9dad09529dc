"""Is the broker ready? A real produce, consume and group commit with aiokafka, not an open
port (the group coordinator and ``__consumer_offsets`` must work too)."""

from __future__ import annotations

import asyncio
import threading
import uuid

from tools.servers.common import KAFKA_READY_TOPIC, REPO_ROOT, ServerError, run


def kafka_roundtrip_check(bootstrap: str, timeout: float) -> str:
    """Prove the broker works (a real produce + consume + group commit); returns how.

    With ``aiokafka`` importable here the check runs in-process, on a private event loop in a
    thread (safe inside a running loop, e.g. pytest-asyncio); else the repository's
    ``.venv/bin/python`` runs it (``python -m tools.servers _kafka-check``). Without either,
    a ServerError says to ``make install``: an open port or a metadata answer alone is not
    "ready" (the group coordinator may still be loading).
    """
    try:
        import aiokafka  # noqa: F401
    except ImportError:
        return _check_in_venv(bootstrap, timeout)
    result: list[BaseException | str] = []

    def runner() -> None:
        try:
            asyncio.run(asyncio.wait_for(_aiokafka_roundtrip(bootstrap), timeout))
            result.append("aiokafka produce + consume + commit")
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=runner, name="kafka-ready-check", daemon=True)
    thread.start()
    thread.join(timeout + 15)
    if not result:
        raise ServerError("aiokafka round trip hung")
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise ServerError(f"aiokafka round trip: {type(outcome).__name__}: {outcome}")
    return outcome


def _check_in_venv(bootstrap: str, timeout: float) -> str:
    venv_python = REPO_ROOT / ".venv" / "bin" / "python"
    if not venv_python.exists():
        raise ServerError(
            "the Kafka readiness check needs aiokafka: run `make install` (creates .venv) "
            "or run this with a Python that has aiokafka"
        )
    check = [str(venv_python), "-m", "tools.servers", "_kafka-check", bootstrap, str(timeout)]
    out = run(check, cwd=REPO_ROOT, what="aiokafka round trip (venv)", timeout=timeout + 30)
    return out.strip().splitlines()[-1] if out.strip() else "aiokafka (venv)"


async def _aiokafka_roundtrip(bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    payload = uuid.uuid4().hex.encode()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await producer.start()
    try:
        meta = await producer.send_and_wait(KAFKA_READY_TOPIC, payload, partition=0)
    finally:
        await producer.stop()
    tp = TopicPartition(KAFKA_READY_TOPIC, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id="logdrift-readiness",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10000,
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        msg = await consumer.getone()
        if msg.value != payload:
            raise ServerError(f"consumed {msg.value!r}, expected {payload!r}")
        await consumer.commit()  # exercises the group coordinator / __consumer_offsets
    finally:
        await consumer.stop()
