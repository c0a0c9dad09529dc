"""How fast is the engine next to a plain JSON decode of the same serving records, and does its
memory stay flat as events pile up?

    .venv/bin/python bench/engine.py [--records 200000] [--memory-records 1000000]

Prints records/s of each stage side by side (orjson.loads, decode_record, Engine.process, and
all three end to end), then the process's peak RSS after 100k and after 1M records.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from detectors.baseline import Baseline
from detectors.engine import Engine, EngineOptions
from detectors.infer import BaselineOptions, build_profile
from detectors.infer_schema import infer_schema
from detectors.records import ServingRecord, decode_record
from detectors.schema import Schema
from streams.traffic import serving_records, training_rows

START = 1_795_860_000.0
RATE = 100.0  # records per second of event time: 6,000 records per 60 s window
OPTIONS = EngineOptions(window_seconds=60, min_count=200)


def make_baseline() -> Baseline:
    rows = 30_000, 7
    profile = build_profile(training_rows(*rows), training_rows(*rows), BaselineOptions(), "ctr")
    doc, _ = infer_schema(profile, model="ctr", tolerance=0.25, sensitive=frozenset())
    return Baseline.of(Schema.model_validate(doc), profile, b"bench-key")


def stream(n: int) -> Iterator[dict[str, Any]]:
    return serving_records(n, rate=RATE, start=START, seed=1)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, n: int, work: Callable[[], object]) -> tuple[str, float]:
    began = time.perf_counter()
    work()
    return label, n / (time.perf_counter() - began)


def engine_over(baseline: Baseline, records: Iterable[ServingRecord]) -> int:
    engine = Engine([baseline], OPTIONS)
    anomalies = 0
    for record in records:
        anomalies += len(engine.process(record).anomalies)
    return anomalies + len(engine.close_all().anomalies)


def throughput(baseline: Baseline, n: int) -> list[tuple[str, float]]:
    lines = [orjson.dumps(r) for r in stream(n)]
    parsed = [orjson.loads(line) for line in lines]
    decoded = [decode_record(p) for p in parsed]
    return [
        timed("orjson.loads", n, lambda: [orjson.loads(line) for line in lines]),
        timed("decode_record", n, lambda: [decode_record(p) for p in parsed]),
        timed("Engine.process", n, lambda: engine_over(baseline, decoded)),
        timed(
            "end to end (bytes in)",
            n,
            lambda: engine_over(baseline, (decode_record(orjson.loads(x)) for x in lines)),
        ),
    ]


def memory(baseline: Baseline, checkpoints: list[int]) -> list[tuple[int, float]]:
    """Peak RSS after each checkpoint of one engine fed a generated (never stored) stream."""
    engine = Engine([baseline], OPTIONS)
    marks = []
    for i, raw in enumerate(stream(checkpoints[-1]), start=1):
        engine.process(decode_record(raw))
        if i in checkpoints:
            marks.append((i, peak_rss_mb()))
    return marks


def print_throughput(rates: list[tuple[str, float]], n: int) -> None:
    base = rates[0][1]
    print(f"throughput over {n:,} serving records ({RATE:g}/s event time, 60 s windows)")
    print(f"  {'stage':24} {'records/s':>12} {'us/record':>10} {'vs orjson':>10}")
    for label, rate in rates:
        print(f"  {label:24} {rate:12,.0f} {1e6 / rate:10.1f} {rate / base:10.3f}")


def print_memory(before: float, marks: list[tuple[int, float]]) -> None:
    print(f"engine memory (peak RSS; {before:,.1f} MB with the baseline built, before any record)")
    print(f"  {'records':>12} {'peak RSS MB':>12} {'growth MB':>10}")
    for n, rss in marks:
        print(f"  {n:12,} {rss:12,.1f} {rss - before:10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--memory-records", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    baseline = make_baseline()
    before = peak_rss_mb()
    # Memory first: the throughput run holds its records in lists, which would mask the peak.
    marks = memory(baseline, [args.memory_records // 10, args.memory_records])
    print_throughput(throughput(baseline, args.records), args.records)
    print_memory(before, marks)


if __name__ == "__main__":
    main()
