"""Issue 15, feature skew against the real broker: the worker joins the pipeline's feature
records (pipeline-features, co-partitioned with serving-logs by request id, waiting entries in a
changelog table) to the serving records, and its judge raises the same feature_skew anomalies,
with the same ids and messages, as the embedded runner (`logdrift run`, fed the same records by
the real fluent-logger client, pipeline records under their own tag)."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.partitioner import murmur2

from connectors.fluent import FluentClient
from connectors.store import AnomalyStore
from detectors.anomaly import Anomaly, iso
from detectors.records import parse_ts
from streams.simulation.traffic import serving_records
from tests.integration.kafka.conftest import (
    START,
    WorkerProcess,
    anomalies_on,
    create_topic,
    produce,
    start_worker_process,
    wait_until,
)
from tests.integration.test_embedded_labels import Output
from tools.servers import ServerInfo

pytestmark = pytest.mark.timeout(900)

SKEW_ENV = {
    "LOGDRIFT_FEATURE_SKEW__ENABLED": "true",
    "LOGDRIFT_FEATURE_SKEW__WINDOW_SECONDS": "60",
    "LOGDRIFT_FEATURE_SKEW__WAIT_SECONDS": "30",
    "LOGDRIFT_FEATURE_SKEW__HORIZON_SECONDS": "600",
    "LOGDRIFT_KAFKA__BATCH_MAX_RECORDS": "1000",
}
EVENTS = 12_000  # 120 s at 100/s: two windows of feature skew
LAG = 5.0  # the pipeline's record of a request, this long after it was served


def pipeline_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Price in cents for 4% of requests; country DE spelt 'de' in the pipeline."""
    out = []
    for i, r in enumerate(rows):
        features = dict(r["features"])
        if i % 25 == 0 and features["price"] is not None:
            features["price"] = features["price"] * 100
        if features["country"] == "DE":
            features["country"] = "de"
        ts = iso(parse_ts(r["ts"]) + LAG)
        out.append(
            {"ts": ts, "request_id": r["request_id"], "model": r["model"], "features": features}
        )
    return out


def tail() -> list[dict[str, Any]]:
    """Agreeing traffic far later, in every partition: every clock passes the windows' wait."""
    rows = list(serving_records(40, rate=100.0, start=START + 1_000, seed=99))
    rows = [{**r, "request_id": f"tail-{r['request_id']}"} for r in rows]
    assert {(murmur2(r["request_id"].encode()) & 0x7FFFFFFF) % 4 for r in rows} == {0, 1, 2, 3}
    return rows


def agreeing(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "ts": r["ts"],
            "request_id": r["request_id"],
            "model": r["model"],
            "features": r["features"],
        }
        for r in rows
    ]


def messages(rows: list[dict[str, Any]]) -> list[tuple[bytes | None, bytes]]:
    return [(r["request_id"].encode(), orjson.dumps(r)) for r in rows]


def run_embedded(
    start_runner: Any, store: Path, stream: list[tuple[str, dict[str, Any]]]
) -> list[Anomaly]:
    """`logdrift run` fed (tag, record) in event-time order through fluent-logger; stopped, it
    judges every open window; its store's anomalies."""
    runner = start_runner(store)
    output = Output(runner.proc)
    with FluentClient("127.0.0.1", runner.port) as client:
        for i, (tag, record) in enumerate(stream):
            client.emit(tag, record, parse_ts(record["ts"]))
            if i % 500 == 499:
                time.sleep(0.1)  # paced: fluent-logger's 3 s timeout must not meet a backlog
    # the tail moved both clocks: the last window before it is judged, everything was read
    output.wait_for(f"feature skew ctr v3 {iso(START + 60)}..", 300)
    out = output.stop()
    assert "feature skew ctr v3" in out
    counts = re.search(
        r"feature skew join: .*?([\d,]+) joined, ([\d,]+) expired, ([\d,]+) evicted", out
    )
    assert counts is not None, out[-2000:]
    assert counts.groups() == (f"{EVENTS + 40:,}", "0", "0"), counts.group(0)
    with AnomalyStore(store) as s:
        return s.query(kind="feature_skew")


def in_time_order(
    serving: list[dict[str, Any]], computed: list[dict[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    tagged = [(parse_ts(r["ts"]), 0, "serving", r) for r in serving]
    tagged += [(parse_ts(r["ts"]), 1, "pipeline", r) for r in computed]
    return [(tag, r) for _, _, tag, r in sorted(tagged, key=lambda t: (t[0], t[1]))]


def skew_of(found: list[Anomaly]) -> list[tuple[str, str]]:
    return sorted((a.id, a.message) for a in found if a.kind == "feature_skew")


def join_counts(worker: WorkerProcess) -> dict[str, int]:
    lines = re.findall(r"feature skew join: (pending=.*)", worker.text())
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])} if lines else {}


def test_the_worker_and_the_embedded_runner_raise_the_same_feature_skew_anomalies(
    kafka: ServerInfo,
    baseline_dir: Path,
    start_runner: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app_id = f"skew{uuid.uuid4().hex[:8]}"
    for topic in ("serving-logs", "pipeline-features"):
        create_topic(kafka.url, f"{app_id}-{topic}", 4)
    serving = list(serving_records(EVENTS, rate=100.0, start=START, seed=5))
    computed = pipeline_rows(serving)
    later = tail()
    for key, value in SKEW_ENV.items():
        monkeypatch.setenv(key, value)
    stream = in_time_order(serving + later, computed + agreeing(later))
    expected = skew_of(run_embedded(start_runner, tmp_path / "runner.db", stream))
    assert {m.split(" (")[0] for _, m in expected} == {"price", "country"}, expected
    worker = start_worker_process(kafka, [baseline_dir], tmp_path / "worker", app_id, SKEW_ENV)
    try:
        worker.wait_for(rf"ready: assigned .*{app_id}-pipeline-features/3", timeout=120)
        produce(kafka.url, f"{app_id}-serving-logs", messages(serving))
        produce(kafka.url, f"{app_id}-pipeline-features", messages(computed))
        wait_until(lambda: join_counts(worker).get("joined") == EVENTS, 300, "every request joined")
        produce(kafka.url, f"{app_id}-serving-logs", messages(later))
        produce(kafka.url, f"{app_id}-pipeline-features", messages(agreeing(later)))
        worker.wait_for(rf"feature skew ctr v3 {re.escape(iso(START + 60))}\.\.", timeout=180)
        found = skew_of(anomalies_on(kafka.url, f"{app_id}-anomalies"))
        counts = join_counts(worker)
    finally:
        worker.stop()
    assert found == expected
    assert (counts["evicted"], counts["unmatched"]) == (0, 0), counts
    assert any("a unit change?" in m for _, m in found)
    assert any("serving's 'DE' is the pipeline's 'de'" in m for _, m in found)
