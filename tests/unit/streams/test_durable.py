"""streams.embedded.durable: a Pipeline whose chunks are journalled, dropped without a word (as
kill -9 leaves it) and rebuilt from the same store and journal, ends with the very anomalies,
incidents and window counts of a run that never stopped; replay prints nothing a second time."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.forward import ForwardEvent
from connectors.journal import Journal
from connectors.store import AnomalyStore
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions
from detectors.records import FieldMapping
from streams.embedded.durable import Durable
from streams.embedded.runner import Pipeline
from streams.simulation.traffic import Injection, serving_records
from tests.unit.detectors.conftest import traffic_baseline

T0 = 1_795_860_000.0
N, CHUNK = 9_000, 100
OPTIONS = EngineOptions(window_seconds=60, min_count=200)


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return traffic_baseline()


@pytest.fixture(scope="module")
def chunks() -> list[list[ForwardEvent]]:
    surge = [Injection("category_surge", 5_000), Injection("mean_shift", 5_000)]
    raws = list(serving_records(N, rate=50.0, start=T0, injections=surge))
    events = [ForwardEvent("serving", T0, r) for r in raws]
    return [events[i : i + CHUNK] for i in range(0, N, CHUNK)]


def started(baseline: Baseline, where: Path, lines: list[str]) -> tuple[Pipeline, Durable]:
    store = AnomalyStore(where / "a.db")
    p = Pipeline(Engine([baseline], OPTIONS), store, FieldMapping(), emit=lines.append)
    durable = Durable(Journal(where / "journal"), p, every_records=2_500, every_seconds=1e9)
    durable.recover()
    return p, durable


def finished(p: Pipeline) -> tuple[set[str], set[str], dict[float, int]]:
    p.publish(p.engine.close_all())
    s = p.store
    counts = {sc.start: sc.count for sc in s.scores() if sc.score.feature == "price"}
    return {a.id for a in s.query()}, {i.id for i in s.incidents()}, counts


def test_a_run_rebuilt_after_a_crash_ends_as_an_uninterrupted_one(
    baseline: Baseline, chunks: list[list[ForwardEvent]], tmp_path: Path
) -> None:
    lines: list[str] = []
    p, durable = started(baseline, tmp_path / "whole", lines)
    for chunk in chunks:
        p.handle(chunk)
        durable.append()
    expected = finished(p)
    assert expected[0], "the change is caught"

    crashed: list[str] = []
    where = tmp_path / "crashed"
    p, durable = started(baseline, where, crashed)
    for chunk in chunks[:63]:  # 6,300 records: two checkpoints (2,500 each) and 1,300 after
        p.handle(chunk)
        durable.append()
    durable.close()  # the process dies here: nothing else is written
    p.store.close()
    printed = len(crashed)
    p, durable = started(baseline, where, crashed)
    assert p.stats.replayed == 1_300, "only what came after the last checkpoint is replayed"
    assert len(crashed) == printed, "a replay prints nothing a second time"
    for chunk in chunks[63:]:
        p.handle(chunk)
        durable.append()
    assert finished(p) == expected
    assert sum(expected[2].values()) == N
