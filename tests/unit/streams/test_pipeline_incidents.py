"""The embedded Pipeline, `logdrift check` and `logdrift incidents` on one injected change:
many anomalies (kept as evidence), few incidents (printed once when they open and when they
resolve), the same incidents on every path, and a restarted runner going on with them."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from connectors.forward import ForwardEvent
from connectors.store import AnomalyStore
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions
from detectors.incidents.tracker import IncidentOptions, change_of
from detectors.records import FieldMapping
from streams.cli.main import main
from streams.embedded.runner import Pipeline
from streams.offline import check_logs
from streams.simulation.traffic import Injection, serving_records
from tests.unit.detectors.conftest import traffic_baseline

T0 = 1_795_860_000.0
SKEW = "distribution_skew"
RATE = 20.0  # records per second: 1,200 per 60 s window
OPTIONS = EngineOptions(window_seconds=60, min_count=200)


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return traffic_baseline()


def records(n: int = 24_000) -> list[dict[str, Any]]:
    """Twenty windows; the mean of score shifts for windows 6 to 12, then comes back."""
    shifted = list(serving_records(n, rate=RATE, start=T0, injections=[Injection("mean_shift", 0)]))
    plain = list(serving_records(n, rate=RATE, start=T0))
    return [
        s if 7_200 <= i < 15_600 else p for i, (s, p) in enumerate(zip(shifted, plain, strict=True))
    ]


def events(rows: list[dict[str, Any]]) -> list[ForwardEvent]:
    return [ForwardEvent("serving", T0, row) for row in rows]


def run_pipeline(baseline: Baseline, store: Path, rows: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    p = Pipeline(
        Engine([baseline], OPTIONS), AnomalyStore(store), FieldMapping(), emit=lines.append
    )
    for i in range(0, len(rows), 500):
        p.handle(events(rows[i : i + 500]))
    p.publish(p.engine.close_all())
    p.store.close()
    return lines


def test_a_change_lasting_windows_is_printed_per_incident_not_per_anomaly(
    baseline: Baseline, tmp_path: Path
) -> None:
    lines = run_pipeline(baseline, tmp_path / "s.db", records())
    with AnomalyStore(tmp_path / "s.db") as s:
        anomalies, incidents = s.query(), s.incidents()
        rollups = s.rollups()
    assert {a.feature for a in anomalies} == {"score"}
    assert len(anomalies) > 2 * len(incidents) >= 2  # evidence kept, pages gathered
    assert {(i.feature, i.status) for i in incidents} == {("score", "resolved")}
    for kind in {i.kind for i in incidents}:  # one at a time per kind: the change, its return
        spans = sorted((i.opened_at, i.resolved_at or 0.0) for i in incidents if i.kind == kind)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), spans
    # the shift (window 6), the skew it lasts and the return (window 13) are one change: drift
    # and distribution skew page once, as one incident opened by the first alarm
    assert [i.kind for i in incidents] == ["drift"]
    opened = [line for line in lines if " incident open " in line]
    resolved = [line for line in lines if " incident resolved " in line]
    assert len(opened) == len(resolved) == len(incidents)
    assert not [line for line in lines if "[jensen_shannon]" in line]  # no line per anomaly
    assert sum(i.count for i in incidents) == len(anomalies)
    alarmed = [r for r in rollups if r.features_alarmed]
    assert alarmed and all(r.features_alarmed == ["score"] for r in alarmed)
    assert all(r.share == pytest.approx(1 / len(r.monitored)) for r in alarmed)


def test_check_gathers_the_same_incidents_and_its_json_carries_them(
    baseline: Baseline, tmp_path: Path
) -> None:
    rows = records()
    run_pipeline(baseline, tmp_path / "s.db", rows)
    with AnomalyStore(tmp_path / "s.db") as s:
        stored = {i.id: i.to_plain() for i in s.incidents()}
    log = tmp_path / "serving.jsonl"
    log.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    report = check_logs(log, [baseline], OPTIONS, incidents=IncidentOptions())
    assert {i.id: i.to_plain() for i in report.incidents} == stored
    doc = json.loads(json.dumps(report.to_json()))
    assert {d["incident"]["id"] for d in doc["incidents"]} == set(stored)
    assert all(d["incident"]["status"] == "resolved" for d in doc["incidents"])
    assert doc["rollups"] and all(r["rollup"]["features"] == ["score"] for r in doc["rollups"])


def test_a_restarted_runner_goes_on_with_the_incidents_it_left_open(
    baseline: Baseline, tmp_path: Path
) -> None:
    rows = records()
    run_pipeline(baseline, tmp_path / "one.db", rows)
    split = 12_000  # mid-change: the skew incident is open when the first runner stops
    run_pipeline(baseline, tmp_path / "two.db", rows[:split])
    with AnomalyStore(tmp_path / "two.db") as s:
        assert [i.status for i in s.incidents() if change_of(i.kind) == SKEW] == ["open"]
    run_pipeline(baseline, tmp_path / "two.db", rows[split:])  # a new runner, the same store
    with AnomalyStore(tmp_path / "one.db") as one, AnomalyStore(tmp_path / "two.db") as two:
        skew_one = [i for i in one.incidents() if change_of(i.kind) == SKEW]
        skew_two = [i for i in two.incidents() if change_of(i.kind) == SKEW]
    # the same incident went on and resolved; the restart opened no second one
    assert [i.id for i in skew_two] == [i.id for i in skew_one]
    assert [(i.status, i.count) for i in skew_two] == [(i.status, i.count) for i in skew_one]


def test_logdrift_incidents_lists_filters_and_prints_json(
    baseline: Baseline, tmp_path: Path
) -> None:
    store = tmp_path / "s.db"
    run_pipeline(baseline, store, records()[:12_000])  # stopped mid-change: open incidents
    runner = CliRunner()
    since = ["--since", "2020-01-01T00:00:00Z"]
    out = runner.invoke(main, ["incidents", "--store", str(store), *since])
    assert out.exit_code == 0, out.output
    assert "incident open" in out.output and "alarms by" in out.output
    assert out.output.strip().endswith("open)")
    listed = runner.invoke(main, ["incidents", "--store", str(store), "--json", *since])
    docs = [json.loads(line) for line in listed.output.splitlines()]
    assert [d["incident"]["status"] for d in docs] == ["open"]
    assert {d["incident"]["kind"] for d in docs} == {"drift"}
    assert {d["feature"]["name"] for d in docs} == {"score"}
    opened = runner.invoke(main, ["incidents", "--store", str(store), "--status", "open"])
    assert opened.exit_code == 0 and "1 incidents (1 open)" in opened.output
    whole = tmp_path / "whole.db"
    run_pipeline(baseline, whole, records())  # the change came and went: resolved
    done = runner.invoke(main, ["incidents", "--store", str(whole), "--status", "resolved", *since])
    assert done.exit_code == 0 and "1 incidents (0 open)" in done.output, done.output
    later = ["--status", "resolved", "--since", "2030-01-01T00:00:00Z"]
    recent = runner.invoke(main, ["incidents", "--store", str(store), *later])
    assert recent.exit_code == 0 and "0 incidents" in recent.output
    other = runner.invoke(main, ["incidents", "--store", str(store), "--model", "nope", "--json"])
    assert other.exit_code == 0 and other.output == ""
    missing = runner.invoke(main, ["incidents", "--store", str(tmp_path / "none.db")])
    assert missing.exit_code == 1 and "no anomaly store" in missing.output
    helped = runner.invoke(main, ["incidents", "--help"])
    assert "quiet_windows" in helped.output and "logdrift incidents --status open" in helped.output
