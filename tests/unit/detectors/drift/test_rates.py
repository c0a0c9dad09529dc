"""detectors.drift.rates: a Bernoulli CUSUM judges a rate as the events arrive; its false-alarm rate
per event stays under exp(-h), and it is updated lazily at hits only."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from detectors.drift.rates import RateCusum, onset_of, rise_of, threshold


def first_alarm(cusum: RateCusum, hits: np.ndarray, offset: int = 0) -> int | None:
    for t in np.flatnonzero(hits).tolist():
        if cusum.hit(offset + t):
            return t
    return None


def test_a_stationary_rate_never_alarms_at_a_billion_event_budget() -> None:
    rng = np.random.default_rng(1)
    cusum = RateCusum(*rise_of(0.02, 0.05), threshold(1e-9, 1, 1.0))
    assert first_alarm(cusum, rng.random(2_000_000) < 0.02) is None
    # nor a rise smaller than the floor: +3.6 points against a 5-point floor
    small = RateCusum(*rise_of(0.10, 0.05), threshold(1e-9, 1, 1.0))
    assert first_alarm(small, rng.random(2_000_000) < 0.136) is None


def test_a_loose_budget_alarms_about_as_often_as_its_bound_allows() -> None:
    rng = np.random.default_rng(2)
    h = math.log(1 / 1e-3)
    cusum = RateCusum(0.05, 0.1, h)
    hits = rng.random(1_000_000) < 0.05
    alarms = sum(cusum.hit(t) for t in np.flatnonzero(hits).tolist())
    assert alarms <= 1e-3 * 1_000_000  # Lorden: at most exp(-h) per event
    assert alarms > 0  # and the bound is not vacuous at this budget


@pytest.mark.parametrize(
    ("tuning", "p0", "p", "within"),
    [
        (rise_of, 0.01, 0.11, 1_000),  # a 10% missing spike
        (rise_of, 0.02, 0.08, 4_000),  # a category from 2% to 8%, a floor of 5 points
        (onset_of, 1e-5, 0.005, 2_000),  # 0.5% type breaks where training had none
    ],
)
def test_a_rate_that_jumps_is_caught_quickly(
    tuning: object, p0: float, p: float, within: int
) -> None:
    rng = np.random.default_rng(3)
    floor = 0.01 if tuning is onset_of else 0.05
    cusum = RateCusum(*tuning(p0, floor), threshold(1e-9, 2, 1.0))  # type: ignore[operator]
    before = rng.random(50_000) < p0
    assert first_alarm(cusum, before) is None
    delay = first_alarm(cusum, rng.random(10_000) < p, offset=50_000)
    assert delay is not None and delay < within


def test_lazy_updates_equal_the_event_by_event_recursion() -> None:
    rng = np.random.default_rng(4)
    hits = rng.random(5_000) < 0.1
    lazy = RateCusum(0.05, 0.12, 1e9)  # never reaches h: the plain recursion throughout
    s = 0.0
    for t, hit in enumerate(hits.tolist()):
        s = max(0.0, s + (lazy.up if hit else lazy.down))
        if hit:
            lazy.hit(t)
            assert lazy.s == pytest.approx(s)


def test_state_round_trips_and_bad_state_is_refused() -> None:
    c = RateCusum(0.01, 0.06, 20.0)
    for t in range(0, 500, 7):
        c.hit(t)
    copy = RateCusum(0.01, 0.06, 20.0)
    copy.restore(c.to_plain())
    assert copy.to_plain() == c.to_plain()
    with pytest.raises(ValueError, match="CUSUM"):
        copy.restore([math.inf, 0, 0, 0, 1])


def test_a_lasting_rise_alarms_once_and_again_only_after_the_rate_came_back() -> None:
    c = RateCusum(0.01, 0.06, 20.0)
    alarms = [t for t in range(0, 20_000, 2) if c.hit(t)]  # 50% hits for 20,000 events
    assert len(alarms) == 1
    later = [t for t in range(40_000, 60_000, 2) if c.hit(t)]  # calm in between, then again
    assert len(later) == 1


def test_parameters_are_checked_by_name() -> None:
    with pytest.raises(ValueError, match="p0"):
        RateCusum(0.2, 0.1, 10.0)
    with pytest.raises(ValueError, match="h must"):
        RateCusum(0.1, 0.2, 0.0)
    assert rise_of(0.3, 0.05) == pytest.approx((0.325, 0.375))
    assert rise_of(0.9995, 0.05) is None  # nearly every record already: it cannot rise
    assert rise_of(0.1, 0.0) is None  # no floor: nothing to tell a rise by
    assert onset_of(0.001, 0.0) == pytest.approx((0.001, 0.002))
    assert onset_of(0.001, 0.05) == pytest.approx((0.001, 0.051))


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    base=st.floats(0.005, 0.3),
    rise=st.floats(0.01, 0.4),
    p0=st.floats(0.002, 0.2),
    gain=st.floats(1.2, 5.0),
    h=st.floats(1.0, 25.0),
    cuts=st.lists(st.integers(1, 4_000), max_size=12),
)
def test_batch_hits_alarm_where_hit_by_hit_does_at_any_batch_cut(
    seed: int, base: float, rise: float, p0: float, gain: float, h: float, cuts: list[int]
) -> None:
    p1 = min(0.99, p0 * gain)
    assume(p0 < p1)
    rng = np.random.default_rng(seed)
    rates = np.where((np.arange(12_000) // 2_000) % 2 == 1, min(0.95, base + rise), base)
    ts = np.flatnonzero(rng.random(12_000) < rates)
    one = RateCusum(p0, p1, h)
    expected = []
    for t in ts.tolist():
        if one.hit(t):
            expected.append((t, one.rate(t), t - one.run_start + 1))
    batch = RateCusum(p0, p1, h)
    found = []
    bounds = sorted({0, len(ts), *(c % (len(ts) + 1) for c in cuts)})
    for lo, hi in itertools.pairwise(bounds):
        found += batch.hits(ts[lo:hi])
    assert [t for t, _, _ in found] == [t for t, _, _ in expected]
    assert [e for _, _, e in found] == [e for _, _, e in expected]
    assert [r for _, r, _ in found] == pytest.approx([r for _, r, _ in expected])
    assert batch.to_plain() == pytest.approx(one.to_plain())
