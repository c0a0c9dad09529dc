"""A feature's state is a changelog message, and Kafka refuses one over 1 MB (the worker would
stop): a state near that size releases what it holds for event-time order before it is written."""

from __future__ import annotations

import json

import pytest

from detectors.anomaly import Anomaly
from detectors.engine import Engine, EngineOptions
from detectors.feature_state import CompareStep, MergeOptions
from detectors.records import FieldMapping, decode_record
from detectors.stages import SummaryBuilder, observe
from streams.simulation.traffic import serving_records
from streams.worker import agents
from streams.worker.app import Detection
from tests.unit.detectors.conftest import traffic_baseline

OPTIONS = EngineOptions(window_seconds=10.0, min_count=200)


def test_a_state_near_the_message_limit_releases_its_held_entries_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    baseline = traffic_baseline()
    step = CompareStep(baseline, OPTIONS, MergeOptions(max_lateness=1e9, max_buffer=10_000))
    found = Detection(Engine([baseline], OPTIONS), {None: step}, FieldMapping())
    monkeypatch.setattr(agents, "detection", lambda: found)
    builder = SummaryBuilder(partition=0, partitions=2)  # partition 1 silent: all is held
    rows = serving_records(3_000, rate=100.0, start=1_800_000_000.0, seed=1)
    for offset, row in enumerate(rows):
        record = decode_record(row)
        builder.add(offset, record, observe(baseline, record))
    summary = dict(builder.drain())["ctr/3/price"]
    state = step.new_state("ctr", "3", "price")
    step.receive(state, json.loads(json.dumps(summary)))
    assert len(state.buffer) == 3_000

    small = len(agents.state_bytes(state)) // 2
    monkeypatch.setattr(agents, "MAX_STATE_BYTES", small)
    raised: list[Anomaly] = []
    raw = agents._encoded("ctr/3/price", state, raised, None)
    assert state.buffer == [] and len(raw) < small
    assert state.count > 0  # the held entries were applied, not dropped
