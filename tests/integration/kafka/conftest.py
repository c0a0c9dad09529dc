"""A real Kafka broker for the session (tools/servers/: Apache Kafka 4.x, KRaft, loopback),
workers as real subprocesses, and small aiokafka helpers. No broker is a failure, not a skip."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from elasticsearch import Elasticsearch

from connectors.baseline_files import load_baseline
from detectors.anomaly import Anomaly
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions, Result
from detectors.incidents.tracker import Incident
from detectors.records import decode_record
from tests.integration import patience
from tests.integration.conftest import search_all, servers_run_dir
from tests.integration.patience import bound
from tools.servers import ServerError, ServerInfo, start_es, start_kafka, stop_es, stop_kafka

REPO = Path(__file__).resolve().parents[3]
WINDOW_SECONDS = 10.0
RATE = 100.0  # synthetic events per second of event time: 1,000 records per window
START = 1_800_000_000.0
WORKER_ENV = {
    "LOGDRIFT_WINDOW__SECONDS": str(WINDOW_SECONDS),
    "LOGDRIFT_WINDOW__MIN_COUNT": "200",
    "LOGDRIFT_KAFKA__STATS_LOG_SECONDS": "1",
    "LOGDRIFT_KAFKA__BATCH_MAX_RECORDS": "200",
    "LOGDRIFT_KAFKA__BATCH_MAX_SECONDS": "0.2",
    # Tests produce a backlog faster than one worker reads it, so partitions drift far apart in
    # event time; no partition is ever silent, so the merge may wait for every one of them.
    "LOGDRIFT_KAFKA__MAX_LATENESS": "3600",
    "LOGDRIFT_KAFKA__MAX_BUFFER": "10000",
    # Synthetic event time starts in 2027 (START): ahead of the clock, within three years.
    "LOGDRIFT_EVENT_TIME__FUTURE_TOLERANCE_SECONDS": "1e8",
}


# Every wait is for progress (a log line, a counter, an offset) within a generous bound:
# tests/integration/patience.py.


@pytest.fixture(scope="session")
def kafka() -> Iterator[ServerInfo]:
    """The broker, in a run dir of its own so other suites' servers are left alone."""
    previous = os.environ.get("LOGDRIFT_RUN_DIR")
    os.environ["LOGDRIFT_RUN_DIR"] = str(REPO / ".servers" / "kafka-tests")
    try:
        info = start_kafka(partitions=4)  # raises ServerError: the suite fails loudly
        yield info
    finally:
        stop_kafka()
        if previous is None:
            os.environ.pop("LOGDRIFT_RUN_DIR", None)
        else:
            os.environ["LOGDRIFT_RUN_DIR"] = previous


@pytest.fixture(scope="session")
def ctr_baseline(baseline_dir: Path) -> Baseline:
    return load_baseline(baseline_dir, None)


@pytest.fixture
def app_id() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def engine_run(baseline: Baseline, rows: list[dict[str, Any]]) -> Result:
    """What the embedded Engine says about the same records in event-time order."""
    engine = Engine([baseline], EngineOptions(WINDOW_SECONDS, 200))
    out = Result()
    for row in sorted(rows, key=lambda r: r["ts"]):
        out.extend(engine.process(decode_record(row)))
    return out


def engine_anomalies(baseline: Baseline, rows: list[dict[str, Any]]) -> list[Anomaly]:
    return engine_run(baseline, rows).anomalies


def epoch(row: dict[str, Any]) -> float:
    from detectors.records import parse_ts

    return parse_ts(row["ts"])


# ---- aiokafka helpers ------------------------------------------------------------------
async def _create_topic(url: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=url)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


def create_topic(url: str, name: str, partitions: int) -> None:
    asyncio.run(_create_topic(url, name, partitions))


async def _produce(
    url: str, topic: str, messages: list[tuple[bytes | None, bytes]], pace: float
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=url, linger_ms=5, acks="all")
    await producer.start()
    try:
        began = time.monotonic()
        futures = []
        for i, (key, value) in enumerate(messages):
            futures.append(await producer.send(topic, value, key=key))
            if pace and i % 100 == 99:  # pace: records per second of wall time
                ahead = (i + 1) / pace - (time.monotonic() - began)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def produce(
    url: str, topic: str, messages: list[tuple[bytes | None, bytes]], pace: float = 0
) -> None:
    asyncio.run(_produce(url, topic, messages, pace))


def serving_messages(rows: list[dict[str, Any]]) -> list[tuple[bytes | None, bytes]]:
    return [(row["request_id"].encode(), orjson.dumps(row)) for row in rows]


@dataclass
class Consumed:
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


async def _consume(url: str, topic: str) -> list[Consumed]:
    consumer = AIOKafkaConsumer(bootstrap_servers=url, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[Consumed] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=1000)
            for messages in batch.values():
                out += [Consumed(m.key, m.value, dict(m.headers)) for m in messages]
        return out
    finally:
        await consumer.stop()


def consume(url: str, topic: str) -> list[Consumed]:
    """Everything on ``topic`` right now."""
    return asyncio.run(_consume(url, topic))


def anomalies_on(url: str, topic: str) -> list[Anomaly]:
    return [Anomaly.from_dict(orjson.loads(m.value)) for m in consume(url, topic)]


def incidents_on(url: str, topic: str) -> dict[str, Incident]:
    """The newest version of every incident on the topic (a key's versions keep their order)."""
    return {
        m.key.decode(): Incident.from_plain(orjson.loads(m.value))
        for m in consume(url, topic)
        if m.key
    }


# ---- worker subprocesses ---------------------------------------------------------------
@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def counters(self) -> dict[str, int]:
        """The last counters line the worker logged."""
        lines = re.findall(r"counters: (records=.*)", self.text())
        if not lines:
            return {}
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1].split(" (")[0])}

    def wait_for(self, pattern: str, timeout: float = 90) -> re.Match[str]:
        deadline = time.monotonic() + bound(timeout)
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text())
            if found:
                return found
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"worker exited {self.proc.returncode}:\n{self.text()[-5000:]}"
                )
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} within {bound(timeout)} s:\n{self.text()[-5000:]}")

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``bound(timeout)``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=bound(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def start_worker_process(
    kafka: ServerInfo, baselines: list[Path], workdir: Path, app_id: str, env: dict[str, str]
) -> WorkerProcess:
    """``logdrift worker`` in ``workdir``, its output in ``workdir``.log; stop or kill it."""
    workdir.mkdir(parents=True)
    log = workdir.with_suffix(".log")
    cmd = [sys.executable, "-m", "streams", "worker"]
    cmd += [arg for b in baselines for arg in ("--baseline", str(b))]
    cmd += ["--brokers", kafka.url, "--app-id", app_id, "--topic-prefix", f"{app_id}-"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **WORKER_ENV, **env, "PYTHONUNBUFFERED": "1"},
        )
    return WorkerProcess(proc, log)


@pytest.fixture
def start_worker(kafka: ServerInfo, baseline_dir: Path, tmp_path: Path) -> Iterator[Any]:
    started: list[WorkerProcess] = []

    def start(app_id: str, baselines: list[Path] | None = None, **env: str) -> WorkerProcess:
        workdir = tmp_path / f"worker-{len(started)}"
        worker = start_worker_process(kafka, baselines or [baseline_dir], workdir, app_id, env)
        started.append(worker)
        return worker

    yield start
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


def wait_until(condition: Any, timeout: float, what: str, step: float = 1.0) -> None:
    patience.wait_until(condition, timeout, what, step)


# ---- Elasticsearch, for the worker's index stage --------------------------------------
# Not the elasticsearch suite's run dir: that suite stops and restarts its node.
RUN_DIR = REPO / ".servers" / "es-kafka-tests"


def es_run_dir() -> contextlib.AbstractContextManager[None]:
    return servers_run_dir(RUN_DIR)


@pytest.fixture(scope="module")
def es_url() -> Iterator[str]:
    try:
        with es_run_dir():
            info = start_es()
    except ServerError as exc:
        pytest.fail(f"could not start a real Elasticsearch node for this test:\n{exc}")
    try:
        yield info.url
    finally:
        with es_run_dir():
            stop_es()


def scores_indexed(es: Elasticsearch, prefix: str) -> dict[str, dict[str, Any]]:
    return {h["_id"]: h["_source"] for h in search_all(es, f"{prefix}-drift-scores-*")}
