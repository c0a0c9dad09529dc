"""detectors.drift.change: river's Page-Hinkley and ADWIN on standardized values, calibrated on
training: silent on stationary data, quick on a half-sd shift. detectors.drift.change_state: a
detector restored from its snapshot goes on as the original would have."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from river.drift import ADWIN, PageHinkley

from detectors.baseline.calibrate_errors import build
from detectors.baseline.scores import ScoreMap
from detectors.drift.change import (
    Change,
    FeatureChange,
    StandardizedChange,
    adwin,
    detectors_for,
    page_hinkley,
)
from detectors.drift.change_state import restore, snapshot

PH = {"delta": 0.25, "threshold": 40.0, "alpha": 1.0, "min_instances": 30.0}
AD = {"delta": 1e-6, "clock": 32.0}
DDM = {"warm_start": 300.0, "drift_threshold": 8.0}


@pytest.mark.parametrize("std", [0.0, -1.0, math.nan, math.inf])
def test_a_detector_rejects_a_std_that_cannot_standardize_naming_std(std: float) -> None:
    with pytest.raises(ValueError, match="std"):
        StandardizedChange("page_hinkley", page_hinkley(PH), mean=0.0, std=std)


@pytest.mark.parametrize("mean", [math.nan, math.inf, -math.inf])
def test_a_detector_rejects_a_non_finite_mean_naming_mean(mean: float) -> None:
    with pytest.raises(ValueError, match="mean"):
        StandardizedChange("page_hinkley", page_hinkley(PH), mean=mean, std=1.0)


@pytest.mark.parametrize(
    ("mean", "std"), [(0.0, 0.0), (5.0, -1.0), (0.0, math.nan), (math.nan, 1.0), (0.0, math.inf)]
)
def test_a_feature_that_cannot_be_standardized_gets_no_detectors(mean: float, std: float) -> None:
    assert detectors_for({"page_hinkley": PH, "adwin": AD}, mean, std) == []


def test_a_feature_gets_one_detector_per_calibrated_kind_river_knows() -> None:
    found = detectors_for({"page_hinkley": PH, "adwin": AD, "kswin": {"x": 1.0}}, 3.0, 2.0)
    assert [d.name for d in found] == ["page_hinkley", "adwin"]
    assert isinstance(found[0].detector, PageHinkley)
    assert isinstance(found[1].detector, ADWIN)
    assert detectors_for({}, 3.0, 2.0) == []


def test_the_builders_pass_the_calibrated_parameters_to_river() -> None:
    ph = page_hinkley(PH)
    assert (ph.delta, ph.threshold, ph.alpha, ph.min_instances, ph.mode) == (
        0.25,
        40.0,
        1.0,
        30,
        "both",
    )
    ad = adwin(AD)
    assert (ad.delta, ad.clock) == (1e-6, 32)


def test_values_are_standardized_by_the_training_mean_and_std() -> None:
    # The same stream in other units must give the same alarms at the same positions.
    rng = np.random.default_rng(5)
    z = np.concatenate([rng.standard_normal(500), rng.standard_normal(500) + 1.0])
    unit = StandardizedChange("page_hinkley", page_hinkley(PH), mean=0.0, std=1.0)
    dollars = StandardizedChange("page_hinkley", page_hinkley(PH), mean=100.0, std=20.0)
    alarms_unit = [i for i, x in enumerate(z.tolist()) if unit.update(x)]
    alarms_dollars = [i for i, x in enumerate((100 + 20 * z).tolist()) if dollars.update(x)]
    assert alarms_unit
    assert alarms_unit == alarms_dollars


def test_a_change_says_which_detector_when_and_how_far_the_mean_moved() -> None:
    d = StandardizedChange("page_hinkley", page_hinkley(PH), mean=10.0, std=2.0)
    for _ in range(200):
        assert d.update(10.0) is None
    change = next(c for c in (d.update(14.0) for _ in range(500)) if c)  # +2 sd
    assert isinstance(change, Change)
    assert change.detector == "page_hinkley"
    assert change.seen > 200
    assert 0.0 < change.shift <= 2.0

    down = StandardizedChange("adwin", adwin({"delta": 0.002, "clock": 32.0}), mean=0.0, std=1.0)
    for _ in range(500):
        down.update(0.0)
    assert next(c for c in (down.update(-3.0) for _ in range(500)) if c).shift < 0


def test_calibrated_detectors_are_silent_on_stationary_data_and_fire_soon_after_a_half_sd_shift(
    standard_normal_calibration: dict[str, dict[str, float]],
) -> None:
    rng = np.random.default_rng(2026)
    detectors = detectors_for(standard_normal_calibration, mean=0.0, std=1.0)
    assert [d.name for d in detectors] == ["page_hinkley", "adwin"]
    for x in rng.standard_normal(200_000).tolist():
        for d in detectors:
            assert d.update(x) is None, f"{d.name} false alarm after {d.seen} values"
    fired_at: dict[str, int] = {}
    for i, x in enumerate((rng.standard_normal(1_000) + 0.5).tolist()):
        for d in detectors:
            change = d.update(x)
            if change is not None and d.name not in fired_at:
                fired_at[d.name] = i
                assert change.shift > 0
    assert set(fired_at) == {"page_hinkley", "adwin"}, fired_at


def ddm() -> StandardizedChange:
    """The error-stream DDM as ErrorDetectors builds it: raw bits, nothing to standardize."""
    return StandardizedChange("ddm", build("ddm", DDM), mean=0.0, std=1.0)


def error_bits() -> list[float]:
    rng = random.Random(5)
    return [float(rng.random() < (0.1 if i < 3_000 else 0.3)) for i in range(8_000)]


@pytest.mark.parametrize("cut", [100, 2_000, 3_500, None], ids=str)  # None: at its first alarm
def test_a_ddm_restored_from_its_snapshot_goes_on_as_the_original(cut: int | None) -> None:
    bits = error_bits()
    original = ddm()
    expected = [original.update(b) for b in bits]
    alarms = [i for i, c in enumerate(expected) if c is not None]
    at = alarms[0] + 1 if cut is None else cut  # None: its drift flag resets it next update
    before = ddm()
    for b in bits[:at]:
        before.update(b)
    copy, note = restore(json.loads(json.dumps(snapshot(before))), ddm())
    assert note is None and copy.detector._p.n == at
    assert [copy.update(b) for b in bits[at:]] == expected[at:]
    assert alarms[0] >= at or cut is None  # the alarm is after the cut: the state carried it


@pytest.mark.parametrize(
    "damage",
    [
        {"mean": 1.5},
        {"n": -1.0},
        {"p_min": 0.1, "s_min": None},
        {"p_min": "low"},
        {"p_min": math.inf},
    ],
    ids=str,
)
def test_a_damaged_ddm_snapshot_gives_a_fresh_ddm_and_the_reason(damage: dict[str, object]) -> None:
    d = ddm()
    for b in error_bits()[:1_000]:
        d.update(b)
    data = snapshot(d)
    data["ddm"].update(damage)
    restored, note = restore(data, ddm())
    assert note is not None and note.startswith("damaged detector snapshot")
    assert restored.seen == 0 and restored.detector._p.n == 0


def test_an_adwin_snapshot_kept_under_other_parameters_is_refused() -> None:
    # ADWIN's Rust state carries its delta: loading it would bring back the old one.
    d = StandardizedChange("adwin", adwin(AD), mean=0.0, std=1.0)
    for x in np.random.default_rng(3).standard_normal(500).tolist():
        d.update(x)
    looser = StandardizedChange("adwin", adwin({**AD, "delta": 1e-3}), mean=0.0, std=1.0)
    restored, note = restore(json.loads(json.dumps(snapshot(d))), looser)
    assert note == "ADWIN snapshot was kept under other parameters" and restored.seen == 0
    same = StandardizedChange("adwin", adwin(AD), mean=0.0, std=1.0)
    assert restore(json.loads(json.dumps(snapshot(d))), same)[1] is None


@pytest.mark.parametrize("block", [1, 4, 16])
def test_a_column_of_values_alarms_where_the_values_one_by_one_alarm(block: int) -> None:
    """update_many (scores by np.interp, block means by numpy, detectors once per block) takes
    the path of update, value for value, whatever the columns' cuts."""
    cal = {
        "page_hinkley": {"delta": 0.05, "threshold": 25.0, "alpha": 1.0, "min_instances": 30.0},
        "adwin": {"delta": 0.002, "clock": 32.0},
        "blocks": {"size": float(block), "mean": 0.0, "std": 1.0 / math.sqrt(block), "shift": 0.5},
    }
    scores = ScoreMap.from_sample(np.random.default_rng(1).normal(10.0, 2.0, 5_000))
    rng = np.random.default_rng(2)
    xs = np.concatenate(
        [rng.normal(10, 2, 3_000), rng.normal(11.5, 2, 3_000), rng.normal(8, 3, 3_000)]
    )
    one = FeatureChange.of(cal, scores)
    want = [(i, c.detector, c.seen) for i, x in enumerate(xs) if (c := one.update(float(x)))]
    many = FeatureChange.of(cal, scores)
    got: list[tuple[int, str, int]] = []
    cuts = sorted(random.Random(block).sample(range(1, len(xs)), 60))
    for lo, hi in zip([0, *cuts], [*cuts, len(xs)], strict=True):
        got += [(lo + i, c.detector, c.seen) for i, c in many.update_many(xs[lo:hi])]
    assert len(want) >= 2 and got == want
    assert (many.seen, many.filled) == (one.seen, one.filled)
    assert (many.recent, many.total) == (one.recent, one.total)  # to the bit
