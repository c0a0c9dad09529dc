"""Stage one column by column (``_profile_block``) against record by record
(``_profile_one``): the same summaries for a clean batch; a batch with a record the exact path
must refuse is left to it whole, so that record is dead-lettered alone."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiokafka.structs import ConsumerRecord

from detectors.engine import Engine, EngineOptions
from detectors.feature_state import CompareStep, MergeOptions
from detectors.records import FieldMapping
from detectors.stages import SummaryBuilder
from streams.simulation.traffic import Injection, serving_records
from streams.worker import agents
from streams.worker.app import Detection
from tests.unit.detectors.conftest import traffic_baseline

OPTIONS = EngineOptions(window_seconds=10.0, min_count=200)


def _messages(rows: list[dict[str, Any] | bytes]) -> list[ConsumerRecord[bytes, bytes]]:
    values = [r if isinstance(r, bytes) else orjson.dumps(r) for r in rows]
    return [
        ConsumerRecord("serving-logs", 0, 100 + i, 0, 0, b"k", v, None, 1, 1, [])
        for i, v in enumerate(values)
    ]


def _detection() -> Detection:
    baseline = traffic_baseline()
    step = CompareStep(baseline, OPTIONS, MergeOptions())
    return Detection(Engine([baseline], OPTIONS), {None: step}, FieldMapping())


def test_a_clean_batch_gives_the_record_by_record_summaries() -> None:
    found = _detection()
    injections = [Injection("schema_break", 200), Injection("missing_surge", 300)]
    start = time.time() - 3_600
    rows = list(serving_records(500, rate=100.0, start=start, injections=injections, seed=3))
    for row in rows[::40]:
        row["features"]["surprise"] = 1
    for row in rows[::70]:
        row["model_version"] = "4"
    messages = _messages([*rows])
    exact, columnar = SummaryBuilder(0, 2), SummaryBuilder(0, 2)
    assert all(agents._profile_one(found, exact, m) is None for m in messages)
    assert agents._profile_block(found, columnar, messages)
    want, got = exact.drain(), columnar.drain()
    assert {k for k, _ in want} >= {"ctr/3/price", "ctr/4/price", "ctr/3/__new_columns__"}
    assert orjson.loads(orjson.dumps(got)) == orjson.loads(orjson.dumps(want))
    assert [39, ["surprise"]] in dict(got)["ctr/3/__new_columns__"]["codes"]
    assert dict(got)["ctr/3/price"]["offsets"][:3] == [101, 102, 103]  # 100 went to version 4


def test_a_batch_with_a_bad_record_takes_the_exact_path_whole() -> None:
    found = _detection()
    rows = list(serving_records(100, rate=100.0, start=time.time() - 3_600, seed=4))
    for bad in (
        {**rows[50], "ts": None},  # no event time
        {**rows[50], "ts": time.time() + 10 * 365 * 86_400},  # years in the future
        {**rows[50], "model": "fraud"},  # no baseline
    ):
        builder = SummaryBuilder(0, 2)
        assert not agents._profile_block(found, builder, _messages([*rows[:50], bad]))
        assert builder.drain() == []
    messages = _messages([*rows[:7], b"{not json", *rows[8:]])
    assert not agents._profile_block(found, SummaryBuilder(0, 2), messages)
    assert agents._profile_one(found, SummaryBuilder(0, 2), messages[7]) is not None
