"""Events/s through one Kafka worker beside a bare aiokafka consumer reading the same topic, the
in-process ceiling of the same per-record work, and the worker's memory as the events go by.

    .venv/bin/python bench/worker.py [--events 200000] [--partitions 4] [--sample 100000]
    .venv/bin/python bench/worker.py --profile 30000   # no Kafka: cProfile of "both stages"

Starts (or reuses) the test broker (tools/servers/, run dir .servers/kafka-bench unless
LOGDRIFT_RUN_DIR says otherwise), fills a fresh serving-logs topic with synthetic CTR records
(a mean shift on `score` half way), then times, on the same machine:

1. a bare aiokafka consumer reading every message (no decoding);
2. in this process, without Kafka, on the first ``--sample`` records: ``orjson.loads`` alone,
   stage one's work (decode, validate, micro-batch) record by record and column by column (the
   worker's path for a clean batch), both stages (stage one, the summaries'
   wire encoding, stage two's merge and detectors, one state encoding per batch round), and
   the embedded ``Engine`` (bytes in) — the ceiling any worker built on these step functions
   can reach on one core;
3. `logdrift worker` (a subprocess, its own consumer groups, default ``kafka:`` settings)
   processing every record through both stages, from stage one's first record until stage two
   has applied every summary of the last (its counters line: ``applied`` >= ``summaries``),
   with its RSS at each tenth of the records stage one read.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("LOGDRIFT_RUN_DIR", str(REPO / ".servers" / "kafka-bench"))

from connectors.baseline_files import load_baseline  # noqa: E402
from connectors.files import write_csv  # noqa: E402
from detectors.baseline.reference import Baseline  # noqa: E402
from detectors.blocks import decode_block  # noqa: E402
from detectors.engine import Engine, EngineOptions  # noqa: E402
from detectors.feature_state import CompareStep, FeatureState, MergeOptions  # noqa: E402
from detectors.records import decode_record  # noqa: E402
from detectors.stages import SummaryBuilder, observe, observe_columns  # noqa: E402
from streams.simulation.traffic import Injection, serving_records, training_rows  # noqa: E402
from streams.worker.tables import state_bytes  # noqa: E402
from tools.servers import start_kafka  # noqa: E402

RATE = 100.0  # events per second of event time
START = 1_800_000_000.0
POOL = 50_000  # distinct records per half (before and after the shift), reused round robin
WINDOW_SECONDS = 60.0
BATCH = 500  # stage one's default micro-batch per partition (kafka.batch_max_records)
STALLED_SECONDS = 300  # neither stage's counter moved for this long: stuck, not slow


def iso_ms(ts: float) -> str:
    whole = int(ts)
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        + f".{round((ts - whole) * 1000) % 1000:03d}Z"
    )


def messages(events: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of ``events`` serving records with event times RATE per second: records are
    drawn from two pools (generating 10 million from scratch takes minutes), the second with
    `score`'s mean shifted, from the middle of the stream on."""
    half = events // 2
    pools = [
        list(serving_records(min(POOL, max(half, 1)), rate=RATE, start=START, seed=1)),
        list(
            serving_records(
                min(POOL, max(events - half, 1)),
                rate=RATE,
                start=START,
                seed=2,
                injections=[Injection("mean_shift", 0)],
            )
        ),
    ]
    for i in range(events):
        pool = pools[i >= half]
        record = pool[i % len(pool)]
        key = f"r-{i:x}"
        yield (
            key.encode(),
            orjson.dumps({**record, "ts": iso_ms(START + i / RATE), "request_id": key}),
        )


async def fill(
    url: str, topic: str, records: Iterable[tuple[bytes, bytes]], partitions: int
) -> float:
    """Produce records in per-partition batches (send_batch: no per-record future)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=url)
    await admin.start()
    await admin.create_topics([NewTopic(topic, partitions, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=url, max_batch_size=1024 * 1024, acks=1)
    await producer.start()
    began = time.perf_counter()
    batches = [producer.create_batch() for _ in range(partitions)]
    pending: list[asyncio.Future[Any]] = []
    for key, value in records:
        p = zlib.crc32(key) % partitions  # any stable spread will do for a benchmark
        if batches[p].append(key=key, value=value, timestamp=None) is None:
            pending.append(await producer.send_batch(batches[p], topic, partition=p))
            batches[p] = producer.create_batch()
            batches[p].append(key=key, value=value, timestamp=None)
            if len(pending) >= 64:
                await asyncio.gather(*pending)
                pending.clear()
    for p, batch in enumerate(batches):
        if batch.record_count():
            pending.append(await producer.send_batch(batch, topic, partition=p))
    await asyncio.gather(*pending)
    await producer.stop()
    return time.perf_counter() - began


async def reader(url: str, topic: str, name: str) -> AIOKafkaConsumer:
    """A started consumer of its own group, from the topic's first record."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=url,
        group_id=f"{name}-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    return consumer


async def bare_consumer(url: str, topic: str, events: int) -> float:
    consumer = await reader(url, topic, "bare")
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


# ---- the same work in process, without Kafka --------------------------------------------
def _by_partition(raws: list[bytes], partitions: int) -> list[list[tuple[int, bytes]]]:
    parts: list[list[tuple[int, bytes]]] = [[] for _ in range(partitions)]
    for raw in raws:
        p = len(raw) % partitions
        parts[p].append((len(parts[p]), raw))
    return parts


def _stage_one(
    baseline: Baseline, p: int, partitions: int, chunk: list[tuple[int, bytes]], columnar: bool
) -> list[tuple[str, dict[str, Any]]]:
    builder = SummaryBuilder(p, partitions)
    groups = decode_block([orjson.loads(raw) for _, raw in chunk]) if columnar else None
    if groups is not None:  # the worker's _profile_block: the batch column by column
        for g in groups:
            columns = observe_columns(baseline, g.features, g.predictions)
            offsets = [chunk[i][0] for i in g.index]
            builder.add_columns(offsets, g.model, g.version, g.ts, columns)
        return builder.drain()
    for offset, raw in chunk:
        record = decode_record(orjson.loads(raw))
        builder.add(offset, record, observe(baseline, record))
    return builder.drain()


def both_stages(
    baseline: Baseline, raws: list[bytes], partitions: int, two: bool, columnar: bool = True
) -> None:
    step = CompareStep(baseline, EngineOptions(WINDOW_SECONDS, 200), MergeOptions())
    states: dict[str, FeatureState] = {}
    parts = _by_partition(raws, partitions)
    for start in range(0, max(len(p) for p in parts), BATCH):
        for p, part in enumerate(parts):
            summaries = _stage_one(baseline, p, partitions, part[start : start + BATCH], columnar)
            if not two:
                continue
            for key, summary in summaries:
                wire = orjson.loads(orjson.dumps(summary))
                state = states.get(key) or step.new_state(
                    wire["model"], wire["version"], wire["feature"]
                )
                step.receive(state, wire)
                states[key] = state
        for state in states.values():  # one state write per feature per round
            state_bytes(state)


def engine_bytes_in(baseline: Baseline, raws: list[bytes]) -> None:
    engine = Engine([baseline], EngineOptions(WINDOW_SECONDS, 200))
    for raw in raws:
        engine.process(decode_record(orjson.loads(raw)))


def in_process(baseline: Baseline, raws: list[bytes], partitions: int) -> list[tuple[str, float]]:
    def rate(run: Callable[[], object]) -> float:
        began = time.perf_counter()
        run()
        return len(raws) / (time.perf_counter() - began)

    return [
        ("orjson.loads only", rate(lambda: [orjson.loads(r) for r in raws])),
        (
            "stage one, per record",
            rate(lambda: both_stages(baseline, raws, partitions, two=False, columnar=False)),
        ),
        ("stage one, columnar", rate(lambda: both_stages(baseline, raws, partitions, two=False))),
        ("both stages", rate(lambda: both_stages(baseline, raws, partitions, two=True))),
        ("Engine.process, bytes in", rate(lambda: engine_bytes_in(baseline, raws))),
    ]


# ---- the worker --------------------------------------------------------------------------
def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _records_done(log: Path, at: int) -> tuple[tuple[int, int], int, int]:
    """From the counters lines logged from byte ``at`` on: the last (records stage one read,
    summaries stage two applied), the last records count stage two had caught up with (every
    summary stage one sent applied; -1 if none), and where reading stopped."""
    with open(log, "rb") as f:
        f.seek(at)
        text = f.read().decode(errors="replace")
    cut = text.rfind("\n") + 1
    counts = re.findall(r"counters: records=(\d+) summaries=(\d+) applied=(\d+)", text[:cut])
    last = (int(counts[-1][0]), int(counts[-1][2])) if counts else (-1, -1)
    through = [int(r) for r, sent, applied in counts if int(applied) >= int(sent)]
    return last, (through[-1] if through else -1), at + len(text[:cut].encode())


def run_worker(
    url: str, app_id: str, baseline: Path, events: int, log: Path
) -> tuple[float, list[tuple[int, int, float]]]:
    env = {
        **os.environ,
        "LOGDRIFT_WINDOW__SECONDS": str(int(WINDOW_SECONDS)),
        "LOGDRIFT_KAFKA__STATS_LOG_SECONDS": "0.5",
        # The events are stamped from START (2027) on: within the receiving clock's bounds.
        "LOGDRIFT_EVENT_TIME__FUTURE_TOLERANCE_SECONDS": "1e8",
        "LOGDRIFT_EVENT_TIME__MAX_AGE_SECONDS": "1e9",
    }
    cmd = [sys.executable, "-m", "streams", "worker", "--baseline", str(baseline)]
    cmd += ["--brokers", url, "--app-id", app_id, "--topic-prefix", f"{app_id}-"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT, env=env)
    began, samples, next_tenth, seen, done, at = 0.0, [], 1, 0, 0, 0
    moved, progress = time.monotonic(), (0, 0)
    try:
        while True:
            time.sleep(0.25)
            if proc.poll() is not None:
                raise SystemExit(f"worker exited:\n{log.read_text()[-6000:]}")
            (read, applied), latest, at = _records_done(log, at)
            if read > progress[0] or applied > progress[1]:
                moved, progress = time.monotonic(), (read, applied)
            elif time.monotonic() - moved > STALLED_SECONDS:
                raise SystemExit(f"no progress in {STALLED_SECONDS} s:\n{log.read_text()[-6000:]}")
            seen, done = max(seen, read), max(done, latest)
            if seen > 0 and not began:
                began = time.perf_counter()
            while seen >= next_tenth * events // 10 and next_tenth <= 10:
                samples.append((seen, rss_kib(proc.pid), time.perf_counter() - began))
                next_tenth += 1
            if done >= events:
                return time.perf_counter() - began, samples
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def make_baseline(work: Path) -> Path:
    write_csv(work / "train.csv", training_rows(20_000, seed=7))
    out = work / "base"
    cmd = [sys.executable, "-m", "streams", "baseline", str(work / "train.csv"), "--out", str(out)]
    subprocess.run([*cmd, "--model", "ctr"], check=True, capture_output=True)
    return out


def profile(events: int, partitions: int) -> None:
    """cProfile of the in-process "both stages" path on ``events`` records (no broker)."""
    with tempfile.TemporaryDirectory(prefix="logdrift-bench-") as tmp:
        baseline = load_baseline(make_baseline(Path(tmp)), None)
    raws = [value for _, value in messages(events)]
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.runcall(both_stages, baseline, raws, partitions, True)
    took = time.perf_counter() - began
    print(f"both stages, {events:,} events: {took:.2f} s under cProfile ({events / took:,.0f}/s)")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--sample", type=int, default=100_000, help="records for the in-process rates"
    )
    parser.add_argument(
        "--profile", type=int, metavar="EVENTS", help="cProfile both stages in process; no Kafka"
    )
    args = parser.parse_args()
    if args.profile:
        return profile(args.profile, args.partitions)
    info = start_kafka(partitions=4)
    app_id = f"bench{uuid.uuid4().hex[:8]}"
    topic = f"{app_id}-serving-logs"
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, broker on the same machine")
    with tempfile.TemporaryDirectory(prefix="logdrift-bench-") as tmp:
        work = Path(tmp)
        baseline_dir = make_baseline(work)
        took = asyncio.run(fill(info.url, topic, messages(args.events), args.partitions))
        print(
            f"filled {topic}: {args.events:,} events, {args.partitions} partitions, "
            f"{took:.0f} s ({args.events / took:,.0f}/s)"
        )
        bare = args.events / asyncio.run(bare_consumer(info.url, topic, args.events))
        sample = [value for _, value in messages(min(args.sample, args.events))]
        ceiling = in_process(load_baseline(baseline_dir, None), sample, args.partitions)
        seconds, samples = run_worker(
            info.url, app_id, baseline_dir, args.events, work / "worker.log"
        )
    worker = args.events / seconds
    print(f"{'reader':34} {'events/s':>10} {'us/event':>9} {'of bare':>8}")
    rows = [("bare aiokafka consumer", bare)]
    rows += [(f"in process: {name}", r) for name, r in ceiling]
    rows += [("logdrift worker (both stages)", worker)]
    for name, r in rows:
        print(f"{name:34} {r:>10,.0f} {1e6 / r:>9.1f} {r / bare:>8.1%}")
    print(
        f"in-process rates over the first {len(sample):,} records; worker over all {args.events:,}"
        f" in {seconds:.0f} s"
    )
    print("worker RSS at each tenth stage one read (records, MiB, seconds since its first):")
    for n, kib, at in samples:
        print(f"  {n:>12,} {kib / 1024:>8.1f} {at:>8.0f}")


if __name__ == "__main__":
    main()
