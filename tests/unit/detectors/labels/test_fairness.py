"""detectors.labels.fairness: disparity to the best-served group, against hand-computed z values; no
alarm from small windows or from every group degrading alike."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.labels.fairness import Fairness, disparities
from detectors.labels.performance import PerformanceWindow


def win(errors: int, n: int) -> PerformanceWindow:
    return PerformanceWindow(labelled=n, fp=errors, tn=n - errors)


def test_a_gap_above_the_threshold_is_flagged_with_the_agresti_caffo_z() -> None:
    now = {"a": win(300, 1_000), "b": win(450, 1_000)}
    (found,) = disparities(now, {}, Fairness(threshold=0.1))
    pa, pb = 301 / 1_002, 451 / 1_002
    z = (pb - pa) / math.sqrt(pa * (1 - pa) / 1_002 + pb * (1 - pb) / 1_002)
    assert (found.group, found.best, found.detector) == ("b", "a", "error_rate_disparity")
    assert found.statistic == pytest.approx(0.15) and found.z == pytest.approx(z)


def test_a_gap_that_moved_from_its_reference_is_flagged_even_under_the_threshold() -> None:
    ref = {"a": win(6_000, 30_000), "b": win(7_500, 30_000)}  # b was always 5 points behind
    now = {"a": win(2_000, 10_000), "b": win(3_000, 10_000)}  # now 10: under 0.15, moved 0.05
    found = disparities(now, ref, Fairness(threshold=0.15, change_floor=0.04))
    assert [(f.group, f.detector) for f in found] == [("b", "error_rate_disparity_change")]
    assert found[0].rates["reference_gap"] == pytest.approx(0.05)


def test_every_group_degrading_alike_is_not_unfairness() -> None:
    ref = {"a": win(600, 3_000), "b": win(600, 3_000), "c": win(600, 3_000)}
    now = {"a": win(400, 1_000), "b": win(410, 1_000), "c": win(395, 1_000)}
    assert disparities(now, ref, Fairness()) == []


def test_groups_under_min_labels_are_not_judged() -> None:
    now = {"a": win(0, 50), "b": win(50, 50)}
    assert disparities(now, {}, Fairness(min_labels=100)) == []


def test_small_windows_of_equal_groups_false_alarm_near_the_nominal_rate() -> None:
    # 30 to 80 labels per group: the normal approximation's tail is at its worst here, and the
    # best-served group is the luckiest of three. Nominal: 4,000 windows x 2 groups x 2 rules
    # x 1e-3 = 16 alarms; measured 22. Without the union bound over the best group, 28 in the
    # first 2,000 windows alone.
    rng = np.random.default_rng(9)
    opts = Fairness(min_labels=30, false_alarm_rate=1e-3)
    alarms = 0
    for _ in range(4_000):
        n = int(rng.integers(30, 80))
        now = {g: win(int(rng.binomial(n, 0.3)), n) for g in "abc"}
        ref = {g: win(int(rng.binomial(300, 0.3)), 300) for g in "abc"}
        alarms += len(disparities(now, ref, opts))
    assert alarms <= 2 * 16


@pytest.mark.parametrize(
    ("field", "value"), [("threshold", 0.0), ("change_floor", 1.0), ("min_labels", 0)]
)
def test_parameters_are_validated_by_name(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        Fairness(**{field: value})  # type: ignore[arg-type]
