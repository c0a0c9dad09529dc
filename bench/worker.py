"""Events/s through one Kafka worker beside a bare aiokafka consumer reading the same topic, and
the worker's memory as the events go by.

    .venv/bin/python bench/worker.py [--events 200000] [--partitions 4]

Starts (or reuses) the test broker (tools/servers.py, run dir .servers/kafka-bench), fills a
fresh serving-logs topic with synthetic CTR records, then times (1) a bare aiokafka consumer
reading every message, and (2) `logdrift worker` (a subprocess, its own consumer group)
processing every record through both stages, from its first record to its last. Prints the
worker's RSS at each tenth of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("LOGDRIFT_RUN_DIR", str(REPO / ".servers" / "kafka-bench"))

from connectors.files import write_csv  # noqa: E402
from streams.traffic import Injection, serving_records, training_rows  # noqa: E402
from tools.servers import start_kafka  # noqa: E402


async def fill(url: str, topic: str, events: int, partitions: int) -> float:
    admin = AIOKafkaAdminClient(bootstrap_servers=url)
    await admin.start()
    await admin.create_topics([NewTopic(topic, partitions, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=url, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    began = time.perf_counter()
    records = serving_records(
        events, rate=100.0, start=1_800_000_000.0, injections=[Injection("mean_shift", events // 2)]
    )
    pending = []
    for record in records:
        pending.append(
            await producer.send(topic, orjson.dumps(record), key=record["request_id"].encode())
        )
        if len(pending) >= 10_000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await producer.stop()
    return time.perf_counter() - began


async def bare_consumer(url: str, topic: str, events: int) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=url,
        group_id=f"bare-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    seen, began = 0, 0.0
    try:
        while seen < events:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5_000)
            if batch and not began:
                began = time.perf_counter()
            seen += sum(len(v) for v in batch.values())
    finally:
        await consumer.stop()
    return time.perf_counter() - began


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run_worker(
    url: str, app_id: str, baseline: Path, events: int, log: Path
) -> tuple[float, list[tuple[int, int]]]:
    env = {
        **os.environ,
        "LOGDRIFT_WINDOW__SECONDS": "60",
    }
    cmd = [sys.executable, "-m", "streams", "worker", "--baseline", str(baseline)]
    cmd += [
        "--brokers",
        url,
        "--app-id",
        app_id,
        "--topic-prefix",
        f"{app_id}-",
        "--loglevel",
        "info",
    ]
    env["LOGDRIFT_KAFKA__STATS_LOG_SECONDS"] = "0.5"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT, env=env)
    began, samples, next_tenth = 0.0, [], 1
    try:
        while True:
            time.sleep(0.25)
            if proc.poll() is not None:
                raise SystemExit(f"worker exited:\n{log.read_text()[:6000]}")
            counts = re.findall(r"counters: records=(\d+)", log.read_text(errors="replace"))
            done = int(counts[-1]) if counts else 0
            if done and not began:
                began = time.perf_counter()
            while done >= next_tenth * events // 10 and next_tenth <= 10:
                samples.append((done, rss_kib(proc.pid)))
                next_tenth += 1
            if done >= events:
                return time.perf_counter() - began, samples
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    info = start_kafka(partitions=4)
    app_id = f"bench{uuid.uuid4().hex[:8]}"
    topic = f"{app_id}-serving-logs"
    with tempfile.TemporaryDirectory(prefix="logdrift-bench-") as tmp:
        work = Path(tmp)
        write_csv(work / "train.csv", training_rows(20_000, seed=7))
        baseline = work / "base"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "streams",
                "baseline",
                str(work / "train.csv"),
                "--out",
                str(baseline),
                "--model",
                "ctr",
            ],
            check=True,
            capture_output=True,
        )
        took = asyncio.run(fill(info.url, topic, args.events, args.partitions))
        rate = args.events / took
        print(
            f"filled {topic}: {args.events:,} events, {args.partitions} partitions ({rate:,.0f}/s)"
        )
        bare = asyncio.run(bare_consumer(info.url, topic, args.events))
        worker, samples = run_worker(info.url, app_id, baseline, args.events, work / "worker.log")
    print(f"{'bare aiokafka consumer':28} {args.events / bare:>10,.0f} events/s")
    share = bare / worker
    print(
        f"{'logdrift worker (2 stages)':28} {args.events / worker:>10,.0f} events/s  ({share:.1%})"
    )
    print("worker RSS: " + ", ".join(f"{n:,}: {kib / 1024:.0f} MiB" for n, kib in samples))


if __name__ == "__main__":
    main()
