"""detectors.drift.adwin: river's ADWIN over blocks at once alarms at the indices river's
value-by-value update does, whatever the cuts, through its resets, and leaves the detector
where river's own loop leaves it."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from river.drift import ADWIN

from detectors.drift.adwin import update_many
from detectors.drift.river_loop import one_by_one


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shift=st.floats(0.0, 3.0),
    delta=st.sampled_from([0.2, 0.002, 1e-6]),
    clock=st.sampled_from([1, 4, 32]),
    cuts=st.lists(st.integers(0, 3_000), max_size=10),
)
def test_blocks_alarm_where_river_does_at_any_cut(
    seed: int, shift: float, delta: float, clock: int, cuts: list[int]
) -> None:
    rng = np.random.default_rng(seed)
    level = np.repeat(rng.choice([-shift, 0.0, shift], 6), 500)  # shifts up and down
    xs = rng.normal(0, 1, 3_000) + level
    river, batched = ADWIN(delta=delta, clock=clock), ADWIN(delta=delta, clock=clock)
    expected = one_by_one(river, xs)
    found = []
    for lo, hi in itertools.pairwise(sorted({0, 3_000, *cuts})):
        found += [lo + i for i in update_many(batched, xs[lo:hi])]
    assert found == expected
    assert batched.drift_detected == river.drift_detected
    assert (batched.width, batched.total, batched.variance) == (
        river.width,
        river.total,
        river.variance,
    )


def test_an_alarm_on_the_last_value_of_a_block_resets_on_the_first_of_the_next() -> None:
    xs = np.concatenate([np.zeros(300), np.full(300, 5.0)])
    river = ADWIN(delta=0.002, clock=1)
    expected = one_by_one(river, xs)
    at = expected[0]
    batched = ADWIN(delta=0.002, clock=1)
    assert update_many(batched, xs[: at + 1]) == [at] and batched.drift_detected
    later = update_many(batched, xs[at + 1 :])
    assert [at + 1 + i for i in later] == expected[1:]
    assert batched.width == river.width
