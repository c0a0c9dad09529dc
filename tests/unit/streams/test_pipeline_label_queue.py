"""The embedded Pipeline fills the labelling queue itself as drift incidents open
(``labelling.queue_on_incident``): within the day's budget, from the records it has just seen,
each item with its reason, no sensitive raw value, a request id queued once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from config.settings import LabellingSettings
from connectors import label_store
from connectors.forward import ForwardEvent
from connectors.outbox import Outbox
from connectors.store import AnomalyStore
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions
from detectors.labels.monitor import LabelOptions
from detectors.labels.queue import LABELLED_KINDS, QueueOptions
from detectors.records import FieldMapping, decode_record
from streams.embedded.label_queue import RunnerQueue, runner_queue
from streams.embedded.runner import Pipeline
from streams.simulation.traffic import Injection, serving_records
from tests.unit.detectors.conftest import traffic_baseline

T0 = 1_795_860_000.0
RATE = 20.0  # 1,200 records per 60 s window
SHIFT_AT = 7_200  # the sixth window on
OPTIONS = EngineOptions(window_seconds=60, min_count=200)
BUDGET = 40
RECENT = 3_000


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return traffic_baseline(schema_edits={"country": {"sensitive": True}})


def records(n: int = 14_400) -> list[dict[str, Any]]:
    shifted = serving_records(n, rate=RATE, start=T0, injections=[Injection("mean_shift", 0)])
    plain = serving_records(n, rate=RATE, start=T0)
    return [s if i >= SHIFT_AT else p for i, (s, p) in enumerate(zip(shifted, plain, strict=True))]


def run(
    baseline: Baseline, store: AnomalyStore, rows: list[dict[str, Any]], queue: RunnerQueue | None
) -> tuple[Pipeline, list[str]]:
    lines: list[str] = []
    p = Pipeline(
        Engine([baseline], OPTIONS), store, FieldMapping(), emit=lines.append, labelling=queue
    )
    for i in range(0, len(rows), 500):
        p.handle([ForwardEvent("serving", T0, row) for row in rows[i : i + 500]])
    p.publish(p.engine.close_all())
    return p, lines


def test_a_drift_incident_opening_fills_the_queue_within_budget_with_reasons(
    baseline: Baseline, tmp_path: Path
) -> None:
    store = AnomalyStore(tmp_path / "s.db")
    queue = RunnerQueue(store, {"ctr": baseline}, QueueOptions(BUDGET), None, RECENT)
    p, lines = run(baseline, store, records(), queue)
    incidents = [i for i in store.incidents() if i.kind in LABELLED_KINDS]
    items = label_store.queue(store)
    assert incidents, [i.line() for i in store.incidents()]
    assert 0 < len(items) <= BUDGET, "one day, one model: the budget bounds the queue"
    assert len({i.request_id for i in items}) == len(items)
    assert p.stats.queued_for_raters == len(items)
    opened = min(i.opened_window for i in incidents)
    assert all(i.ts >= opened for i in items), "records from the window the incident opened in on"
    ids = {i.id for i in incidents}
    for item in items:
        assert item.state == "queued"
        assert any(f"incident {n} on " in item.reason for n in ids), item.reason
        assert item.reason.endswith(
            ("near from training", "mid from training", "far from training")
        )
        assert "country" not in item.features, "a sensitive raw value is not stored"
        assert "score" in item.features
    assert any(
        line.startswith(tuple("0123456789")) and "labelling: queued" in line for line in lines
    )
    kept = queue.recent.by_model["ctr"]
    assert len(kept) == RECENT, "memory is the configured size, not the stream"
    store.close()


def test_the_queue_holds_a_request_id_once_and_a_replay_stays_within_budget(
    baseline: Baseline, tmp_path: Path
) -> None:
    rows = records()
    store = AnomalyStore(tmp_path / "s.db")
    first = RunnerQueue(store, {"ctr": baseline}, QueueOptions(BUDGET), None, RECENT)
    run(baseline, store, rows, first)
    before = {i.request_id for i in label_store.queue(store)}
    incidents = [i for i in store.incidents() if i.kind in LABELLED_KINDS]
    again = first.opened(incidents)  # the same incidents again, as a replayed journal would
    assert sum(len(q.items) for q in again) <= BUDGET - len(before)
    generous = RunnerQueue(store, {"ctr": baseline}, QueueOptions(10 * BUDGET), None, RECENT)
    for row in rows:  # a restarted runner that saw the same records
        generous.offer(decode_record(row, FieldMapping()))
    more = generous.opened(incidents)
    added = [i.request_id for q in more for i in q.items]
    assert added, "a bigger budget leaves room for more"
    assert not set(added) & before, "a record already queued is never chosen twice"
    after = label_store.queue(store)
    assert len(after) == len({i.request_id for i in after}) == len(before) + len(set(added))
    assert len(after) <= 10 * BUDGET
    store.close()


def test_off_by_default_and_other_kinds_do_not_queue(baseline: Baseline, tmp_path: Path) -> None:
    store = AnomalyStore(tmp_path / "s.db")
    assert runner_queue(LabellingSettings(), store, {"ctr": baseline}, None) is None
    queue = runner_queue(
        LabellingSettings(queue_on_incident=True, budget_per_day=BUDGET, recent_records=RECENT),
        store,
        {"ctr": baseline},
        None,
    )
    assert queue is not None
    rows = list(
        serving_records(6_000, rate=RATE, start=T0, injections=[Injection("category_surge", 3_000)])
    )
    run(baseline, store, rows, queue)
    kinds = {i.kind for i in store.incidents()}
    assert "distribution_skew" in kinds, kinds
    assert kinds.isdisjoint(LABELLED_KINDS), kinds
    assert label_store.queue(store) == [], "schema and distribution skew are not answered by labels"
    store.close()


def test_with_elasticsearch_each_item_goes_to_the_outbox_in_the_same_transaction(
    baseline: Baseline, tmp_path: Path
) -> None:
    store = AnomalyStore(tmp_path / "s.db")
    queue = RunnerQueue(store, {"ctr": baseline}, QueueOptions(BUDGET), None, RECENT, index=True)
    run(baseline, store, records(), queue)
    items = {i.request_id: i for i in label_store.queue(store)}
    docs = [r.item for r in Outbox(store).pending(10_000) if r.item.target == "label-queue"]
    assert items and {d.doc_id for d in docs} == set(items) and len(docs) == len(items)
    body = orjson.loads(docs[0].body)
    assert body["label"]["state"] == "queued" and "features" not in body
    assert body["label"]["reason"] == items[docs[0].doc_id].reason
    store.close()


def test_a_slice_short_of_labels_in_a_judged_window_of_labels_fills_the_queue(
    baseline: Baseline, tmp_path: Path
) -> None:
    labels = LabelOptions(window_seconds=60, wait_seconds=0, slice_key="category")
    engine = Engine([baseline], EngineOptions(window_seconds=60, min_count=1), labels)
    store = AnomalyStore(tmp_path / "s.db")
    queue = RunnerQueue(store, {"ctr": baseline}, QueueOptions(BUDGET), "category", RECENT,
                        min_coverage=0.05)  # fmt: skip
    lines: list[str] = []
    p = Pipeline(engine, store, FieldMapping(), emit=lines.append, labelling=queue)
    features = {"price": 20.0, "age": 40, "score": 0.6, "country": "US", "device": "ios"}

    def prediction(i: int) -> ForwardEvent:
        category = "hats" if i % 4 == 0 else "shoes"  # hats: never labelled
        record = {"request_id": f"r{i}", "model": "ctr", "features": features,
                  "prediction": 0.8, "slice": {"category": category}}  # fmt: skip
        return ForwardEvent("serving", T0 - 50 + i * 0.05, record)

    # Slices are named from the 1,000th prediction on (top-K): the first thousand come in a
    # window of their own, then two windows with a slice short of labels.
    feedback = [
        ForwardEvent("feedback", T0 - 45 + i * 0.05, {"request_id": f"r{i}", "label": 1})
        for i in range(3_400)
        if i % 4
    ]
    stream = sorted([*(prediction(i) for i in range(3_400)), *feedback], key=lambda e: e.time)
    for i in range(0, len(stream), 200):  # in event-time order, as a live stream comes
        p.handle(stream[i : i + 200])
    p.publish(p.engine.close_all())
    queued = label_store.queue(store)
    assert len(queued) <= BUDGET
    # (a constant stream also opens drift incidents on its features: those items say so)
    items = [i for i in queued if i.reason.startswith("label coverage")]
    assert items, [i.reason for i in queued]
    assert {i.slice for i in items} == {"hats"}, "the labelled slice is not sampled"
    assert all(i.reason.startswith("label coverage 0.0% < 5.0% in slice hats") for i in items)
    assert all("incident" in i.reason for i in queued if i not in items)
    said = f"queued {len(items)} records of ctr for label coverage 0.0% < 5.0% in slice hats"
    assert any(said in x for x in lines), lines
    store.close()
