"""Bad forward entries become the runner's dead letters: one commit per batch, counted with
the pipeline's own, sensitive feature values redacted."""

from __future__ import annotations

from pathlib import Path

import orjson

from connectors.forward import BadEntry
from connectors.store import AnomalyStore
from detectors.engine import Engine, EngineOptions
from detectors.records import FieldMapping
from streams.embedded.forward_letters import ForwardDeadLetters
from streams.embedded.runner import Pipeline
from tests.unit.detectors.conftest import traffic_baseline

T0 = 1_795_860_000


async def test_bad_entries_are_stored_counted_and_redacted(tmp_path: Path) -> None:
    baseline = traffic_baseline(sensitive_in_profile=frozenset({"device"}))
    store = AnomalyStore(tmp_path / "a.db")
    pipeline = Pipeline(
        Engine([baseline], EngineOptions(60, 200)), store, FieldMapping(), emit=lambda _: None
    )
    record = {"model": "ctr", "features": {"device": "ios-secret-device"}, "7": "seven"}
    bad = [
        BadEntry("serving", 3, "bad_key", "Forward mode entry 3: record key ...", [T0, record]),
        BadEntry("serving", 9, "bad_packed", "PackedForward mode entry 9 on: ...", None),
    ]
    await ForwardDeadLetters(pipeline)(bad)

    letters = store.dead_letters()
    assert [(d.reason, d.source) for d in letters] == [
        ("Forward mode entry 3: record key ...", "forward:serving"),
        ("PackedForward mode entry 9 on: ...", "forward:serving"),
    ]
    kept = orjson.loads(letters[0].raw)
    assert kept["index"] == 3
    assert kept["entry"][1]["7"] == "seven"
    assert b"ios-secret-device" not in letters[0].raw, "a sensitive value never lands raw"
    assert orjson.loads(letters[1].raw) == {"entry": None, "index": 9}
    assert pipeline.stats.dead_letters == 2
    assert pipeline.stats.dead_by_reason == {"forward: bad_key": 1, "forward: bad_packed": 1}
    store.close()
