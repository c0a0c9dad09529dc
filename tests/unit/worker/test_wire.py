"""What travels between the worker's stages and into its changelog: columnar summaries (orjson
on the wire), version-1 summaries and states still read, and the merge buffer surviving the
state's round trip exactly."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest

from detectors.baseline.reference import Baseline
from detectors.engine import EngineOptions
from detectors.feature_state import STATE_VERSION, CompareStep, MergeOptions, entries_of
from detectors.records import decode_record
from detectors.stages import NEW_COLUMNS, SummaryBuilder, observe
from detectors.state_codec import from_plain
from streams.simulation.traffic import serving_records
from streams.worker.tables import decode_state, encode_state, state_bytes
from tests.unit.detectors.conftest import traffic_baseline

OPTIONS = EngineOptions(window_seconds=10.0, min_count=200)


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return traffic_baseline()


def _rows(n: int) -> list[dict[str, Any]]:
    rows = list(serving_records(n, rate=100.0, start=1_800_000_000.0, seed=4))
    rows[1]["features"]["age"] = "forty"  # a type violation: a code, no value
    rows[2]["features"].pop("price")  # missing
    rows[3]["features"]["surprise"] = 1  # a new column
    return rows


def _summaries(baseline: Baseline, rows: list[dict[str, Any]], partition: int = 0) -> dict:
    builder = SummaryBuilder(partition, 2)
    for offset, row in enumerate(rows, start=100):
        record = decode_record(row)
        builder.add(offset, record, observe(baseline, record))
    return {key: orjson.loads(orjson.dumps(s)) for key, s in builder.drain()}


def test_a_columnar_summary_carries_each_records_value_missing_flag_and_codes(
    baseline: Baseline,
) -> None:
    rows = _rows(5)
    got = _summaries(baseline, rows)
    age, price, new = got["ctr/3/age"], got["ctr/3/price"], got[f"ctr/3/{NEW_COLUMNS}"]
    assert age["offsets"] == [100, 101, 102, 103, 104] == new["offsets"]
    assert age["values"][1] is None and age["codes"] == [[1, ["INT_TYPE_NOT_INT_STRING"]]]
    assert price["missing"] == [2] and price["values"][2] is None
    assert new["codes"] == [[3, ["surprise"]]]
    assert age["watermark"] == max(age["ts"])
    entries = entries_of(price, after=-1)
    assert [e[2] for e in entries] == [100, 101, 102, 103, 104]
    assert entries[2][4] is True and all(e[1] == 0 for e in entries)  # missing; partition


def test_offsets_at_or_below_the_guard_are_skipped(baseline: Baseline) -> None:
    summary = _summaries(baseline, _rows(5))["ctr/3/score"]
    assert [e[2] for e in entries_of(summary, after=102)] == [103, 104]
    assert entries_of(summary, after=104) == []


def test_a_version_1_summary_reads_as_the_same_entries(baseline: Baseline) -> None:
    v2 = _summaries(baseline, _rows(5))["ctr/3/age"]
    v1 = {
        **{k: v2[k] for k in ("model", "version", "feature", "partition", "partitions")},
        "v": 1,
        "watermark": v2["watermark"],
        "entries": [
            [o, t, v, i in v2["missing"], dict(v2["codes"]).get(i, [])]
            for i, (o, t, v) in enumerate(zip(v2["offsets"], v2["ts"], v2["values"], strict=True))
        ],
    }
    assert entries_of(v1, after=100) == entries_of(v2, after=100)


@pytest.mark.parametrize("feature", ["age", "price", NEW_COLUMNS])  # a code; missing; new names
def test_the_merge_buffer_survives_the_changelog_exactly(baseline: Baseline, feature: str) -> None:
    step = CompareStep(baseline, OPTIONS, MergeOptions(max_lateness=1e9, max_buffer=10**6))
    state = step.new_state("ctr", "3", feature)
    step.receive(state, _summaries(baseline, _rows(50), partition=0)[f"ctr/3/{feature}"])
    assert any(e[4] or e[5] for e in state.buffer)
    assert len(state.buffer) == 50  # partition 1 unheard: everything is held
    raw = state_bytes(state)
    restored, notes = from_plain(step, decode_state(raw))
    assert notes == [] and restored.buffer == state.buffer
    assert restored.offsets == {0: 149}
    assert decode_state(raw)["v"] == STATE_VERSION


def test_a_version_1_state_is_restored_with_its_buffer(baseline: Baseline) -> None:
    step = CompareStep(baseline, OPTIONS, MergeOptions(max_lateness=1e9, max_buffer=10**6))
    state = step.new_state("ctr", "3", "age")
    step.receive(state, _summaries(baseline, _rows(20), partition=0)["ctr/3/age"])
    plain = json.loads(state_bytes(state))
    plain["v"] = 1
    plain["buffer"] = [list(e) for e in state.buffer]
    restored, notes = from_plain(step, plain)
    assert notes == [] and restored.buffer == state.buffer


EMPTY = {"min": math.inf, "max": -math.inf}


@pytest.mark.parametrize(
    ("plain", "key"),
    [
        ({"v": 1, "window": EMPTY, "buffer": {"ts": [1.5], "value": ["é", None]}}, "buffer"),
        ({"buffer": [1e16, "\u2028"]}, "buffer"),  # nothing else: no comma before it
        ({"window": EMPTY}, "buffer"),  # no buffer: all stdlib
        ({"window": EMPTY, 'b"u\\f': [2.5]}, 'b"u\\f'),  # a key that JSON escapes
    ],
)
def test_the_finite_part_is_written_by_orjson_and_reads_as_the_stdlib_would(
    plain: dict[str, Any], key: str
) -> None:
    raw = encode_state(plain, key)
    assert json.loads(raw) == plain == json.loads(encode_state(plain))
    if key in plain:
        assert raw.endswith(orjson.dumps(plain[key]) + b"}")  # orjson wrote it


def test_infinite_window_bounds_survive_the_state_codec(baseline: Baseline) -> None:
    step = CompareStep(baseline, OPTIONS)
    state = step.new_state("ctr", "3", "age")  # an empty window: min +inf, max -inf
    plain = decode_state(state_bytes(state))
    restored, notes = from_plain(step, plain)
    assert notes == []
    assert restored.track is not None and state.track is not None
    window = restored.track.window
    assert math.isinf(window.moments.min) and window == state.track.window
