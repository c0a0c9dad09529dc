"""The worker's two stages, run in-process without Kafka, against the Engine: split per
partition, merged per feature, they must reach exactly the Engine's verdicts."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from connectors.es_documents import score_documents
from detectors.anomaly import Anomaly, iso
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions
from detectors.feature_state import CompareStep, FeatureState, MergeOptions
from detectors.records import decode_record, parse_ts
from detectors.stages import (
    NEW_COLUMNS,
    SummaryBuilder,
    largest_text,
    most_text,
    observe,
    observe_batch,
)
from detectors.state_codec import from_plain, to_plain
from detectors.window_report import WindowReport
from streams.simulation.traffic import Injection, serving_records
from streams.worker.topics import MAX_SUMMARY_BYTES, encode_parts
from tests.unit.detectors.conftest import traffic_baseline

OPTIONS = EngineOptions(window_seconds=10.0, min_count=200)


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return traffic_baseline()


def _records(n: int, injections: list[Injection], seed: int = 3) -> list[dict[str, Any]]:
    rows = list(
        serving_records(n, rate=100.0, start=1_800_000_000.0, injections=injections, seed=seed)
    )
    for row in rows[::97]:
        row["features"]["surprise"] = 1  # a column the schema does not know
    return rows


def _engine_anomalies(baseline: Baseline, rows: list[dict[str, Any]]) -> list[Anomaly]:
    engine = Engine([baseline], OPTIONS)
    out: list[Anomaly] = []
    for row in rows:
        out += engine.process(decode_record(row)).anomalies
    return out


def _run_stages(
    baseline: Baseline,
    rows: list[dict[str, Any]],
    partitions: int,
    batch: int,
    restart_every: int = 0,
    replay: int = 0,
    closed: list[WindowReport] | None = None,
    max_bytes: int = MAX_SUMMARY_BYTES,
) -> list[Anomaly]:
    """Rows hashed to partitions, batched per partition, summaries delivered partition by
    partition in rounds (so partitions interleave as a consumer would see them)."""
    rng = random.Random(11)
    parts: list[list[tuple[int, dict[str, Any]]]] = [[] for _ in range(partitions)]
    for row in rows:
        p = rng.randrange(partitions)
        parts[p].append((len(parts[p]), row))
    step = CompareStep(baseline, OPTIONS, MergeOptions(max_lateness=1e9, max_buffer=10**9))
    states: dict[str, FeatureState] = {}
    out: list[Anomaly] = []
    delivered = 0
    cursors = [0] * partitions
    while any(c < len(parts[p]) for p, c in enumerate(cursors)):
        for p in range(partitions):
            chunk = parts[p][cursors[p] : cursors[p] + batch]
            if replay and cursors[p] >= replay:  # a crash re-delivers a little before the cursor
                chunk = parts[p][cursors[p] - replay : cursors[p] + batch]
            cursors[p] += batch
            builder = SummaryBuilder(p, partitions)
            for offset, row in chunk:
                record = decode_record(row)
                builder.add(offset, record, observe(baseline, record))
            sent = [
                (k, part)
                for k, summary in builder.drain()
                for part in encode_parts(summary, max_bytes)
            ]
            for key, part in sent:
                summary = json.loads(part)  # the wire: plain JSON
                state = states.get(key) or step.new_state(
                    summary["model"], summary["version"], summary["feature"]
                )
                out += step.receive(state, summary, closed)
                states[key] = state
                delivered += 1
                if restart_every and delivered % restart_every == 0:
                    plain = json.loads(json.dumps(to_plain(state)))  # the changelog
                    states[key], notes = from_plain(step, plain)
                    assert notes == []
    for state in states.values():
        out += step.flush(state, closed)
    return out


def _ids(anomalies: list[Anomaly]) -> list[str]:
    return sorted(a.id for a in anomalies)


def test_one_partition_reaches_the_engines_verdicts(baseline: Baseline) -> None:
    rows = _records(6_000, [Injection("mean_shift", 3_000), Injection("category_surge", 3_000)])
    expected = _engine_anomalies(baseline, rows)
    assert {a.feature for a in expected} >= {"score", "device"}
    got = _run_stages(baseline, rows, partitions=1, batch=250)
    assert _ids(got) == _ids(expected)
    assert sorted(a.message for a in got) == sorted(a.message for a in expected)


def test_four_partitions_merged_by_event_time_reach_the_same_verdicts(baseline: Baseline) -> None:
    rows = _records(6_000, [Injection("mean_shift", 3_000), Injection("schema_break", 4_000)])
    expected = _engine_anomalies(baseline, rows)
    got = _run_stages(baseline, rows, partitions=4, batch=300)
    assert _ids(got) == _ids(expected)


def test_restoring_from_plain_state_and_replays_change_nothing(baseline: Baseline) -> None:
    rows = _records(5_000, [Injection("mean_shift", 2_500), Injection("new_category", 1_000)])
    expected = _engine_anomalies(baseline, rows)
    got = _run_stages(baseline, rows, partitions=4, batch=200, restart_every=3, replay=150)
    assert _ids(got) == _ids(expected)


def test_new_columns_are_scored_once_per_model_version(baseline: Baseline) -> None:
    rows = _records(3_000, [])
    for row in rows:
        row["features"]["debug_flag"] = 1
    got = [
        a for a in _run_stages(baseline, rows, partitions=2, batch=100) if a.feature == "debug_flag"
    ]
    assert got and all(a.detector == "schema_new_column" for a in got)
    assert len({a.id for a in got}) == len(got)
    assert _ids(got) == _ids(
        [a for a in _engine_anomalies(baseline, rows) if a.feature == "debug_flag"]
    )
    assert NEW_COLUMNS not in {a.feature for a in got}


def test_each_closed_feature_window_gives_the_engines_drift_score_document(
    baseline: Baseline,
) -> None:
    rows = _records(5_000, [Injection("mean_shift", 2_500)])
    engine = Engine([baseline], OPTIONS)
    expected = dict(
        doc
        for row in rows
        for report in engine.process(decode_record(row)).reports
        for doc in score_documents(report)
    )
    closed: list[WindowReport] = []
    _run_stages(baseline, rows, partitions=4, batch=300, closed=closed)
    got = dict(doc for report in closed for doc in score_documents(report))
    assert len(expected) >= 7 * 4  # every feature of several windows
    assert got == expected
    assert any(doc["anomalies"]["count"] for doc in got.values())  # the shift's windows


def test_a_window_too_small_to_judge_runs_on_across_a_gap_as_the_engines_does(
    baseline: Baseline,
) -> None:
    """150 records (under min_count), an hour of silence, then traffic again: the window is
    carried over to the end of the period holding the next record, in both paths."""
    rows = _records(3_000, [])
    for row in rows[150:]:
        row["ts"] = iso(parse_ts(row["ts"]) + 3_600)
    engine = Engine([baseline], OPTIONS)
    reports = [r for row in rows for r in engine.process(decode_record(row)).reports]
    expected = dict(doc for report in reports for doc in score_documents(report))
    assert reports[0].start == parse_ts(rows[0]["ts"])
    assert reports[0].end == reports[0].start + 3_610  # the period holding rows[150], 3,601.5 s on
    closed: list[WindowReport] = []
    _run_stages(baseline, rows, partitions=2, batch=100, closed=closed)
    assert dict(doc for report in closed for doc in score_documents(report)) == expected


def test_summaries_cut_into_parts_under_a_byte_limit_reach_the_same_verdicts(
    baseline: Baseline,
) -> None:
    rows = _records(5_000, [Injection("mean_shift", 2_500), Injection("schema_break", 3_000)])
    expected = _engine_anomalies(baseline, rows)
    got = _run_stages(baseline, rows, partitions=4, batch=300, max_bytes=1_500)
    assert _ids(got) == _ids(expected)


def test_a_summary_is_cut_by_entries_and_each_part_keeps_its_own_watermark(
    baseline: Baseline,
) -> None:
    builder = SummaryBuilder(0, 1)
    for offset, row in enumerate(_records(400, [])):
        record = decode_record(row)
        builder.add(offset, record, observe(baseline, record))
    (_, summary), *_ = builder.drain()
    parts = [json.loads(p) for p in encode_parts(summary, 2_000)]
    assert len(parts) > 1 and all(len(json.dumps(p)) <= 2_000 for p in parts)
    assert [o for p in parts for o in p["offsets"]] == summary["offsets"]
    assert [v for p in parts for v in p["values"]] == summary["values"]
    assert [p["watermark"] for p in parts] == [
        max(summary["ts"][: summary["offsets"].index(p["offsets"][-1]) + 1]) for p in parts
    ]
    assert parts[-1]["watermark"] == summary["watermark"]


def test_the_text_a_record_holds_is_measured_and_its_largest_feature_named(
    baseline: Baseline,
) -> None:
    row = _records(1, [])[0]
    row["features"]["country"] = "x" * 70_000  # a category value is kept bounded: ~1 KB
    row["features"] |= {f"debug_{i:03d}_{'y' * 500}": 1 for i in range(200)}
    size, feature = largest_text(observe(baseline, decode_record(row)))
    assert 200 * 500 < size < 200 * 520 + 1_100 and feature == "unknown column names"


def test_a_batchs_text_bound_holds_every_records_text(baseline: Baseline) -> None:
    """most_text bounds what any one record holds, so a batch within it needs no record-by-record
    check: text in categories, codes of violations, unknown column names, long tails."""
    rows = _records(300, [Injection("schema_break", 100)])
    rows[5]["features"]["country"] = "é" * 300  # 2 bytes a character
    rows[9]["features"] |= {f"debug_{i}_{'y' * 40}": 1 for i in range(30)}
    rows[11]["features"]["price"] = 1e12  # past range.max: a code, in a column of numbers
    records = [decode_record(r) for r in rows]
    columns = observe_batch(baseline, records)
    largest = max(largest_text(observe(baseline, r))[0] for r in records)
    assert largest > 30 * 40 and most_text(columns) >= largest
