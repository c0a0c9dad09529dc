"""detectors.watch: one feature judged event by event, the same for the Engine and the worker:
window accounting, normal-score change detectors that no tail can fool, and rate tests."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from detectors.baseline.reference import Baseline
from detectors.drift.change import Change
from detectors.drift.rates import RateAlarm
from detectors.stages import Observation
from detectors.watch import FeatureWatch


def test_a_value_out_of_range_is_binned_but_never_fed_to_moments_or_detectors(
    ctr_baseline: Baseline,
) -> None:
    ref = ctr_baseline.references["score"]
    watch = FeatureWatch(ref)
    win = ref.empty_window()
    watch.observe(win, Observation(1e300, False, ("FLOAT_TYPE_BIG_FLOAT",)))
    assert win.bins is not None and win.bins.counts[-1] == 1  # above the training maximum
    assert win.moments.n == 0  # a 1e300 never poisons the window's mean
    assert watch.change is not None and watch.change.seen == 0


def test_heavy_tails_cannot_fire_the_change_detectors(ctr_baseline: Baseline) -> None:
    ref = ctr_baseline.references["score"]
    watch = FeatureWatch(ref)
    win = ref.empty_window()
    rng = np.random.default_rng(1)
    # training values with, every 500th, an absurd but in-range spike: ranks stay bounded
    values = rng.choice(np.asarray(ref.scores.xs if ref.scores else [0.5]), size=50_000)
    values[::500] = ref.profile.numeric.max if ref.profile.numeric else 1.0
    fired = [s for x in values.tolist() for s in watch.observe(win, Observation(float(x)))]
    assert not [s for s in fired if isinstance(s, Change)]


def test_missing_values_that_jump_alarm_as_they_arrive(ctr_baseline: Baseline) -> None:
    ref = ctr_baseline.references["price"]
    watch = FeatureWatch(ref)
    win = ref.empty_window()
    alarms = []
    for i in range(3_000):
        obs = Observation(None, True) if i % 4 == 0 else Observation(10.0)
        alarms += watch.observe(win, obs)
    rate = [a for a in alarms if isinstance(a, RateAlarm)]
    assert rate and rate[0].test == "missing"
    assert rate[0].rate > 0.15  # about the 25% it is
    assert win.missing == 750 and win.seen == 3_000


def test_rate_state_round_trips_for_the_changelog(ctr_baseline: Baseline) -> None:
    ref = ctr_baseline.references["device"]
    watch = FeatureWatch(ref)
    win = ref.empty_window()
    for i in range(200):
        watch.observe(win, Observation("tablet" if i % 3 else "ios"))
    copy = FeatureWatch(ref)
    copy.restore_rates(watch.rates_to_plain())
    assert copy.rates_to_plain() == watch.rates_to_plain()
    assert math.isfinite(copy.tests["missing"].s)


def test_a_share_is_judged_among_the_values_however_many_are_missing(
    ctr_baseline: Baseline,
) -> None:
    ref = ctr_baseline.references["device"]
    watch = FeatureWatch(ref)
    win = ref.empty_window()
    alarms = []
    for i in range(6_000):  # half missing; of the rest, 80% web (10% in training)
        obs = Observation(None, True) if i % 2 else Observation("web" if i % 10 else "ios")
        alarms += [a for a in watch.observe(win, obs) if isinstance(a, RateAlarm)]
    assert any(a.test == "category" and a.what == "web" for a in alarms)


def test_a_schema_without_a_violation_floor_or_a_feature_nearly_always_missing_is_no_crash(
    ctr_baseline: Baseline,
) -> None:
    ref = ctr_baseline.references["price"]
    free = dataclasses.replace(
        ref, thresholds=ref.thresholds.model_copy(update={"violation_rate": 0.0})
    )
    assert "range" not in FeatureWatch(free).tests  # no floor to rise by: no range test
    absent = dataclasses.replace(ref, missing_rate=0.9995)
    watch = FeatureWatch(absent)
    assert "missing" not in watch.tests  # it cannot rise by the floor: nothing to page
    win = absent.empty_window()
    assert not [s for _ in range(5_000) for s in watch.observe(win, Observation(None, True))]


def test_stored_rate_state_that_does_not_fit_is_refused_not_half_loaded(
    ctr_baseline: Baseline,
) -> None:
    watch = FeatureWatch(ctr_baseline.references["device"])
    plain = watch.rates_to_plain()
    for bad in (
        {**plain, "v": 1},
        {**plain, "events": math.inf},
        {**plain, "tests": {"missing": [math.inf, 0, 0, 0, 1]}},
        {**plain, "tests": ["not", "a", "map"]},
    ):
        with pytest.raises((ValueError, TypeError, KeyError, AttributeError, OverflowError)):
            FeatureWatch(ctr_baseline.references["device"]).restore_rates(bad)
