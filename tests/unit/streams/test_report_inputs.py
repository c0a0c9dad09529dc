"""Where `logdrift report` reads windows from keeps whether each was partial: log files run
through the Engine (its shutdown close) and the runner's store."""

from __future__ import annotations

from pathlib import Path

import orjson

from connectors.store import AnomalyStore
from detectors.engine import Engine, EngineOptions
from detectors.records import FieldMapping, decode_record
from streams.report.inputs import from_logs, from_store
from streams.simulation.traffic import serving_records
from tests.unit.detectors.conftest import traffic_baseline

T0 = 1_795_860_000.0


def test_log_files_and_the_store_keep_the_shutdown_window_partial(tmp_path: Path) -> None:
    baseline = traffic_baseline(rows=2_000)
    options = EngineOptions(window_seconds=60, min_count=100)
    records = list(serving_records(121, rate=2.0, start=T0))  # 120 in the first minute, then 1
    logs = tmp_path / "serving.jsonl"
    logs.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    data = from_logs([logs], baseline, options, FieldMapping())
    assert {(p.start, p.partial) for p in data.scores} == {(T0, False), (T0 + 60, True)}

    engine = Engine([baseline], options)
    reports = [r for raw in records for r in engine.process(decode_record(raw)).reports]
    reports += engine.close_all().reports
    with AnomalyStore(tmp_path / "logdrift.db") as store:
        store.put([], reports=reports)
    stored = from_store(tmp_path / "logdrift.db", "ctr", len(baseline.references), 10)
    assert {(p.start, p.partial) for p in stored.scores} == {(T0, False), (T0 + 60, True)}
    assert stored.current_window["device"] == (T0, T0 + 60)  # the full window is drawn


def test_the_runners_window_line_says_a_window_is_partial() -> None:
    from dataclasses import replace

    from detectors.window_report import WindowReport
    from streams.embedded.runner import window_line

    report = WindowReport("ctr", "3", T0, T0 + 60, 37, 0, [], [])
    assert "partial" not in window_line(report)
    assert "37 records (partial: judged at shutdown" in window_line(replace(report, partial=True))
