"""kill -9 mid-stream, then start again: windows and detectors resume from the changelog, no
anomaly is lost, none gets a second id, and a change injected after the restart is caught
exactly when an uninterrupted Engine catches it."""

from __future__ import annotations

from collections import Counter

from detectors.baseline.reference import Baseline
from streams.simulation.traffic import Injection
from tests.integration.kafka.conftest import (
    anomalies_on,
    create_topic,
    engine_anomalies,
    produce,
    serving_messages,
    wait_until,
)
from tests.integration.kafka.traffic import before, delay, rows_with_tail
from tools.servers import ServerInfo

N = 9_000
KILL_AFTER = 3_000  # records produced before the crash
CHANGE_AFTER_RESTART = 6_000


def test_kill_9_and_restart_lose_nothing_and_duplicate_nothing(
    kafka: ServerInfo, ctr_baseline: Baseline, start_worker, app_id: str
) -> None:
    create_topic(kafka.url, f"{app_id}-serving-logs", 4)
    rows, tail_start = rows_with_tail(
        N, [Injection("schema_break", 1_500), Injection("mean_shift", CHANGE_AFTER_RESTART)]
    )
    expected_all = engine_anomalies(ctr_baseline, rows)
    expected = before(expected_all, tail_start)
    assert any(a.feature == "age" for a in expected_all)  # caught before the crash
    messages = serving_messages(rows)
    topic = f"{app_id}-serving-logs"

    first = start_worker(app_id)
    first.wait_for(rf"ready: assigned .*{topic}/3", timeout=120)
    produce(kafka.url, topic, messages[:KILL_AFTER])
    wait_until(lambda: first.counters().get("records", 0) >= KILL_AFTER, 60, "records read")
    produce(kafka.url, topic, messages[KILL_AFTER : KILL_AFTER + 1_000], pace=2_000)
    first.kill()  # mid-stream: records in flight, offsets and changelog writes uncommitted

    produce(kafka.url, topic, messages[KILL_AFTER + 1_000 :])  # a backlog while it is down
    second = start_worker(app_id)
    second.wait_for(rf"ready: assigned .*{topic}/3", timeout=120)

    anomalies_topic = f"{app_id}-anomalies"
    wait_until(
        lambda: expected <= before(anomalies_on(kafka.url, anomalies_topic), tail_start),
        180,
        "every anomaly of the uninterrupted Engine",
    )
    got = anomalies_on(kafka.url, anomalies_topic)
    assert before(got, tail_start) == expected  # nothing lost, no stray id
    copies = Counter(a.id for a in got)
    # At-least-once: an anomaly raised again on replay keeps its id (it overwrites downstream).
    assert all(len({(a.message, a.timestamp) for a in got if a.id == i}) == 1 for i in copies)
    # Within the same delay: after recovery, partitions may interleave slightly differently than
    # in one uninterrupted run (seen: 95 vs 94 events), so allow 10%.
    engine_delay = delay(expected_all, "score", CHANGE_AFTER_RESTART)
    assert delay(got, "score", CHANGE_AFTER_RESTART) <= engine_delay * 1.1
    log = second.text()
    assert "starts fresh" not in log and "starting fresh" not in log
    assert "feature_to_state-changelog" in log  # recovered from the changelog
    second.stop()
