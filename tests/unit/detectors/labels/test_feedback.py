"""detectors.labels.feedback: pending predictions join their label once, expire past the horizon in
event time, and never hold more than the cap."""

from __future__ import annotations

import tracemalloc

import pytest

from detectors.labels.feedback import PendingPredictions


def filled(n: int, *, horizon: float = 100.0, cap: int = 1_000) -> PendingPredictions:
    pending = PendingPredictions(horizon, cap)
    for i in range(n):
        pending.add(f"r{i}", ts=float(i), prediction=i / n, model=1, slice_=i % 3, groups=2)
    return pending


def test_a_label_joins_its_prediction_once_with_what_it_predicted() -> None:
    pending = filled(10)
    joined = pending.join("r4", ts=30.0)
    assert joined is not None
    assert (joined.ts, joined.prediction, joined.model, joined.slice_, joined.groups) == (
        4.0,
        0.4,
        1,
        1,
        2,
    )
    assert joined.latency == 26.0
    assert pending.join("r4", ts=31.0) is None
    assert (pending.stats.joined, pending.stats.unmatched, len(pending)) == (1, 1, 9)


def test_predictions_older_than_the_horizon_expire_unlabelled_and_are_counted() -> None:
    pending = filled(10, horizon=5.0)
    pending.join("r0", ts=1.0)  # joined ones are not counted as expired
    assert pending.expire(watermark=11.5) == 6  # r1..r6 are more than 5 s older
    assert pending.stats.expired == 6 and len(pending) == 3
    assert pending.join("r3", ts=11.5) is None and pending.join("r8", ts=11.5) is not None


def test_a_label_later_than_the_horizon_does_not_join_even_before_expiry_ran() -> None:
    pending = filled(3, horizon=5.0)
    assert pending.join("r0", ts=5.5) is None
    assert (pending.stats.expired, pending.stats.unmatched) == (1, 1)


def test_the_cap_evicts_the_oldest_and_counts_it() -> None:
    pending = filled(25, cap=10)
    assert len(pending) == 10 and pending.stats.evicted == 15
    assert pending.join("r14", ts=30.0) is None and pending.join("r15", ts=30.0) is not None


def test_the_ring_reuses_slots_of_joined_and_expired_entries_without_counting_eviction() -> None:
    pending = PendingPredictions(horizon=1_000.0, cap=4)
    for i in range(40):
        pending.add(f"r{i}", ts=float(i), prediction=0.5, model=0, slice_=0, groups=0)
        assert pending.join(f"r{i}", ts=i + 0.5) is not None
    assert pending.stats.evicted == 0 and len(pending) == 0 and len(pending._key) == 4


def test_a_request_id_logged_twice_keeps_the_newest_prediction() -> None:
    pending = filled(3)
    pending.add("r1", ts=5.0, prediction=0.9, model=1, slice_=0, groups=0)
    joined = pending.join("r1", ts=6.0)
    assert joined is not None and joined.prediction == 0.9 and pending.stats.replaced == 1
    assert len(pending) == 2


def test_label_latency_percentiles_come_from_a_bounded_sketch() -> None:
    pending = filled(1_000, horizon=10_000.0)
    for i in range(1_000):
        pending.join(f"r{i}", ts=i + float(i % 100))  # latencies 0..99, ten times each
    q = pending.stats.latency_quantiles()
    assert q["p50"] == pytest.approx(50, abs=3) and q["p99"] == pytest.approx(99, abs=3)


@pytest.mark.parametrize(("horizon", "cap"), [(0.0, 1), (1.0, 0)])
def test_parameters_are_validated_by_name(horizon: float, cap: int) -> None:
    with pytest.raises(ValueError, match="horizon" if horizon <= 0 else "cap"):
        PendingPredictions(horizon, cap)


def test_measured_memory_is_under_160_bytes_per_pending_prediction() -> None:
    ids = [f"req-{i:08x}" for i in range(100_000)]  # made before measuring: the caller's
    tracemalloc.start()
    try:
        pending = PendingPredictions(horizon=86_400.0, cap=200_000)
        for i, rid in enumerate(ids):
            pending.add(rid, ts=float(i), prediction=0.5, model=0, slice_=1, groups=2)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held / len(pending) < 160, f"{held / len(pending):.0f} bytes per entry"
