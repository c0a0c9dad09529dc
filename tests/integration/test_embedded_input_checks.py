"""Issue 14 rows 6-9 and 12 against the real `logdrift run` and the real fluent-logger client: a
record stamped 2100 and one stamped 1970 are dead-lettered by reason, feedback sent with labels
off is counted and said once, the stored dead letters stay within their bound (the oldest
dropped first) and `logdrift anomalies --dead-letters` lists what is kept. (Redaction of any
record shape: tests/unit/detectors/test_privacy.py; this baseline has no sensitive feature.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.fluent import FluentClient
from connectors.store import AnomalyStore
from streams.simulation.demo import send
from streams.simulation.traffic import Injection, serving_records
from tests.integration.conftest import logdrift

RATE = 100.0
START = 1_795_860_000.0


def test_out_of_bounds_time_labels_off_and_bounded_dead_letters(
    start_runner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGDRIFT_DEAD_LETTERS__MAX_COUNT", "3")
    runner = start_runner(tmp_path / "anomalies.db")
    good = list(serving_records(2_000, rate=RATE, start=START))
    with FluentClient("127.0.0.1", runner.port) as client:
        for i in range(4):  # three of these are dropped by the bound of 3, the oldest first
            client.emit("serving", {"model": "ctr", "features": [i]}, START)
        client.emit("serving", {**good[0], "ts": "2100-01-01T00:00:00Z"}, START)
        client.emit("serving", {**good[0], "ts": 0}, START)
        for i in range(5):
            client.emit("feedback", {"request_id": f"r{i}", "label": 1}, START)
    send(good, "127.0.0.1", runner.port, realtime=False, rate=RATE)
    out = runner.stop()

    assert "stopped: 2,000 records" in out and "6 dead letters" in out, out
    said = [line for line in out.splitlines() if "labels are off:" in line]
    assert 1 <= len(said) <= 2, said  # once, and the total at shutdown if it grew since
    assert "labels are off: 5 feedback records ignored; set labels.enabled" in said[-1]
    with AnomalyStore(runner.store) as s:
        kept = s.dead_letters()
        dropped = s.dead_letters_dropped()
    assert dropped == 3 and len(kept) == 3, (dropped, kept)
    assert [d.reason.split(" (")[0] for d in kept[-2:]] == [
        "field 'ts': future_timestamp",
        "field 'ts': too_old",
    ]
    listed = logdrift("anomalies", "--store", runner.store, "--dead-letters").stdout
    assert "future_timestamp" in listed and "too_old" in listed


def test_a_surge_after_a_year_2100_record_is_judged_while_running(
    start_runner: Any, tmp_path: Path
) -> None:
    # Issue 14 row 6: the 2100 record used to hold every later window open until shutdown.
    rows = list(
        serving_records(
            18_000, rate=RATE, start=START, injections=[Injection("category_surge", 6_000)]
        )
    )
    rows.insert(3_000, {**rows[0], "ts": "2100-01-01T00:00:00Z"})
    runner = start_runner(tmp_path / "anomalies.db")
    send(rows, "127.0.0.1", runner.port, realtime=False, rate=RATE)
    out = runner.stop()
    assert "1 dead letters" in out, out
    with AnomalyStore(runner.store) as s:
        windows = sorted({sc.start for sc in s.scores()})
        surge = [a for a in s.query() if a.feature == "device" and a.detector == "l_infinity"]
    assert windows == [START, START + 60, START + 120], "every window closed on its own time"
    assert any(a.window_start < windows[-1] for a in surge), [a.line() for a in surge]
