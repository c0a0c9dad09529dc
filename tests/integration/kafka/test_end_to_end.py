"""Records on serving-logs with injected changes come out as anomalies on the anomalies topic:
the same verdicts, with the same ids, as the embedded Engine on the same records."""

from __future__ import annotations

from collections import Counter
from typing import Any

from detectors.anomaly import Anomaly
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

CHANGED = {"score", "device"}
STATIONARY = {"price", "age", "country", "is_returning", "prediction"}


def worker_run(
    kafka: ServerInfo,
    baseline: Baseline,
    start_worker: Any,
    app_id: str,
    injections: list[Injection],
) -> tuple[list[Anomaly], list[Anomaly], float, Any]:
    """Records with ``injections`` through a worker on 4 partitions: the Engine's anomalies about
    the real records, every anomaly on the topic once the Engine's are there, the tail's first
    event time, and the (still running) worker."""
    create_topic(kafka.url, f"{app_id}-serving-logs", 4)
    rows, tail_start = rows_with_tail(6_000, injections)
    expected = [a for a in engine_anomalies(baseline, rows) if a.timestamp < tail_start]
    worker = start_worker(app_id)
    worker.wait_for(rf"ready: assigned .*{app_id}-serving-logs/3", timeout=120)
    produce(kafka.url, f"{app_id}-serving-logs", serving_messages(rows))

    topic = f"{app_id}-anomalies"
    want = {a.id for a in expected}
    wait_until(lambda: want <= {a.id for a in anomalies_on(kafka.url, topic)}, 120, "anomalies")
    wait_until(lambda: worker.counters().get("records") == len(rows), 60, "every record counted")
    return expected, anomalies_on(kafka.url, topic), tail_start, worker


def test_injected_changes_become_the_engines_anomalies_and_nothing_else(
    kafka: ServerInfo, ctr_baseline: Baseline, start_worker: Any, app_id: str
) -> None:
    injections = [Injection("mean_shift", 3_000), Injection("category_surge", 3_000)]
    expected, got, tail_start, worker = worker_run(
        kafka, ctr_baseline, start_worker, app_id, injections
    )
    assert {a.feature for a in expected} == CHANGED  # the test data says what must be found
    assert before(got, tail_start) == {a.id for a in expected}
    assert {a.feature for a in got if a.timestamp < tail_start} == CHANGED
    assert not {a.feature for a in got} & STATIONARY
    assert max(Counter(a.id for a in got).values()) == 1  # no crash, so no re-delivery
    assert delay(got, "score", 3_000) == delay(expected, "score", 3_000)
    assert worker.counters()["dead_letters"] == 0
    worker.stop()
    assert worker.proc.returncode == 0, worker.text()[-3000:]


def test_a_shifted_model_output_with_the_inputs_unchanged_is_prediction_drift(
    kafka: ServerInfo, ctr_baseline: Baseline, start_worker: Any, app_id: str
) -> None:
    injections = [Injection("prediction_shift", 3_000)]
    expected, got, tail_start, worker = worker_run(
        kafka, ctr_baseline, start_worker, app_id, injections
    )
    assert {a.feature for a in expected} == {"prediction"}
    assert before(got, tail_start) == {a.id for a in expected}
    assert {a.feature for a in got} == {"prediction"}  # no input feature raises anything
    assert all(a.message.startswith("prediction drift: ") for a in got)
    assert delay(got, "prediction", 3_000) == delay(expected, "prediction", 3_000)
    worker.stop()
    assert worker.proc.returncode == 0, worker.text()[-3000:]
