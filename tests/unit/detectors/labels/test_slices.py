"""detectors.labels.slices: space-saving keeps every heavy hitter within its error bound; slice
labels are the top-K values, everything else "other"."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.labels.slices import SliceKeys, SpaceSaving
from detectors.stats import OTHER


@given(st.lists(st.sampled_from("abcdefghij"), max_size=300), st.integers(1, 6))
def test_space_saving_counts_bound_the_true_counts(stream: list[str], capacity: int) -> None:
    summary = SpaceSaving(capacity)
    for v in stream:
        summary.update(v)
    truth = Counter(stream)
    assert len(summary.counts) <= capacity and summary.n == len(stream)
    for v, count in summary.counts.items():
        assert count - summary.errors[v] <= truth[v] <= count
    for v, n in truth.items():  # anything more frequent than n / capacity is kept
        if n > len(stream) / capacity:
            assert v in summary.counts


def test_a_skewed_stream_of_10_000_values_keeps_its_top_k_as_slices() -> None:
    rng = random.Random(4)
    keys = SliceKeys(top_k=5, refresh_every=500)
    heavy = [f"cat{i}" for i in range(5)]
    for _ in range(20_000):
        keys.label(rng.choice(heavy) if rng.random() < 0.7 else f"rare{rng.randrange(10_000)}")
    assert keys.monitored == frozenset(heavy)
    assert keys.label("cat3") == "cat3" and keys.label("rare17") == OTHER
    assert len(keys.summary.counts) == 10


def test_parameters_are_validated_by_name() -> None:
    with pytest.raises(ValueError, match="top_k"):
        SliceKeys(0)
    with pytest.raises(ValueError, match="capacity"):
        SpaceSaving(0)
