"""The real fluent-logger client -> `logdrift run` with `labelling.queue_on_incident`: a drift
incident opening fills the labelling queue in the store, within the day's budget and each item
with its reason, without `logdrift label queue`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from connectors import label_store
from connectors.store import AnomalyStore
from detectors.labels.queue import DAY
from streams.simulation.demo import send
from streams.simulation.traffic import Injection, serving_records
from tests.integration.conftest import Runner

RATE = 100.0
START = 1_795_860_000.0  # a minute boundary
N, SHIFT_AT = 16_000, 8_000
BUDGET = 50


def test_a_drift_incident_opening_fills_the_queue_within_budget(
    start_runner: Callable[..., Runner], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGDRIFT_LABELLING__QUEUE_ON_INCIDENT", "true")
    monkeypatch.setenv("LOGDRIFT_LABELLING__BUDGET_PER_DAY", str(BUDGET))
    monkeypatch.setenv("LOGDRIFT_LABELLING__RECENT_RECORDS", "5000")
    records = list(
        serving_records(N, rate=RATE, start=START, injections=[Injection("mean_shift", SHIFT_AT)])
    )
    runner = start_runner(tmp_path / "anomalies.db")
    send(records, "127.0.0.1", runner.port, realtime=False, rate=RATE)
    out = runner.stop()

    with AnomalyStore(runner.store) as s:
        drift = [i for i in s.incidents() if i.kind == "drift"]
        items = label_store.queue(s)
    assert drift, out
    assert 0 < len(items) <= BUDGET, out
    assert {int(i.ts // DAY) for i in items} == {int(START // DAY)}
    assert len({i.request_id for i in items}) == len(items)
    opened = min(i.opened_window for i in drift)
    assert START + SHIFT_AT / RATE - 60 <= opened <= START + SHIFT_AT / RATE, "the drifted window"
    assert all(i.ts >= opened for i in items), "records from the window it opened in on"
    sent = {r["request_id"] for r in records}
    assert {i.request_id for i in items} <= sent
    ids = {i.id for i in drift}
    assert all(any(f"drift incident {n} on score" in i.reason for n in ids) for i in items), [
        i.reason for i in items
    ]
    assert all(i.state == "queued" and i.model == "ctr" and "score" in i.features for i in items)
    assert "labelling: queued" in out, out
    assert f"labelling queue: {len(items):,} records queued for raters" in out, out
