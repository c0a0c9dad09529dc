"""Prediction drift (issue 5): the model's output distribution moves while every input stays
the same (a bad deploy, a broken calibration). It is caught on the prediction, named as
prediction drift, and no input feature raises anything."""

from __future__ import annotations

import pytest

from detectors.baseline.schema import PREDICTION
from tests.scenarios.scoring import Scoreboard

EVENTS, AT = 20_000, 10_000


@pytest.mark.parametrize("seed", (11, 12, 13))
def test_a_shifted_model_output_is_prediction_drift_with_the_inputs_quiet(
    scoreboard: Scoreboard, seed: int
) -> None:
    run = scoreboard.run("prediction_shift", seed, events=EVENTS, at=AT)
    assert run.feature == PREDICTION
    assert run.caught, run.describe(list(run.anomalies))
    assert all(a.message.startswith("prediction drift: ") for a in run.detections)
    assert not run.false_alarms, run.describe(run.false_alarms)
