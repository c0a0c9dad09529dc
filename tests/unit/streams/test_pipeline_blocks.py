"""The embedded Pipeline's forward chunks column by column against record by record: the same
anomalies, windows, dead letters (each with its reason), journal entries and counts, on clean
chunks, chunks with bad entries and entries that take their time from the transport."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from connectors.forward import ForwardEvent
from connectors.store import AnomalyStore
from detectors.engine import Engine, EngineOptions
from detectors.event_time import EventTimeLimits
from detectors.records import FieldMapping
from streams.embedded.runner import Pipeline
from streams.simulation.traffic import Injection, serving_records
from tests.unit.detectors.conftest import traffic_baseline

T0 = 1_795_860_000.0
NOW = T0 + 200.0


def _chunks() -> list[list[ForwardEvent]]:
    injections = [Injection("mean_shift", 2_000), Injection("schema_break", 3_000)]
    rows = list(serving_records(6_000, rate=50.0, start=T0, injections=injections, seed=6))
    rng = random.Random(6)
    events: list[ForwardEvent] = []
    for i, row in enumerate(rows):
        ts = T0 + i / 50.0
        raw: dict[str, Any] = row
        if rng.random() < 0.05:
            raw = {k: v for k, v in row.items() if k != "ts"}  # the entry's time is the record's
        if 4_000 <= i < 4_500 and i % 61 == 0:  # bad entries: each dead-lettered alone
            raw = ({**row, "ts": "soon"}, {**row, "model": "fraud"}, {**row, "ts": 4e9})[i % 3]
        events.append(ForwardEvent("serving", ts, raw))
    return [events[lo : lo + 250] for lo in range(0, len(events), 250)]


class Counting(Pipeline):
    """Counts the chunks taken column by column."""

    taken = 0

    def _columns(self, events: Any, now: Any, result: Any, letters: Any) -> bool:
        done = super()._columns(events, now, result, letters)
        self.taken += done
        return done


def _run(tmp_path: Path, columnar: bool) -> tuple[Any, ...]:
    engine = Engine([traffic_baseline()], EngineOptions(window_seconds=10, min_count=200))
    store = AnomalyStore(tmp_path / f"{columnar}.db")
    p = Counting(
        engine,
        store,
        FieldMapping(),
        emit=lambda line: None,
        event_time=EventTimeLimits(3_600.0, 86_400.0),
        clock=lambda: NOW,
        columnar=columnar,
    )
    anomalies, windows, accepted = [], [], []
    for chunk in _chunks():
        result = p.handle(chunk)
        anomalies += [a.to_dict() for a in result.anomalies]
        windows += [(r.start, r.count, r.late, r.scores, r.windows) for r in result.reports]
        accepted += p.accepted
    letters = [(d.reason, d.raw) for d in store.dead_letters()]
    assert p.taken == (22 if columnar else 0)  # 24 chunks, two with bad entries
    return anomalies, windows, accepted, letters, p.stats.records, p.stats.dead_by_reason


def test_chunks_column_by_column_give_the_record_by_record_verdicts(tmp_path: Path) -> None:
    got = _run(tmp_path, columnar=True)
    want = _run(tmp_path, columnar=False)
    assert got == want
    anomalies, _, _, letters, records, reasons = got
    assert {a["feature"] for a in anomalies} >= {"score"}  # the test can fail
    assert len(letters) == sum(reasons.values()) >= 6
    assert any("fraud" in reason for reason, _ in letters)
    assert records == 6_000 - len(letters)
