"""detectors.drift.page_hinkley: river's Page-Hinkley over blocks at once alarms at the indices
river's value-by-value update does, whatever the cuts, through its warm-up and its resets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river.drift import PageHinkley

from detectors.drift.page_hinkley import update_many
from detectors.drift.river_loop import one_by_one


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shift=st.floats(0.0, 3.0),
    delta=st.floats(0.0, 0.5),
    threshold=st.floats(2.0, 60.0),
    min_instances=st.integers(1, 200),
    mode=st.sampled_from(["both", "up", "down"]),
    cuts=st.lists(st.integers(0, 3_000), max_size=10),
)
def test_blocks_alarm_where_river_does_at_any_cut(
    seed: int,
    shift: float,
    delta: float,
    threshold: float,
    min_instances: int,
    mode: str,
    cuts: list[int],
) -> None:
    rng = np.random.default_rng(seed)
    level = np.repeat(rng.choice([-shift, 0.0, shift], 6), 500)  # shifts up and down
    xs = rng.normal(0, 1, 3_000) + level

    def make() -> PageHinkley:
        return PageHinkley(min_instances, delta, threshold, alpha=1.0, mode=mode)

    river, batched = make(), make()
    expected = one_by_one(river, xs)
    found = []
    for lo, hi in itertools.pairwise(sorted({0, 3_000, *cuts})):
        found += [lo + i for i in update_many(batched, xs[lo:hi])]
    assert found == expected
    assert batched._x_mean.n == river._x_mean.n
    assert batched._x_mean.get() == pytest.approx(river._x_mean.get(), abs=1e-9)
    assert batched._sum_increase == pytest.approx(river._sum_increase, abs=1e-6)
    assert batched.drift_detected == river.drift_detected


def test_a_shift_is_caught_and_the_detector_resets_after_each_alarm() -> None:
    rng = np.random.default_rng(3)
    xs = np.concatenate(
        [rng.normal(0, 1, 2_000), rng.normal(1.5, 1, 2_000), rng.normal(0, 1, 2_000)]
    )
    d = PageHinkley(30, 0.25, 40.0, alpha=1.0)
    alarms = update_many(d, xs)
    assert len(alarms) == 2  # the rise, then (from the reset at the new level) the fall
    assert 2_000 <= alarms[0] < 2_100 and 4_000 <= alarms[1] < 4_100
    assert alarms == one_by_one(PageHinkley(30, 0.25, 40.0, alpha=1.0), xs)


def test_a_fading_sum_takes_rivers_loop() -> None:
    xs = np.random.default_rng(4).normal(0, 1, 1_000) + np.repeat([0.0, 2.0], 500)
    d = PageHinkley(30, 0.1, 20.0)  # river's default alpha < 1
    assert update_many(d, xs) == one_by_one(PageHinkley(30, 0.1, 20.0), xs)
