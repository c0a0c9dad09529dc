"""Bad input is data: 10,000 malformed records mixed into a stream all land on dead-letters with
their original bytes and a reason, the counts match, the worker keeps going, and detection on
the good records is exactly what it would have been without them."""

from __future__ import annotations

import random
from collections import Counter

import orjson
from aiokafka.partitioner import murmur2

from detectors.baseline.reference import Baseline
from streams.simulation.traffic import Injection
from tests.integration.kafka.conftest import (
    anomalies_on,
    consume,
    create_topic,
    engine_anomalies,
    produce,
    serving_messages,
    wait_until,
)
from tests.integration.kafka.traffic import before, rows_with_tail
from tools.servers import ServerInfo

MALFORMED = 10_000
SHAPES = {  # what arrives -> the kind of reason it must be dead-lettered with
    b"\x00\xffnot json at all": "not_json",
    b'{"ts": "2027-01-15T08:00:00Z", "model": "ctr", "features": {"price": 1.0': "not_json",
    b"[1, 2, 3]": "<record>: expected an object, got list",
    b'{"ts": "2027-01-15T08:00:00Z", "model": "ctr"}': "features: missing",
    b'{"ts": "2027-01-15T08:00:00Z", "model": "ctr", "features": [1]}': (
        "features: expected an object, got list"
    ),
    b'{"ts": "yesterday", "model": "ctr", "features": {}}': "ts: not an ISO-8601 timestamp",
    b'{"ts": "2027-01-15T08:00:00Z", "model": "fraud", "features": {}}': (
        "model: no baseline for model 'fraud' (have: ctr)"
    ),
}


def test_malformed_records_are_dead_lettered_and_detection_is_unaffected(
    kafka: ServerInfo, ctr_baseline: Baseline, start_worker, app_id: str
) -> None:
    create_topic(kafka.url, f"{app_id}-serving-logs", 4)
    rows, tail_start = rows_with_tail(5_000, [Injection("mean_shift", 2_500)])
    expected = before(engine_anomalies(ctr_baseline, rows), tail_start)
    assert expected
    good = serving_messages(rows)
    shapes = list(SHAPES)
    rng = random.Random(2)
    bad = [(f"bad-{i}".encode(), shapes[i % len(shapes)]) for i in range(MALFORMED)]
    mixed = list(good)
    for message in bad:  # scattered through the stream, good records keep their order
        mixed.insert(rng.randrange(len(mixed) + 1), message)

    worker = start_worker(app_id)
    worker.wait_for(rf"ready: assigned .*{app_id}-serving-logs/3", timeout=120)
    produce(kafka.url, f"{app_id}-serving-logs", mixed)

    wait_until(
        lambda: (
            worker.counters().get("records") == len(rows)
            and worker.counters().get("dead_letters") == MALFORMED
        ),
        120,
        "every record accounted",
    )
    dead = consume(kafka.url, f"{app_id}-dead-letters")
    assert len(dead) == MALFORMED
    assert Counter(d.value for d in dead) == Counter(v for _, v in bad)  # original bytes
    for d in dead:
        assert d.headers["logdrift.kind"].decode() == SHAPES[d.value]
        assert d.headers["logdrift.reason"]  # the full message, e.g. where the JSON broke
        assert d.headers["logdrift.source"].startswith(f"{app_id}-serving-logs/".encode())
    assert {d.key for d in dead} == {k for k, _ in bad}

    wait_until(
        lambda: expected <= before(anomalies_on(kafka.url, f"{app_id}-anomalies"), tail_start),
        120,
        "the anomalies of the good records",
    )
    assert before(anomalies_on(kafka.url, f"{app_id}-anomalies"), tail_start) == expected
    assert worker.proc.poll() is None  # alive
    counted = worker.text().rsplit("counters: ", 1)[1].splitlines()[0]
    assert f"dead_letters={MALFORMED}" in counted and "not_json=" in counted
    produce(kafka.url, f"{app_id}-serving-logs", [(b"k", orjson.dumps({"late": "bad"}))])
    wait_until(lambda: worker.counters().get("dead_letters") == MALFORMED + 1, 30, "still alive")


def test_huge_values_are_kept_bounded_and_records_too_large_for_a_summary_dead_lettered(
    kafka: ServerInfo, start_worker, app_id: str
) -> None:
    """Kafka refuses messages over 1 MB, and summaries and states are messages: a category value
    of 60 KB or 950 KB is kept as its head and a digest (records counted, the worker running),
    a record whose unknown column names alone hold 100 KB is dead-lettered, naming them, and a
    record of 1,040,000 bytes that is not JSON is dead-lettered as its head, size and digest."""
    create_topic(kafka.url, f"{app_id}-serving-logs", 4)
    rows, _ = rows_with_tail(3_000, [])
    keys = (k for k in (f"big-{i}" for i in range(10**6)) if partition_of(k) == 0)
    for row in rows[1_000:1_040]:  # one partition's: 2.4 MB of text were they kept whole
        row["request_id"], row["features"]["device"] = next(keys), "w" * 60_000
    for row in rows[2_000:2_003]:
        row["features"]["device"] = "x" * 950_000
    too_large = rows[2_500:2_502]
    for row in too_large:
        row["features"] |= {f"debug_{i:03d}_{'y' * 500}": 1 for i in range(200)}
    worker = start_worker(app_id)
    worker.wait_for(rf"ready: assigned .*{app_id}-serving-logs/3", timeout=120)
    garbage = b"\x00" * 1_040_000  # under the broker's limit, over the producer's 1,000,000
    produce(kafka.url, f"{app_id}-serving-logs", [*serving_messages(rows), (b"junk", garbage)])

    try:
        wait_until(
            lambda: (
                worker.counters().get("records") == len(rows) - len(too_large)
                and worker.counters().get("dead_letters") == len(too_large) + 1
            ),
            120,
            "every record accounted",
        )
    except AssertionError:
        bad = [line for line in worker.text().splitlines() if "ERROR" in line]
        raise AssertionError("\n".join(line[:1500] for line in bad[:5])) from None
    dead = consume(kafka.url, f"{app_id}-dead-letters")
    (junk,) = [d for d in dead if d.key == b"junk"]
    assert junk.headers["logdrift.kind"] == b"not_json"
    assert junk.value == garbage[: len(junk.value)] and len(junk.value) <= 900_000
    assert junk.headers["logdrift.original_bytes"] == b"1040000"
    dead = [d for d in dead if d is not junk]
    assert {d.key for d in dead} == {r["request_id"].encode() for r in too_large}
    for d in dead:
        assert d.headers["logdrift.kind"] == b"too_large"
        assert d.headers["logdrift.reason"].startswith(b"unknown column names: ")
    # Stage two writes its states after the batch: still running after that, seen as three
    # more counters lines (one a second) rather than a fixed sleep.
    lines = worker.text().count("counters: ")
    wait_until(lambda: worker.text().count("counters: ") >= lines + 3, 30, "three more counters")
    assert worker.proc.poll() is None and "Crashed" not in worker.text()
    worker.stop()
    assert worker.proc.returncode == 0, worker.text()[-3000:]


def partition_of(key: str, partitions: int = 4) -> int:
    """Where the producer's default partitioner (Kafka's murmur2) puts a key."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
