"""Outage: Elasticsearch stops for 60 s in the middle of a live stream and comes back on the same
port with the same data. The runner keeps accepting records, the backlog grows in its SQLite
outbox and is logged while it lasts, then drains; every anomaly ends up indexed exactly once,
and replaying them all creates no duplicate.

Runs last in this folder (it restarts the session's node)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from elasticsearch import AsyncElasticsearch, Elasticsearch

from connectors.elasticsearch import ElasticSink
from connectors.es_documents import IndexNames
from connectors.outbox import Outbox
from connectors.store import AnomalyStore
from streams.cli.main import main
from streams.simulation.demo import send
from streams.simulation.traffic import Injection, serving_records
from tests.integration.elasticsearch.conftest import EsRunner, Node, search_all
from tests.integration.patience import bound, wait_until

RATE = 100.0  # records per second, sent in real time: event time moves with the wall clock
SECONDS = 105  # of traffic
OUTAGE = 60.0
STOP_AFTER = 15.0  # seconds into the stream
START = 1_795_860_000.0


def backlog_sizes(output: str) -> list[int]:
    return [int(n) for n in re.findall(r"elasticsearch backlog: (\d+) documents waiting", output)]


def enqueued_between(store: Path, since: float, until: float) -> int:
    with sqlite3.connect(store) as conn:
        sql = (
            "SELECT COUNT(*) FROM outbox WHERE target = 'anomalies' AND enqueued_at BETWEEN ? AND ?"
        )
        return int(conn.execute(sql, (since, until)).fetchone()[0])


def indexed_any(es: Elasticsearch, prefix: str) -> bool:
    alias = f"{prefix}-anomalies"
    if not es.indices.exists_alias(name=alias):
        return False
    es.indices.refresh(index=alias)
    return int(es.count(index=alias)["count"]) > 0


async def replay(url: str, prefix: str, documents: list[dict[str, Any]]) -> bool:
    sink = ElasticSink(AsyncElasticsearch(url), IndexNames(prefix))
    try:
        return await sink.index_anomalies(documents) == []
    finally:
        await sink.close()


def outbox_ids(store: Path, target: str) -> list[str]:
    """The id of every document ever queued for ``target`` (one per delivery)."""
    with sqlite3.connect(store) as conn:
        rows = conn.execute("SELECT doc_id FROM outbox WHERE target = ?", (target,)).fetchall()
    return [doc_id for (doc_id,) in rows]


def alive(runner: EsRunner) -> bool:
    assert runner.proc.poll() is None, f"the runner died:\n{runner.output()[-3000:]}"
    return True


def wait_alive(runner: EsRunner, seconds: float) -> None:
    """Keep the node down this long at least (a minimum, never a deadline), checking every half
    second that the runner is still running."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert runner.proc.poll() is None, f"the runner died:\n{runner.output()[-3000:]}"
        time.sleep(0.5)


def wait_drained(runner: EsRunner, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with AnomalyStore(runner.store) as store:
        outbox = Outbox(store)
        while (backlog := outbox.backlog()) and time.monotonic() < deadline:
            assert runner.proc.poll() is None, runner.output()[-3000:]
            time.sleep(0.25)
    assert backlog == 0, f"{backlog} documents still waiting after {timeout} s"


def test_a_minute_without_elasticsearch_loses_nothing_and_duplicates_nothing(
    start_es_runner,
    es_node: Node,
    es: Elasticsearch,
    prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runner: EsRunner = start_es_runner(
        prefix,
        "--window-seconds",
        "2",
        "--min-count",
        "100",
        backoff_max="2",
        backlog_log_seconds="2",
    )
    # The schema break starts with the records sent once the node is down, so anomalies are
    # raised during the outage however slowly a busy machine gets through the first part.
    split = int(RATE * STOP_AFTER)
    injections = [
        Injection("category_surge", 500),
        Injection("mean_shift", 500),
        Injection("schema_break", split),
    ]
    records = list(
        serving_records(int(RATE * SECONDS), rate=RATE, start=START, injections=injections)
    )
    failures: list[BaseException] = []

    def stream(part: list[dict[str, Any]]) -> threading.Thread:
        def run() -> None:
            try:
                send(part, "127.0.0.1", runner.port, realtime=True, rate=RATE)
            except BaseException as exc:  # surfaced by the assertions below
                failures.append(exc)

        sender = threading.Thread(target=run, daemon=True)
        sender.start()
        return sender

    before = stream(records[:split])
    # indices refresh every 5 s: poll, refreshing
    wait_until(lambda: alive(runner) and indexed_any(es, prefix), 30, "indexing before the outage")
    before.join(timeout=bound(STOP_AFTER + 30))
    assert not before.is_alive() and failures == [], failures

    stopped_at = time.time()
    es_node.stop()
    sender = stream(records[split:])
    wait_until(
        lambda: alive(runner) and enqueued_between(runner.store, stopped_at, time.time()) > 0,
        60,
        "anomalies raised while the node is down",
    )
    status = CliRunner().invoke(main, ["es", "status", "--store", str(runner.store)])
    waiting = int(re.findall(r"outbox: ([\d,]+) pending", status.output)[0].replace(",", ""))
    assert waiting > 0, status.output  # the backlog, as an operator sees it mid-outage
    wait_alive(runner, OUTAGE - (time.time() - stopped_at))  # down at least this long
    restarting_at = time.time()
    es_node.start()
    up_at = time.time()
    sender.join(timeout=bound(SECONDS + 60))
    assert not sender.is_alive() and failures == [], failures
    wait_drained(runner, timeout=bound(120))
    output = runner.stop()

    # The backlog grew while the node was away, and said so in the log.
    sizes = backlog_sizes(output)
    assert len(sizes) >= 10, output[-3000:]
    assert max(sizes) > sizes[0], "the backlog grew during the outage"
    assert "elasticsearch unavailable" in output
    back = re.findall(r"back after ([\d.]+) s; shipping a backlog of (\d+) documents", output)
    drained = re.findall(r"backlog drained: (\d+) documents shipped in ([\d.]+) s", output)
    assert back and drained, output[-3000:]
    # (A node coming back may take part of a batch before all its shards are up, so the
    # backlog at "back" can be a little below the largest one logged.)
    assert int(drained[0][0]) >= int(back[0][1]) > 0, "the whole backlog shipped"
    during = enqueued_between(runner.store, stopped_at, restarting_at)
    assert during > 0, "anomalies were raised while the node was down"

    # Every anomaly indexed exactly once: same ids, same count, nothing left behind.
    with AnomalyStore(runner.store) as store:
        stored = {a.id: a for a in store.query()}
        counts = Outbox(store).counts()
    hits = search_all(es, f"{prefix}-anomalies")
    assert sorted(h["_id"] for h in hits) == sorted(stored)
    assert es.count(index=f"{prefix}-anomalies")["count"] == len(stored)
    assert set(outbox_ids(runner.store, "anomalies")) == set(stored)
    score_hits = search_all(es, f"{prefix}-drift-scores")
    scores = len(score_hits)
    assert {h["_id"] for h in score_hits} == set(outbox_ids(runner.store, "drift-scores"))
    # Every delivery acknowledged, none refused (a re-sent id overwrites its document).
    assert (counts.pending, counts.rejected) == (0, 0)
    targets = ("anomalies", "drift-scores", "incidents", "rollups")
    assert counts.shipped == sum(len(outbox_ids(runner.store, t)) for t in targets)
    # every incident once, in its newest version (its versions overwrite one another)
    incident_hits = search_all(es, f"{prefix}-incidents")
    assert {h["_id"] for h in incident_hits} == set(outbox_ids(runner.store, "incidents"))

    # Replaying every anomaly (a worker re-reading its topic) changes nothing.
    assert asyncio.run(replay(es_node.url, prefix, [a.to_document() for a in stored.values()]))
    es.indices.refresh(index=f"{prefix}-anomalies")
    assert es.count(index=f"{prefix}-anomalies")["count"] == len(stored)

    (down, peak), (shipped, seconds) = back[0], drained[0]
    with capsys.disabled():
        print(
            f"\n[outage] node down {up_at - stopped_at:.0f} s"
            f" (restart took {up_at - restarting_at:.0f} s); {len(stored)} anomalies"
            f" ({during} raised during the outage), {scores} drift scores;"
            f" the shipper saw the node back after {down} s with a backlog of {peak} documents"
            f" and shipped {shipped} in {seconds} s; `es status` showed {waiting} pending"
            " mid-outage"
        )
