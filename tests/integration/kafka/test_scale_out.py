"""Scale-out: two workers share a 4-partition topic and raise exactly the anomalies one worker
(and the Engine) raises; and detection delay, in events, does not grow with partitions,
because stage two feeds every feature's detectors the merged stream of all partitions."""

from __future__ import annotations

import re

from detectors.baseline.reference import Baseline
from streams.simulation.traffic import Injection
from tests.integration.kafka.conftest import (
    WorkerProcess,
    anomalies_on,
    create_topic,
    engine_anomalies,
    produce,
    serving_messages,
    wait_until,
)
from tests.integration.kafka.traffic import before, delay, rows_with_tail
from tools.servers import ServerInfo

CHANGE_AT = 3_000


def _serving_partitions(worker: WorkerProcess, topic: str) -> set[int]:
    lines = re.findall(r"ready: assigned (.*)", worker.text())
    return {int(p) for p in re.findall(rf"{re.escape(topic)}/(\d+)", lines[-1])} if lines else set()


def _run(kafka: ServerInfo, start_worker, app_id: str, partitions: int, workers: int, rows):
    topic = f"{app_id}-serving-logs"
    create_topic(kafka.url, topic, partitions)
    started = [start_worker(app_id) for _ in range(workers)]

    def settled() -> bool:
        shares = [_serving_partitions(w, topic) for w in started]
        return all(shares) and sum(map(len, shares)) == partitions == len(set().union(*shares))

    try:  # two workers on two shared cores: a rebalance can take a while under load
        wait_until(settled, 240, "every worker assigned its own share of serving-logs", step=0.5)
    except AssertionError as exc:
        said = [
            re.findall(r'"message": "(ready: assigned [^"]*|[^"]*rebalanc[^"]*)', w.text())
            for w in started
        ]
        raise AssertionError(f"{exc}; the workers said: {said}") from None
    shares = [_serving_partitions(w, topic) for w in started]
    produce(kafka.url, topic, serving_messages(rows))
    return started, shares


def test_two_workers_share_partitions_and_raise_what_one_worker_raises(
    kafka: ServerInfo, ctr_baseline: Baseline, start_worker, app_id: str
) -> None:
    rows, tail_start = rows_with_tail(
        6_000, [Injection("mean_shift", CHANGE_AT), Injection("new_category", CHANGE_AT)]
    )
    expected_all = engine_anomalies(ctr_baseline, rows)
    expected = before(expected_all, tail_start)

    two, shares = _run(kafka, start_worker, f"{app_id}x4", 4, 2, rows)
    assert all(len(s) == 2 for s in shares) and not shares[0] & shares[1]
    wait_until(
        lambda: expected <= before(anomalies_on(kafka.url, f"{app_id}x4-anomalies"), tail_start),
        120,
        "the anomalies, from two workers",
    )
    scaled = anomalies_on(kafka.url, f"{app_id}x4-anomalies")
    assert before(scaled, tail_start) == expected
    # Both workers summarized their share (the counters line is logged every few seconds).
    wait_until(
        lambda: all(w.counters().get("summaries", 0) > 0 for w in two),
        30,
        "both workers' counters showing their summaries",
    )
    for w in two:
        w.stop()

    one, _ = _run(kafka, start_worker, f"{app_id}x1", 1, 1, rows)
    wait_until(
        lambda: expected <= before(anomalies_on(kafka.url, f"{app_id}x1-anomalies"), tail_start),
        120,
        "the anomalies, from one partition",
    )
    single = anomalies_on(kafka.url, f"{app_id}x1-anomalies")
    assert before(single, tail_start) == expected
    at_1, at_4 = delay(single, "score", CHANGE_AT), delay(scaled, "score", CHANGE_AT)
    assert at_4 <= 1.2 * at_1, (at_1, at_4)
    assert at_4 == delay(expected_all, "score", CHANGE_AT)
    one[0].stop()
