"""The one window state machine (detectors/window.py): batches that span window boundaries
account, close and judge exactly as the same records one at a time, in the Engine and in the
worker's stage two alike."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.anomaly import iso
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions, Result
from detectors.feature_state import CompareStep, FeatureState, MergeOptions
from detectors.records import ServingRecord, decode_record, parse_ts
from detectors.stages import Numbers, SummaryBuilder, Texts, observe, observe_batch
from detectors.window import Judged, Tumbling
from detectors.window_anomalies import FlagKey, Span
from streams.simulation.traffic import Injection, serving_records
from tests.unit.detectors.conftest import traffic_baseline

OPTIONS = EngineOptions(window_seconds=10.0, min_count=200)


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return traffic_baseline()


@pytest.fixture(scope="module")
def records() -> list[ServingRecord]:
    """Changes to find, late records and unknown columns: every branch of the machine."""
    injections = [Injection("mean_shift", 2_000), Injection("missing_surge", 2_500)]
    rows = list(serving_records(5_000, rate=100.0, start=1.8e9, injections=injections, seed=5))
    rng = random.Random(2)
    for row in rows:
        if rng.random() < 0.02:
            row["ts"] = iso(parse_ts(row["ts"]) - rng.uniform(0, 25))
        if rng.random() < 0.03:
            row["features"][f"extra_{rng.randrange(40)}"] = 1
    return [decode_record(r) for r in rows]


def _one_by_one(baseline: Baseline, records: list[ServingRecord]) -> Result:
    engine = Engine([baseline], OPTIONS)
    out = Result()
    for r in records:
        out.extend(engine.process(r))
    out.extend(engine.close_all())
    return out


def _in_batches(baseline: Baseline, records: list[ServingRecord], cuts: list[int]) -> Result:
    engine = Engine([baseline], OPTIONS)
    out = Result()
    for lo, hi in zip([0, *cuts], [*cuts, len(records)], strict=True):
        result, refused = engine.process_batch(records[lo:hi])
        assert refused == []
        out.extend(result)
    out.extend(engine.close_all())
    return out


def _anomalies(result: Result) -> list[Any]:
    return [a.to_dict() for a in result.anomalies]


def _reports(result: Result) -> list[Any]:
    """Every closed window to the bit: a batch of numbers goes columnwise, in the same order."""
    return [
        (r.start, r.end, r.count, r.late, r.partial, r.scores, r.windows) for r in result.reports
    ]


@pytest.fixture(scope="module")
def expected(baseline: Baseline, records: list[ServingRecord]) -> Result:
    found = _one_by_one(baseline, records)
    assert {a.feature for a in found.anomalies} >= {"score", "price"}  # the test can fail
    assert sum(r.late for r in found.reports) > 0
    return found


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(1, 4_999), max_size=40, unique=True).map(sorted))
def test_a_batch_anywhere_gives_the_record_by_record_windows_and_alarms(
    baseline: Baseline, records: list[ServingRecord], expected: Result, cuts: list[int]
) -> None:
    got = _in_batches(baseline, records, cuts)
    assert _anomalies(got) == _anomalies(expected)
    assert _reports(got) == _reports(expected)


def test_a_batch_of_several_models_refuses_only_the_records_without_a_baseline(
    baseline: Baseline, records: list[ServingRecord]
) -> None:
    engine = Engine([baseline], OPTIONS)
    stranger = ServingRecord(records[0].ts, "fraud", "1", {})
    batch = [*records[:100], stranger, *records[100:300], stranger]
    result, refused = engine.process_batch(batch)
    assert [i for i, _ in refused] == [100, 301]
    assert all(e.field == "model" for _, e in refused)
    assert engine.states[("ctr", "3")].clock.count == 300 or result.reports


class _Nothing:
    def judge(self, span: Span, flagged: dict[FlagKey, float]) -> Judged:
        return Judged([], [], {})

    def rotate(self) -> None:
        pass


def test_a_small_window_is_carried_over_and_an_idle_one_closes_by_the_watermark() -> None:
    clock = Tumbling(EngineOptions(window_seconds=10.0, min_count=3), "m", "1")
    nothing = _Nothing()
    clock.feed([1.0, 2.0], nothing, lambda lo, hi, base: [])
    clock.feed([11.0], nothing, lambda lo, hi, base: [])  # 2 < min_count: carried over
    assert (clock.start, clock.end, clock.count) == (0.0, 20.0, 3)
    assert clock.close_until(19.0, nothing) == [] and clock.count == 3  # not ended yet
    clock.close_until(20.0, nothing)
    assert (clock.start, clock.end, clock.count) == (20.0, 30.0, 0)


def test_the_workers_idle_close_is_the_engines(
    baseline: Baseline, records: list[ServingRecord]
) -> None:
    """Stage two's idle close (release what the merge holds, close_until the end of time)
    raises what the Engine's idle close raises on the same records."""
    some = sorted(records[:2_450], key=lambda r: r.ts)
    engine = Engine([baseline], OPTIONS)
    want = Result()
    for r in some:
        want.extend(engine.process(r))
    want.extend(engine.close_until(float("inf")))

    step = CompareStep(baseline, OPTIONS, MergeOptions(max_lateness=1e9, max_buffer=10**9))
    got = []
    states: dict[str, FeatureState] = {}
    for p in range(2):
        builder = SummaryBuilder(p, 2)
        for offset, r in enumerate(some[p::2]):
            builder.add(offset, r, observe(baseline, r))
        for key, summary in builder.drain():
            state = states.get(key) or step.new_state(
                summary["model"], summary["version"], summary["feature"]
            )
            states[key] = state
            got += step.receive(state, summary)
    held = sum(len(s.buffer) for s in states.values())
    assert held > 0  # the merge holds what partition 1 has not passed yet
    for state in states.values():
        got += step.idle(state)
    assert sorted(a.id for a in got) == sorted(a.id for a in want.anomalies)
    assert any(a.window_start == 1.8e9 + 20 for a in want.anomalies)  # closed by the idle rule


def test_columns_read_as_the_record_by_record_observations(baseline: Baseline) -> None:
    """observe_batch: clean columns checked with numpy or sets, any other column exactly as
    observe checks it (a string where an int belongs, missing values, unknown columns)."""
    injections = [Injection("schema_break", 300), Injection("missing_surge", 600)]
    rows = list(serving_records(900, rate=100.0, start=1.8e9, injections=injections, seed=8))
    for row in rows[::50]:
        row["features"]["surprise"] = 1
    got_clean = False
    for lo in range(0, len(rows), 150):
        chunk = [decode_record(r) for r in rows[lo : lo + 150]]
        columns = observe_batch(baseline, chunk)
        want = [observe(baseline, r) for r in chunk]
        for name, column in columns.items():
            assert list(column) == [w[name] for w in want], (lo, name)
            got_clean |= isinstance(column, Numbers)
    assert got_clean  # the columnwise path was taken, not only the exact one


@pytest.mark.parametrize("odd", [None, 1, 2, "yes", 0.5])
def test_a_column_of_booleans_is_plain_and_anything_else_in_it_is_checked_as_observe_does(
    baseline: Baseline, odd: object
) -> None:
    rows = list(serving_records(200, rate=100.0, start=1.8e9, seed=9))
    clean = [decode_record(r) for r in rows]
    plain = observe_batch(baseline, clean)["is_returning"]
    assert isinstance(plain, Texts)
    assert list(plain) == [observe(baseline, r)["is_returning"] for r in clean]
    rows[7]["features"]["is_returning"] = odd
    chunk = [decode_record(r) for r in rows]
    column = observe_batch(baseline, chunk)["is_returning"]
    assert not isinstance(column, Texts)
    assert list(column) == [observe(baseline, r)["is_returning"] for r in chunk]


def test_values_outside_the_range_are_checked_alone_the_rest_of_their_column_stays_plain(
    baseline: Baseline,
) -> None:
    """A long tail puts a value past range.max in most batches: that value carries its
    violation as observe says, its neighbours read as plain numbers, as observe says too."""
    name, spec = next(
        (n, s) for n, s in baseline.schema.features.items() if s.range and s.range.max is not None
    )
    assert spec.range is not None and spec.range.max is not None
    rows = list(serving_records(200, rate=100.0, start=1.8e9, seed=9))
    for row in rows[::37]:
        row["features"][name] = spec.range.max * 10 + 1
    chunk = [decode_record(r) for r in rows]
    column = observe_batch(baseline, chunk)[name]
    want = [observe(baseline, r)[name] for r in chunk]
    assert list(column) == want
    flagged = [k for k, o in enumerate(column) if o.codes]
    assert flagged == list(range(0, 200, 37))
