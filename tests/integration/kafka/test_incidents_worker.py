"""The worker's incidents are the Engine's: the same ids, openings, counts, peaks and
resolutions on the same records, whatever the partitions and batches (each incident's key is
tracked by the stage-two owner of its feature, fed what the Engine's tracker is fed); and its
window roll-ups, merged from the features' parts, are the Engine's."""

from __future__ import annotations

import math
from typing import Any

import orjson

from detectors.anomaly import iso
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions
from detectors.incidents.feed import track
from detectors.incidents.rollups import RollUp
from detectors.incidents.tracker import Incident, IncidentOptions, IncidentTracker
from detectors.records import decode_record
from streams.simulation.traffic import Injection, serving_records
from tests.integration.kafka.conftest import (
    RATE,
    START,
    WINDOW_SECONDS,
    anomalies_on,
    consume,
    create_topic,
    epoch,
    incidents_on,
    produce,
    serving_messages,
    wait_until,
)
from tests.integration.kafka.traffic import TAIL
from tests.integration.patience import bound
from tools.servers import ServerInfo

N = 14_000  # 14 windows of 1,000 records
CHANGED = range(3_000, 5_500)  # score shifts and device surges for windows 3 to 5


def rows_changing_then_quiet() -> tuple[list[dict[str, Any]], float]:
    """A change that lasts two and a half windows, then eight quiet windows (its incidents
    resolve), then a tail ten windows later that closes the last real window."""
    changes = [Injection("mean_shift", 0), Injection("category_surge", 0)]
    shifted = serving_records(N + TAIL, rate=RATE, start=START, injections=changes, seed=5)
    plain = serving_records(N + TAIL, rate=RATE, start=START, seed=5)
    rows = [s if i in CHANGED else p for i, (s, p) in enumerate(zip(shifted, plain, strict=True))]
    tail_start = (math.floor(epoch(rows[N - 1]) / WINDOW_SECONDS) + 10) * WINDOW_SECONDS
    for i, row in enumerate(rows[N:]):
        row["ts"] = iso(tail_start + i / RATE)
    return rows, tail_start


def engine_incidents(
    baseline: Baseline, rows: list[dict[str, Any]]
) -> tuple[dict[str, Incident], dict[str, RollUp]]:
    """The Engine's incidents (each one's last state) and window roll-ups, record by record in
    event-time order."""
    engine = Engine([baseline], EngineOptions(WINDOW_SECONDS, 200))
    tracker = IncidentTracker(IncidentOptions())
    found: dict[str, Incident] = {}
    rollups: dict[str, RollUp] = {}
    for row in sorted(rows, key=lambda r: r["ts"]):
        step = track(tracker, engine.process(decode_record(row)))
        found |= {i.id: i for i in step.incidents()}
        rollups |= {r.id: r for r in step.rollups}
    return found, rollups


def rollups_on(url: str, topic: str) -> dict[str, RollUp]:
    return {
        m.key.decode(): RollUp.from_plain(orjson.loads(m.value))
        for m in consume(url, topic)
        if m.key
    }


def test_the_worker_raises_the_engines_incidents_on_the_same_stream(
    kafka: ServerInfo, ctr_baseline: Baseline, start_worker: Any, app_id: str
) -> None:
    rows, tail_start = rows_changing_then_quiet()
    found, engine_rollups = engine_incidents(ctr_baseline, rows)
    expected = {i: inc for i, inc in found.items() if inc.opened_at < tail_start}
    windows = {i: r for i, r in engine_rollups.items() if r.start < tail_start}
    assert len(windows) == N // 1_000 and {f for r in windows.values() for f in r.alarmed} == {
        "score",
        "device",
    }
    assert {inc.feature for inc in expected.values()} == {"score", "device"}
    assert {inc.status for inc in expected.values()} == {"resolved"}  # the test data says so
    create_topic(kafka.url, f"{app_id}-serving-logs", 4)
    # The Engine saw every record of each window: so must the worker. On a loaded machine a
    # feature's summaries can pause for longer than the default 30 s of quiet; an idle close
    # would then judge a window early (tests/integration/kafka/test_idle_close.py tests it).
    worker = start_worker(app_id, LOGDRIFT_WINDOW__IDLE_CLOSE_SECONDS=str(bound(600)))
    worker.wait_for(rf"ready: assigned .*{app_id}-serving-logs/3", timeout=120)
    produce(kafka.url, f"{app_id}-serving-logs", serving_messages(rows))

    topic = f"{app_id}-incidents"

    def resolved() -> bool:
        got = incidents_on(kafka.url, topic)
        return all(i in got and got[i].status == "resolved" for i in expected)

    try:
        wait_until(resolved, 300, "the Engine's incidents, resolved, on the incidents topic")
    except AssertionError as exc:
        got = {i: inc.status for i, inc in incidents_on(kafka.url, topic).items()}
        want = {i: inc.status for i, inc in expected.items()}
        raise AssertionError(
            f"{exc}\nwant {want}\ngot {got}\n{worker.counters()}\n{worker.text()[-3000:]}"
        ) from None
    wait_until(lambda: worker.counters().get("records") == len(rows), 60, "every record counted")
    got = incidents_on(kafka.url, topic)
    before_tail = {i: inc for i, inc in got.items() if inc.opened_at < tail_start}
    assert set(before_tail) == set(expected)
    for i, inc in expected.items():
        assert before_tail[i].to_plain() == inc.to_plain(), inc.line()
    alarms = sum(inc.count for inc in expected.values())  # distinct anomalies behind them

    def evidence() -> set[str]:
        found = anomalies_on(kafka.url, f"{app_id}-anomalies")
        return {a.id for a in found if a.timestamp < tail_start}

    # a fresh topic's metadata can lag a read: wait (bounded) for the evidence to be readable
    wait_until(lambda: len(evidence()) >= alarms, 60, "the anomalies behind the incidents")
    anomalies = evidence()
    assert len(anomalies) > len(expected)  # evidence many, pages few
    assert len(anomalies) == alarms

    # the counters line is logged every second: wait (bounded) for the one after the publish
    # it counts incident updates and anomalies as they are published: wait for both to catch up
    def counted() -> bool:
        now = worker.counters()
        return now.get("incidents", 0) >= len(expected) and now.get("anomalies", 0) >= alarms

    wait_until(counted, 60, "counters of the published incidents and anomalies")
    assert "incident open " in worker.text() and "incident resolved " in worker.text()
    # roll-ups: each feature's part merged by roll_up_windows, equal to the Engine's per window
    on_topic = f"{app_id}-window-rollups"
    try:
        wait_until(lambda: set(windows) <= set(rollups_on(kafka.url, on_topic)), 60, "roll-ups")
    except AssertionError as exc:
        parts: dict[float, list[str]] = {}
        for m in consume(kafka.url, f"{app_id}-rollups"):
            part = RollUp.from_plain(orjson.loads(m.value))
            parts.setdefault(part.start, []).extend(part.monitored)
        missing = sorted(set(windows) - set(rollups_on(kafka.url, on_topic)))
        raise AssertionError(
            f"{exc}\nmissing {missing}\nparts by window start {parts}\n"
            f"{worker.counters()}\n{worker.text()[-3000:]}"
        ) from None
    merged = rollups_on(kafka.url, on_topic)
    assert {i: merged[i] for i in windows} == windows
    worker.stop()
    assert worker.proc.returncode == 0, worker.text()[-3000:]
