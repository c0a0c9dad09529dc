"""detectors.baseline.infer: a training profile in two streaming passes; types from the JSON kinds
seen, bins from pass one's quantiles, exact counts from pass two."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from detectors.baseline.calibrate import CalibrationOptions
from detectors.baseline.infer import BaselineBuilder, BaselineOptions, build_profile, infer_type
from detectors.baseline.profile import ColumnSketch, Profile
from detectors.privacy import keyed_hash

FAST = CalibrationOptions(streams=16, stream_length=500, adwin_events=2_000)


def sketch(values: list[object]) -> ColumnSketch:
    s = ColumnSketch(seed=0)
    for v in values:
        s.update(v)
    return s


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, 3], "int"),
        ([1, 2.5, 3], "float"),
        ([1, 2, None], "int"),
        ([True, False, None], "bool"),
        (["a", "b"], "categorical"),
        ([True, 1, 2], "categorical"),  # a third of the values are not numbers
        ([*range(99), "n/a"], "int"),  # a stray string in 100 does not make it text
        ([*range(90), *["n/a"] * 10], "categorical"),
        ([None, None], "float"),  # nothing seen: a numeric default
        ([], "float"),
    ],
)
def test_the_type_is_the_json_kind_most_values_had(values: list[object], expected: str) -> None:
    assert infer_type(sketch(values)) == expected


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"bins": 1}, "bins"),
        ({"max_vocabulary": 0}, "max_vocabulary"),
        ({"range_tolerance": -0.1}, "range_tolerance"),
        ({"sensitive": frozenset({"email"})}, "privacy_key"),
    ],
)
def test_options_reject_bad_values_naming_the_parameter(
    kwargs: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(ValueError, match=parameter):
        BaselineOptions(**kwargs)


def rows(n: int = 500) -> Iterator[dict[str, Any]]:
    rng = random.Random(1)
    for i in range(n):
        row: dict[str, Any] = {
            "amount": rng.expovariate(0.1),
            "email": f"user{i % 7}@example.com",
            "constant": 4.0,
            "row_id": i,
        }
        if i >= 100:
            row["late"] = rng.random()  # a column that first appears in row 101
        yield row


def profile(n: int = 500, **options: Any) -> Profile:
    opts = BaselineOptions(calibration=FAST, **options)
    return build_profile(rows(n), rows(n), opts, "rows")


@pytest.fixture(scope="module")
def sensitive_profile() -> Profile:
    return profile(sensitive=frozenset({"email"}), privacy_key=b"key", ignore=frozenset({"row_id"}))


def test_a_column_that_appears_late_was_missing_in_the_rows_before(
    sensitive_profile: Profile,
) -> None:
    late = sensitive_profile.features["late"]
    assert (late.count, late.missing) == (500, 100)
    assert sensitive_profile.rows == 500


def test_ignored_columns_are_not_profiled(sensitive_profile: Profile) -> None:
    assert set(sensitive_profile.features) == {"amount", "email", "constant", "late"}


def test_bin_frequencies_are_exact_counts_over_the_quantile_edges(
    sensitive_profile: Profile,
) -> None:
    amount = sensitive_profile.features["amount"].numeric
    assert amount is not None
    assert len(amount.frequencies) == len(amount.edges) + 1
    assert sum(amount.frequencies) == pytest.approx(1.0)
    assert amount.frequencies[0] == 0.0  # nothing below the minimum
    assert amount.frequencies[-1] == 0.0  # nor above the maximum
    assert len(amount.edges) == 17  # the minimum, 15 inner quantiles, just above the maximum
    assert max(amount.frequencies) < 0.15  # roughly equal mass per bin


def test_sensitive_values_are_hashed_before_they_are_profiled(sensitive_profile: Profile) -> None:
    email = sensitive_profile.features["email"].categorical
    assert email is not None
    assert set(email.frequencies) == {keyed_hash(b"key", f"user{i}@example.com") for i in range(7)}
    assert "example.com" not in json.dumps(sensitive_profile.to_json())


def test_numeric_columns_with_spread_are_calibrated_and_constant_ones_are_not(
    sensitive_profile: Profile,
) -> None:
    calibration = sensitive_profile.features["amount"].calibration
    assert set(calibration) == {"page_hinkley", "adwin", "blocks"}
    assert sensitive_profile.features["constant"].calibration == {}
    assert sensitive_profile.features["email"].calibration == {}


def test_too_few_values_to_calibrate_leave_a_column_uncalibrated() -> None:
    assert profile(99).features["amount"].calibration == {}
    assert profile(100).features["amount"].calibration != {}


def test_the_same_training_rows_give_the_same_profile_every_build() -> None:
    from streams.simulation.traffic import training_rows

    def build() -> dict[str, object]:
        rows = list(training_rows(3_000, seed=4))
        return build_profile(rows, rows, BaselineOptions(calibration=FAST), "t").to_json()

    assert build() == build()


def _ar_rows(n: int, phi: float, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    x, rows = 0.0, []
    for i in range(n):
        x = phi * x + math.sqrt(1 - phi * phi) * float(rng.standard_normal())
        rows.append({"ts": 1_795_860_000 + 60 * i, "x": x, "c": "a" if x > 0 else "b"})
    return rows


def test_the_time_column_orders_the_rows_and_is_not_profiled() -> None:
    rows = _ar_rows(4_000, 0.95, seed=1)
    shuffled = list(rows)
    random.Random(2).shuffle(shuffled)
    opts = BaselineOptions(calibration=FAST)
    in_order = build_profile(rows, rows, opts, "t")
    out_of_order = build_profile(shuffled, shuffled, opts, "t")
    assert "ts" not in in_order.features
    assert in_order.order == "time (ts)"
    assert out_of_order.features["x"].null_levels == in_order.features["x"].null_levels
    assert out_of_order.features["c"].null_levels == in_order.features["c"].null_levels


def test_autocorrelated_training_data_learns_its_own_chance_levels() -> None:
    rows = _ar_rows(4_000, 0.95, seed=3)
    profile = build_profile(rows, rows, BaselineOptions(calibration=FAST), "t")
    levels = profile.features["x"].null_levels
    assert max(levels["skew"]) > 5  # far from independent
    assert profile.features["x"].calibration["blocks"]["size"] > 1  # detectors see block means
    iid = [
        {**r, "x": float(v)}
        for r, v in zip(rows, np.random.default_rng(4).standard_normal(4_000), strict=True)
    ]
    calm = build_profile(iid, iid, BaselineOptions(calibration=FAST), "t")
    assert max(calm.features["x"].null_levels["skew"]) < 1.6
    assert calm.features["x"].calibration["blocks"]["size"] == 1


def test_the_prediction_column_is_profiled_as_prediction_whatever_the_training_calls_it() -> None:
    # One name after training: the profile, schema.yaml and serving records all say
    # "prediction", so a --prediction-column baseline loads wherever a baseline is read.
    scored = [{"amount": float(i % 17), "y_pred_proba": (i % 10) / 10} for i in range(300)]
    options = BaselineOptions(calibration=FAST, prediction_column="y_pred_proba", time_column=None)
    profiled = build_profile(scored, scored, options, "t")
    assert set(profiled.features) == {"amount", "prediction"}
    assert profiled.features["prediction"].type == "float"


def test_a_prediction_column_beside_a_column_named_prediction_is_refused() -> None:
    both = [{"prediction": 1.0, "y_pred_proba": 0.5}]
    options = BaselineOptions(calibration=FAST, prediction_column="y_pred_proba")
    with pytest.raises(ValueError, match="'prediction' column and the prediction column"):
        build_profile(both, both, options, "t")


def test_pass_two_names_the_number_columns_a_row_holds_text_in() -> None:
    numbers = [{"amount": float(i), "clicks": i} for i in range(200)]
    builder = BaselineBuilder(BaselineOptions(calibration=FAST, time_column=None))
    for row in [*numbers, {"amount": "n/a", "clicks": "x"}]:
        builder.first_pass(row)
    builder.fix_bins()
    assert [builder.second_pass(row) for row in numbers[:2]] == [[], []]
    assert builder.second_pass({"amount": "n/a", "clicks": True}) == ["amount", "clicks"]
