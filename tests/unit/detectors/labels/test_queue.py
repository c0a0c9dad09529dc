"""Choosing what to label: within the budget, from the triggered slice, far-from-training records
oversampled, no sensitive raw value unless the schema allows it, each item with its reason."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

import pytest

from detectors.baseline.reference import Baseline
from detectors.incidents.tracker import Incident
from detectors.labels.queue import (
    DAY,
    Candidate,
    QueueOptions,
    Sampler,
    Trigger,
    band,
    coverage_triggers,
    distance,
    incident_trigger,
)
from detectors.records import decode_record
from streams.simulation.traffic import serving_records
from tests.unit.detectors.conftest import traffic_baseline


def candidates(n: int, slices: tuple[str, ...] = ("shoes", "hats")) -> list[Candidate]:
    out = []
    for k, raw in enumerate(serving_records(n, rate=100.0, start=0.0, seed=3)):
        r = decode_record(raw)
        features = dict(r.features)
        if k % 4 == 0:
            features["price"] = 10_000.0  # far outside training: the region that moved
        assert r.request_id is not None
        pred = r.prediction if isinstance(r.prediction, float) else None
        out.append(Candidate(r.request_id, r.ts, r.model, r.version, slices[k % 2], features, pred))
    return out


def test_distance_is_small_at_the_centre_and_one_outside_the_support(
    ctr_baseline: Baseline,
) -> None:
    typical = {"price": 12.5, "age": 40, "score": 0.5, "country": "US", "device": "ios"}
    assert distance(ctr_baseline, typical) < 0.5
    odd = {**typical, "price": 1e6, "age": 200, "country": "never-seen", "device": "fax"}
    assert distance(ctr_baseline, odd) > 0.7
    assert distance(ctr_baseline, {}) == 0.0
    assert [band(0.0), band(0.5), band(1.0)] == ["near", "mid", "far"]


def test_the_queue_holds_the_budget_from_the_triggered_slice_only(ctr_baseline: Baseline) -> None:
    trigger = Trigger("ctr", "concept_drift incident x", ts=0.0, slice="shoes")
    sampler = Sampler([trigger], ctr_baseline, QueueOptions(budget=50), used={})
    for c in candidates(2_000):
        sampler.offer(c)
    items = sampler.take()
    assert len(items) == 50
    assert {i.slice for i in items} == {"shoes"}
    assert all(i.reason.startswith("concept_drift incident x;") for i in items)
    assert len({i.request_id for i in items}) == 50
    # a quarter of the offered records are far from training; weighted sampling takes more
    far = Counter(i.band for i in items)["far"]
    assert far / len(items) > 0.4


def test_a_slices_trigger_takes_the_budget_from_a_model_wide_one(ctr_baseline: Baseline) -> None:
    triggers = [Trigger("ctr", "model-wide", 0.0), Trigger("ctr", "in shoes", 0.0, "shoes")]
    sampler = Sampler(triggers, ctr_baseline, QueueOptions(budget=30), used={})
    for c in candidates(600):
        sampler.offer(c)
    assert {i.slice for i in sampler.take()} == {"shoes"} and len(sampler.take()) == 30


def test_only_records_while_the_trigger_lasted_are_offered(ctr_baseline: Baseline) -> None:
    trigger = Trigger("ctr", "drift", 0.0, since=2.0, until=4.0)
    sampler = Sampler([trigger], ctr_baseline, QueueOptions(budget=1_000), used={})
    for c in candidates(1_000):  # 10 s at 100 per second
        sampler.offer(c)
    times = [i.ts for i in sampler.take()]
    assert sampler.offered == len(times) and 190 <= len(times) <= 201
    assert min(times) >= 2.0 and max(times) <= 4.0


def test_the_days_budget_already_spent_is_not_spent_again(ctr_baseline: Baseline) -> None:
    trigger = Trigger("ctr", "drift", ts=3 * DAY + 5, slice=None)
    used = {("ctr", 3): 45}
    sampler = Sampler([trigger], ctr_baseline, QueueOptions(budget=50), used=used)
    for c in candidates(500):
        sampler.offer(c)
    assert len(sampler.take()) == 5
    spent = Sampler([trigger], ctr_baseline, QueueOptions(budget=50), used={("ctr", 3): 60})
    for c in candidates(100):
        spent.offer(c)
    assert spent.take() == []


def test_slices_share_the_budget_and_queued_records_are_not_chosen_twice(
    ctr_baseline: Baseline,
) -> None:
    triggers = [Trigger("ctr", "low coverage", 0.0, "shoes"), Trigger("ctr", "low", 0.0, "hats")]
    pool = candidates(1_000)
    first = Sampler(triggers, ctr_baseline, QueueOptions(budget=21), used={})
    for c in pool:
        first.offer(c)
    chosen = first.take()
    assert Counter(i.slice for i in chosen) == {"shoes": 11, "hats": 10}
    again = Sampler(
        triggers,
        ctr_baseline,
        QueueOptions(21),
        used={},
        queued=frozenset(i.request_id for i in chosen),
    )
    for c in pool:
        again.offer(c)
    assert not {i.request_id for i in again.take()} & {i.request_id for i in chosen}


def test_the_choice_is_reproducible(ctr_baseline: Baseline) -> None:
    def pick() -> list[str]:
        s = Sampler([Trigger("ctr", "r", 0.0)], ctr_baseline, QueueOptions(budget=30), used={})
        for c in candidates(600):
            s.offer(c)
        return [i.request_id for i in s.take()]

    assert pick() == pick()


def test_a_sensitive_raw_value_is_left_out_unless_the_schema_allows_it() -> None:
    hidden = traffic_baseline(schema_edits={"country": {"sensitive": True}})
    shown = traffic_baseline(schema_edits={"country": {"sensitive": True, "raters_may_see": True}})
    for baseline, visible in ((hidden, False), (shown, True)):
        s = Sampler([Trigger("ctr", "r", 0.0)], baseline, QueueOptions(budget=5), used={})
        for c in candidates(50):
            s.offer(c)
        items = s.take()
        assert items and all(("country" in i.features) is visible for i in items)
        assert all("device" in i.features for i in items)
        # the distance still reads the sensitive feature, through its keyed hash
        assert Counter(i.band for i in items)["far"] < len(items)


def test_triggers_from_incidents_and_from_coverage() -> None:
    incident = Incident(
        id="inc1", model="ctr", version="3", feature="error_rate", kind="concept_drift",
        slice={"category": "shoes"}, opened_at=500.0, opened_window=300.0, first_anomaly="a",
        severity="high", peak_effect=0.2, escalated_at=500.0,
    )  # fmt: skip
    t = incident_trigger(incident, "category")
    assert t is not None and (t.model, t.slice, t.since, t.ts) == ("ctr", "shoes", 300.0, 500.0)
    assert "concept_drift incident inc1" in t.reason and "category=shoes" in t.reason
    assert t.until == math.inf
    resolved = incident_trigger(replace(incident, status="resolved", resolved_at=900.0), None)
    assert resolved is not None and (resolved.slice, resolved.until) == (None, 900.0)
    assert incident_trigger(replace(incident, kind="schema_skew"), "category") is None
    low = coverage_triggers(
        "ctr", {"shoes": 1000, "hats": 1000}, {"shoes": 10, "hats": 500}, 0.05, 9.0
    )
    assert [(x.slice, x.ts) for x in low] == [("shoes", 9.0)]


def test_budget_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="budget"):
        QueueOptions(budget=-1)
    assert math.isfinite(QueueOptions().budget)
