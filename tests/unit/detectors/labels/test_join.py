"""The worker's label join: a label meets its prediction whichever of the two is read first,
within the horizon, once; what expires or is pushed out by the cap is counted and deleted from
the partition it was written to."""

from __future__ import annotations

import pytest

from detectors.labels.join import LABEL_KEY, LABEL_WAIT, Label, LabelJoin, MemoryStore, Pending

DAY = 86_400.0


def pending(ts: float, partition: int = 0, prediction: float = 0.7) -> Pending:
    return Pending(ts, partition, prediction, "ctr", "3", "shoes", ("f",))


def label(ts: float, partition: int = 0, value: float = 1.0) -> Label:
    return Label(ts, partition, value)


class RecordingStore(MemoryStore):
    """Remembers the partition of every delete, to compare with the entry's own."""

    def __init__(self) -> None:
        super().__init__()
        self.deletes: list[tuple[int, int]] = []  # (partition named, entry's partition)

    def delete(self, partition: int, key: str) -> None:
        self.deletes.append((partition, self[key].partition))
        super().delete(partition, key)


def test_a_label_up_to_the_horizon_late_joins_its_prediction_once() -> None:
    join = LabelJoin(MemoryStore(), horizon=DAY, cap=10)
    join.hold("r1", pending(0.0))
    assert join.label("r1", label(DAY - 1)) == pending(0.0)
    assert join.label("r1", label(DAY)) is None  # a second label waits, for nothing
    assert (join.stats.joined, join.live) == (1, 0)
    assert join.stats.latency_quantiles()["p50"] == pytest.approx(DAY - 1)


def test_a_label_later_than_the_horizon_is_counted_expired_not_joined() -> None:
    join = LabelJoin(MemoryStore(), horizon=DAY, cap=10)
    join.hold("r1", pending(0.0))
    assert join.label("r1", label(DAY + 1)) is None
    assert (join.stats.expired, join.stats.unmatched, join.stats.joined) == (1, 1, 0)
    assert join.live == 0


def test_a_label_read_before_its_prediction_waits_for_it() -> None:
    store = MemoryStore()
    join = LabelJoin(store, horizon=DAY, cap=10)
    assert join.label("r1", label(600.0)) is None
    assert LABEL_KEY + "r1" in store
    assert join.hold("r1", pending(0.0)) == label(600.0)
    assert (join.stats.joined, len(store), join.live) == (1, 0, 0)


def test_a_waiting_label_is_unmatched_once_its_partitions_predictions_pass_it() -> None:
    store = MemoryStore()
    join = LabelJoin(store, horizon=DAY, cap=10)
    join.label("never-logged", label(100.0, partition=1))
    join.hold("other-partition", pending(10_000.0, partition=0))
    assert join.stats.unmatched == 0  # partition 0's clock says nothing of partition 1
    join.hold("r2", pending(100.0 + LABEL_WAIT + 1, partition=1))
    assert join.stats.unmatched == 1
    assert LABEL_KEY + "never-logged" not in store


def test_predictions_expire_by_their_partitions_label_clock() -> None:
    store = MemoryStore()
    join = LabelJoin(store, horizon=100.0, cap=10)
    join.hold("old", pending(0.0, partition=0))
    join.hold("newer", pending(500.0, partition=0))  # predictions alone expire nothing:
    assert "old" in store  # its label may still be behind, on the feedback topic
    join.label("x", label(150.0, partition=1))  # another partition's labels: nothing either
    assert "old" in store
    join.label("y", label(150.0, partition=0))
    assert "old" not in store and "newer" in store
    assert (join.stats.expired, join.live) == (1, 1)


def test_the_cap_evicts_the_oldest_and_counts_it() -> None:
    store = RecordingStore()
    join = LabelJoin(store, horizon=DAY, cap=3)
    for i in range(5):
        join.hold(f"r{i}", pending(float(i), partition=i % 2))
    assert set(store) == {"r2", "r3", "r4"}
    assert (join.stats.evicted, join.live) == (2, 3)
    assert all(named == own for named, own in store.deletes)


def test_every_delete_goes_to_the_partition_the_entry_was_written_to() -> None:
    store = RecordingStore()
    join = LabelJoin(store, horizon=100.0, cap=10)
    for i in range(6):
        join.hold(f"r{i}", pending(float(i), partition=i % 3))
    join.label("r1", label(50.0, partition=1))
    join.label("early", label(7.0, partition=2))
    for p in range(3):  # every partition's clocks pass the horizon
        join.label(f"late{p}", label(300.0, partition=p))
        join.hold(f"now{p}", pending(400.0, partition=p))
    assert len(store.deletes) >= 7
    assert all(named == own for named, own in store.deletes)


def test_a_prediction_read_again_after_a_crash_is_not_a_replacement() -> None:
    join = LabelJoin(MemoryStore(), horizon=DAY, cap=10)
    join.hold("r1", pending(5.0))
    join.hold("r1", pending(5.0))
    assert (join.stats.replaced, join.live) == (0, 1)
    join.hold("r1", pending(6.0, prediction=0.1))  # the same request id logged again
    assert (join.stats.replaced, join.live) == (1, 1)
    assert join.label("r1", label(10.0)) == pending(6.0, prediction=0.1)


def test_after_a_rebalance_the_index_holds_only_the_owned_partitions_in_time_order() -> None:
    store = MemoryStore()
    first = LabelJoin(store, horizon=100.0, cap=10)
    for i, ts in enumerate([30.0, 10.0, 20.0, 40.0]):
        first.hold(f"r{i}", pending(ts, partition=i % 2))
    first.label("w", label(45.0, partition=0))
    second = LabelJoin(store, horizon=100.0, cap=10)  # a restarted worker owning partition 0
    second.rebuild(store.items(), partitions={0})
    assert (second.live, second.labels.live) == (2, 1)
    second.label("now", label(125.0, partition=0))  # r0 (30) is within 100 s; r2 (20) is not
    assert "r2" not in store and "r0" in store
    assert "r1" in store and "r3" in store  # partition 1 is another worker's to expire


def test_nonsense_options_are_refused_with_their_name() -> None:
    with pytest.raises(ValueError, match="horizon"):
        LabelJoin(MemoryStore(), horizon=0.0, cap=1)
    with pytest.raises(ValueError, match="cap"):
        LabelJoin(MemoryStore(), horizon=1.0, cap=0)
