"""A stream that goes quiet has its last windows closed by the worker, as the embedded runner
closes them: after window.idle_close_seconds without a record, the open windows are judged
(Engine.close_until), with the same anomalies as the Engine raises."""

from __future__ import annotations

from typing import Any

from detectors.anomaly import Anomaly
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions, Result
from detectors.records import decode_record
from streams.simulation.traffic import Injection, serving_records
from tests.integration.kafka.conftest import (
    RATE,
    START,
    WINDOW_SECONDS,
    anomalies_on,
    create_topic,
    produce,
    serving_messages,
    wait_until,
)
from tests.integration.patience import bound
from tools.servers import ServerInfo

WINDOW_DETECTORS = {"l_infinity", "jensen_shannon", "psi"}


def engine_closing_idle(baseline: Baseline, rows: list[dict[str, Any]]) -> list[Anomaly]:
    """The Engine on the rows in event-time order, then its idle close."""
    engine = Engine([baseline], EngineOptions(WINDOW_SECONDS, 200))
    out = Result()
    for row in sorted(rows, key=lambda r: r["ts"]):
        out.extend(engine.process(decode_record(row)))
    out.extend(engine.close_until(float("inf")))
    return out.anomalies


def test_an_idle_models_last_window_closes_with_the_engines_anomalies(
    kafka: ServerInfo, ctr_baseline: Baseline, start_worker: Any, app_id: str
) -> None:
    # 2,500 records at RATE a second: two full windows and a half one (500 >= min_count) that
    # only an idle close can judge, since no later record comes to close it.
    injections = [Injection("category_surge", 0)]
    rows = list(serving_records(2_500, rate=RATE, start=START, injections=injections, seed=11))
    expected = engine_closing_idle(ctr_baseline, rows)
    last_start = START + 2 * WINDOW_SECONDS
    idle_closed = {
        a.id for a in expected if a.window_start == last_start and a.detector in WINDOW_DETECTORS
    }
    assert idle_closed  # the surge is in the last window too: the test can fail

    create_topic(kafka.url, f"{app_id}-serving-logs", 4)
    # Quiet means no summary for this long by the wall clock: on a busy machine stage two can
    # fall silent for seconds mid-stream, and an idle close then would judge a window early.
    idle = bound(10)
    worker = start_worker(app_id, LOGDRIFT_WINDOW__IDLE_CLOSE_SECONDS=str(idle))
    worker.wait_for(rf"ready: assigned .*{app_id}-serving-logs/3", timeout=120)
    produce(kafka.url, f"{app_id}-serving-logs", serving_messages(rows))

    topic = f"{app_id}-anomalies"
    want = {a.id for a in expected}
    wait_until(
        lambda: want <= {a.id for a in anomalies_on(kafka.url, topic)}, 120 + idle, "anomalies"
    )
    got = anomalies_on(kafka.url, topic)
    assert {a.id for a in got} == want  # the idle close raised the Engine's, and nothing else
    assert idle_closed <= {a.id for a in got}
    worker.stop()
    assert worker.proc.returncode == 0, worker.text()[-3000:]
