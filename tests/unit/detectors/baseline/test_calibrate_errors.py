"""detectors.baseline.calibrate_errors: the vectorized DDM replay is river's DDM, and calibrated
detectors stay quiet on stationary error streams while catching a real rise."""

from __future__ import annotations

import numpy as np
import pytest
from river.drift.binary import DDM

from detectors.baseline.calibrate_errors import build, calibrate_errors, ddm_maxima
from detectors.labels.performance import ErrorDetectors


def fires(bits: list[float], warm_start: int, threshold: float) -> bool:
    ddm = DDM(warm_start=warm_start, drift_threshold=threshold)
    for x in bits:
        ddm.update(x)
        if ddm.drift_detected:
            return True
    return False


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_ddm_maxima_is_the_threshold_river_s_ddm_fires_below(p: float) -> None:
    rng = np.random.default_rng(5)
    stream = (rng.random((1, 3_000)) < p).astype(float)
    peak = float(ddm_maxima(stream, 100)[0])
    bits = stream[0].tolist()
    assert fires(bits, 100, peak * 0.999) and not fires(bits, 100, peak * 1.001)


def test_calibration_is_cached_and_rejects_a_nonsense_budget() -> None:
    assert calibrate_errors(1e-9) is calibrate_errors(1e-9)
    with pytest.raises(ValueError, match="budget"):
        calibrate_errors(0.5)
    with pytest.raises(ValueError, match="unknown error detector"):
        build("kswin", {})


def test_calibrated_ddm_is_far_stricter_than_river_s_default_of_3() -> None:
    cal = calibrate_errors(1e-9)
    assert cal["ddm"]["drift_threshold"] > 5
    assert 0 < cal["adwin"]["delta"] < 1e-3


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_calibrated_detectors_stay_quiet_on_100_000_stationary_labels(p: float) -> None:
    detectors = ErrorDetectors(calibrate_errors(1e-9))
    rng = np.random.default_rng(int(p * 100))
    alarms = [detectors.update(bool(e)) for e in (rng.random(100_000) < p)]
    assert not any(alarms)


def test_calibrated_detectors_catch_the_error_rate_rising_from_25_to_40_percent() -> None:
    detectors = ErrorDetectors(calibrate_errors(1e-9))
    rng = np.random.default_rng(2)
    stream = np.concatenate([rng.random(20_000) < 0.25, rng.random(5_000) < 0.40])
    first = next(i for i, e in enumerate(stream) if detectors.update(bool(e)))
    assert 20_000 <= first < 22_000
