"""Baselines built in-process (no files): the synthetic CTR traffic of
``streams.simulation.traffic`` profiled with ``detectors.baseline.infer.build_profile`` and joined
with its inferred schema."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from detectors.baseline.calibrate import CalibrationOptions, calibrate
from detectors.baseline.infer import BaselineOptions, build_profile
from detectors.baseline.infer_schema import infer_schema
from detectors.baseline.reference import Baseline
from detectors.baseline.schema import Schema
from streams.simulation.traffic import training_rows

PRIVACY_KEY = b"unit-test-key"
# Smaller replays than the defaults: the same method, a little noisier, a lot faster.
FAST_CALIBRATION = CalibrationOptions(streams=64, stream_length=5_000, adwin_events=20_000)


def traffic_baseline(
    *,
    rows: int = 4_000,
    sensitive_in_profile: frozenset[str] = frozenset(),
    schema_edits: dict[str, dict[str, Any]] | None = None,
    model: str | None = "ctr",
) -> Baseline:
    """A baseline of the CTR model from ``rows`` training rows; ``schema_edits`` are merged into
    the inferred spec of each named feature, as a person editing schema.yaml would."""
    options = BaselineOptions(
        calibration=FAST_CALIBRATION,
        sensitive=sensitive_in_profile,
        privacy_key=PRIVACY_KEY,
    )
    profile = build_profile(training_rows(rows), training_rows(rows), options, "training")
    doc, _ = infer_schema(
        profile, model=model, tolerance=options.range_tolerance, sensitive=options.sensitive
    )
    for name, edit in (schema_edits or {}).items():
        doc["features"][name].update(edit)
    return Baseline.of(Schema.model_validate(doc), profile, PRIVACY_KEY)


@pytest.fixture(scope="session")
def ctr_baseline() -> Baseline:
    return traffic_baseline()


@pytest.fixture(scope="session")
def standard_normal_calibration() -> dict[str, dict[str, float]]:
    """Detectors calibrated with the default options on 20,000 seeded N(0, 1) training values."""
    values = np.random.default_rng(20261128).standard_normal(20_000)
    return calibrate(values, CalibrationOptions())
