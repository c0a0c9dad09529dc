"""Prototype, not part of logdrift: the worker's other design, timed beside a bare aiokafka
consumer on the same topic (issue 13's target: the worker at >= 50% of a bare consumer).

Today stage one's summaries carry every record's value, and stage two merges the partitions
value by value, in event-time order, before the window counts and the change detectors see
them: ~17 us per event in stage two, in process, against 2.6-3.5 us for a bare consumer's whole
read (bench/worker.py). Here stage one reduces each fetched batch to per-second aggregates per
feature (count, sum, sum of squares, bin or category counts), and stage two merges seconds, not
values: ADWIN and Page-Hinkley take one per-second mean of each numeric feature, the counts of
every feature add up into 60-s windows, judged by PSI against the baseline. A detector that
sees 100 events as one mean is another detector, so this measures what the design costs, not
what it catches.

Stage one decodes two ways: logdrift's own (``orjson.loads`` per line, ``decode_block``,
``observe_columns``: every schema check), and ``pyarrow.json`` over the batch's lines at once
(types only: a type that breaks the schema fails the whole block, the exact path's job). The
aggregates go through an orjson round trip, as a summaries topic would carry them (not through
Kafka: a few hundred bytes per second of event time and feature).

    PYTHONPATH=. .venv/bin/python bench/prototype_seconds.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
from numpy.typing import NDArray
from river.drift import ADWIN, PageHinkley

sys.path.insert(0, str(Path(__file__).resolve().parent))
import worker as bench

from connectors.baseline_files import load_baseline
from detectors.baseline.reference import Baseline, FeatureReference
from detectors.blocks import decode_block
from detectors.drift.distances import psi
from detectors.stages import Numbers, Texts, observe_columns
from tools.servers import start_kafka

Seconds = dict[str, Any]  # sec, n, sum, sum2, counts (one row of bin/category counts each)
Reduce = Callable[[Baseline, list[bytes]], dict[str, Seconds]]


# ---- stage one: a batch of lines -> per-second aggregates per feature --------------------
def per_second(
    sec: NDArray[np.int64], xs: NDArray[np.float64], kinds: NDArray[np.int64], k: int
) -> Seconds:
    """Count, sum, sum of squares and the ``k`` kinds' counts (bins or categories) per second."""
    u, inv = np.unique(sec, return_inverse=True)
    m = len(u)
    counts = np.bincount(inv * k + kinds, minlength=m * k).reshape(m, k)
    return {
        "sec": u,
        "n": np.bincount(inv, minlength=m),
        "sum": np.bincount(inv, xs, m),
        "sum2": np.bincount(inv, xs * xs, m),
        "counts": counts,
    }


def numbers(ref: FeatureReference, sec: NDArray[np.int64], xs: NDArray[np.float64]) -> Seconds:
    bins = np.searchsorted(np.asarray(ref.edges), xs, side="right")
    return per_second(sec, xs, bins, len(ref.edges) + 1)


def categories(ref: FeatureReference, sec: NDArray[np.int64], values: list[str]) -> Seconds:
    index = {c: i for i, c in enumerate(ref.categories)}
    other = len(index)
    kinds = np.fromiter(map(index.get, values, repeat(other)), np.int64, len(values))
    return per_second(sec, np.zeros(len(values)), kinds, other + 1)


def reduce_logdrift(baseline: Baseline, raws: list[bytes]) -> dict[str, Seconds]:
    groups = decode_block([orjson.loads(r) for r in raws])
    if groups is None or len(groups) > 1:
        raise SystemExit("the prototype takes blocks of one model version, with no exact path")
    out: dict[str, Seconds] = {}
    for g in groups:
        sec = np.floor(np.asarray(g.ts)).astype(np.int64)
        columns = observe_columns(baseline, g.features, g.predictions)
        for name, ref in baseline.references.items():
            column = columns[name]
            if isinstance(column, Numbers):
                out[name] = numbers(ref, sec, column.xs)
            elif isinstance(column, Texts):
                out[name] = categories(ref, sec, column.values)
            else:  # a few flagged values: the valid ones count (the prototype skips the rest)
                keep = [k for k, o in enumerate(column) if not (o.missing or o.codes)]
                values = [column[k].value for k in keep]
                if ref.numeric:
                    out[name] = numbers(ref, sec[keep], np.asarray(values, np.float64))
                else:
                    out[name] = categories(ref, sec[keep], [str(v) for v in values])
    return out


def arrow_schema(baseline: Baseline) -> pa.Schema:
    kinds = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_()}
    features = [
        pa.field(n, kinds.get(s.type, pa.string()))
        for n, s in baseline.schema.features.items()
        if n != "prediction"
    ]
    return pa.schema(
        [
            ("ts", pa.timestamp("ms", tz="UTC")),
            ("features", pa.struct(features)),
            ("prediction", pa.float64()),
        ]
    )


def reduce_arrow(baseline: Baseline, raws: list[bytes]) -> dict[str, Seconds]:
    schema = arrow_schema(baseline)  # ~20 us a batch
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    blocks = pj.ReadOptions(block_size=64 * 1024)  # a batch in several blocks, parsed in parallel
    table = pj.read_json(io.BytesIO(b"\n".join(raws)), parse_options=options, read_options=blocks)
    sec = table.column("ts").combine_chunks().cast(pa.int64()).to_numpy() // 1000
    features = table.column("features").combine_chunks()
    out: dict[str, Seconds] = {}
    for name, ref in baseline.references.items():
        column = (
            table.column("prediction").combine_chunks()
            if name == "prediction"
            else features.field(name)
        )
        if column.null_count:
            raise SystemExit(f"{name}: nulls; the prototype has no exact path")
        if ref.numeric:
            out[name] = numbers(ref, sec, column.to_numpy(zero_copy_only=False).astype(np.float64))
            continue
        if ref.spec.type == "bool":
            column = pc.if_else(column, "true", "false")
        known = pa.array(ref.categories, pa.string())
        kinds = pc.fill_null(pc.index_in(column, value_set=known), len(ref.categories))
        xs = np.zeros(len(column))
        out[name] = per_second(sec, xs, kinds.to_numpy().astype(np.int64), len(ref.categories) + 1)
    return out


# ---- stage two: seconds merged over partitions in event-time order -----------------------
class SecondsTrack:
    """One feature: pending seconds until every partition is past them, then ADWIN and
    Page-Hinkley on each second's mean, and the counts into 60-s windows judged by PSI."""

    def __init__(self, ref: FeatureReference, partitions: int) -> None:
        self.ref, self.marks = ref, [-math.inf] * partitions
        self.pending: dict[int, list[Any]] = {}
        self.adwin, self.ph = ADWIN(), PageHinkley()
        self.alarms, self.windows, self.end = 0, 0, -math.inf
        self.counts: NDArray[np.int64] | None = None
        self.expected = np.asarray(ref.bin_probs if ref.numeric else [*ref.category_probs.values()])

    def receive(self, partition: int, s: Seconds) -> None:
        for sec, n, total, counts in zip(s["sec"], s["n"], s["sum"], s["counts"], strict=True):
            held = self.pending.get(sec)
            if held is None:
                self.pending[sec] = [n, total, np.asarray(counts)]
            else:
                held[0] += n
                held[1] += total
                held[2] += counts
        if s["sec"]:
            self.marks[partition] = max(self.marks[partition], s["sec"][-1])  # it may still grow
        self.release(min(self.marks))

    def release(self, mark: float) -> None:
        for sec in sorted(k for k in self.pending if k < mark):
            n, total, counts = self.pending.pop(sec)
            if sec >= self.end:
                self.close(sec)
            if self.ref.numeric:
                mean = total / n
                self.adwin.update(mean)
                self.ph.update(mean)
                self.alarms += self.adwin.drift_detected + self.ph.drift_detected
            self.counts = counts if self.counts is None else self.counts + counts

    def close(self, sec: int) -> None:
        if self.counts is not None:
            k = len(self.expected)
            observed = self.counts[:k] / max(1, self.counts.sum())
            psi(observed.tolist(), self.expected.tolist())
            self.windows += 1
        self.counts = None
        self.end = (sec // bench.WINDOW_SECONDS + 1) * bench.WINDOW_SECONDS


def apply(
    tracks: dict[str, SecondsTrack],
    baseline: Baseline,
    p: int,
    reduced: dict[str, Seconds],
    partitions: int,
) -> None:
    wire = orjson.loads(orjson.dumps(reduced, option=orjson.OPT_SERIALIZE_NUMPY))
    for name, seconds in wire.items():
        track = tracks.get(name)
        if track is None:
            track = tracks[name] = SecondsTrack(baseline.references[name], partitions)
        track.receive(p, seconds)


# ---- the consumers ----------------------------------------------------------------------
async def prototype_consumer(
    url: str,
    topic: str,
    events: int,
    baseline: Baseline,
    reduce: Reduce,
    partitions: int,
    threaded: bool,
) -> tuple[float, dict[str, SecondsTrack]]:
    consumer = await bench.reader(url, topic, "proto")
    tracks: dict[str, SecondsTrack] = {}
    seen, began = 0, 0.0
    reducing: asyncio.Future[list[tuple[int, dict[str, Seconds]]]] | None = None

    def reduced(batch: dict[Any, list[Any]]) -> list[tuple[int, dict[str, Seconds]]]:
        return [
            (tp.partition, reduce(baseline, [m.value or b"" for m in ms]))
            for tp, ms in batch.items()
        ]

    try:
        while seen < events:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5_000)
            if batch and not began:
                began = time.perf_counter()
            seen += sum(map(len, batch.values()))
            if not threaded:
                for p, r in reduced(batch):
                    apply(tracks, baseline, p, r, partitions)
                continue
            # one batch reduced in a thread while the next is fetched, in case the fetch and the
            # decode overlap (pyarrow and numpy let go of the GIL in parts; BENCHMARKS.md: they
            # hardly do); stage two applies them in order
            if reducing is not None:
                for p, r in await reducing:
                    apply(tracks, baseline, p, r, partitions)
            reducing = asyncio.ensure_future(asyncio.to_thread(reduced, batch))
        if reducing is not None:
            for p, r in await reducing:
                apply(tracks, baseline, p, r, partitions)
    finally:
        await consumer.stop()
    for track in tracks.values():
        track.release(math.inf)
    return time.perf_counter() - began, tracks


def in_process(baseline: Baseline, raws: list[bytes], reduce: Reduce, partitions: int) -> float:
    parts = bench._by_partition(raws, partitions)
    tracks: dict[str, SecondsTrack] = {}
    began = time.perf_counter()
    for start in range(0, max(map(len, parts)), 5_000 // partitions):
        for p, part in enumerate(parts):
            chunk = [raw for _, raw in part[start : start + 5_000 // partitions]]
            if chunk:
                apply(tracks, baseline, p, reduce(baseline, chunk), partitions)
    return len(raws) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--sample", type=int, default=100_000)
    args = parser.parse_args()
    info = start_kafka(partitions=args.partitions)
    topic = f"proto{uuid.uuid4().hex[:8]}-serving-logs"
    with tempfile.TemporaryDirectory(prefix="logdrift-proto-") as tmp:
        baseline = load_baseline(bench.make_baseline(Path(tmp)), None)
    asyncio.run(bench.fill(info.url, topic, bench.messages(args.events), args.partitions))
    sample = [value for _, value in bench.messages(min(args.sample, args.events))]
    rows: list[tuple[str, float]] = []
    bare = args.events / asyncio.run(bench.bare_consumer(info.url, topic, args.events))
    rows.append(("bare aiokafka consumer", bare))
    began = time.perf_counter()
    [orjson.loads(r) for r in sample]
    rows.append(("in process, orjson.loads only", len(sample) / (time.perf_counter() - began)))
    for name, reduce in (("logdrift checks", reduce_logdrift), ("pyarrow.json", reduce_arrow)):
        rows.append((f"in process, {name}", in_process(baseline, sample, reduce, args.partitions)))
        for threaded in (False, True):
            took, tracks = asyncio.run(
                prototype_consumer(
                    info.url, topic, args.events, baseline, reduce, args.partitions, threaded
                )
            )
            alarms = sum(t.alarms for t in tracks.values())
            windows = sum(t.windows for t in tracks.values())
            how = "stage one in a thread" if threaded else "one thread"
            label = f"consumer, {name}, {how} ({windows:,} windows, {alarms} alarms)"
            rows.append((label, args.events / took))
    print(
        f"{args.events:,} events, {args.partitions} partitions; prototype of per-second stage two"
    )
    print(f"{'reader':66} {'events/s':>10} {'us/event':>9} {'of bare':>8}")
    for name, r in rows:
        print(f"{name:66} {r:>10,.0f} {1e6 / r:>9.1f} {r / bare:>8.1%}")


if __name__ == "__main__":
    main()
