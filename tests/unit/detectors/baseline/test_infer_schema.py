"""detectors.baseline.infer_schema: a schema inferred from a training profile, and a person's edits
to it kept when the baseline is built again."""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Iterator
from typing import Any

import pytest

from detectors.baseline.calibrate import CalibrationOptions
from detectors.baseline.infer import BaselineOptions, build_profile
from detectors.baseline.infer_schema import infer_schema, merge_edits
from detectors.baseline.profile import Profile
from detectors.baseline.schema import Schema, schema_errors

# --- merge_edits ---------------------------------------------------------------------------

PREVIOUS: dict[str, Any] = {
    "version": 1,
    "features": {
        "price": {"type": "float", "required": True, "range": {"min": 0.0, "max": 100.0}},
        "country": {"type": "categorical", "domain": ["DE", "US"], "sensitive": False},
    },
}
INFERRED: dict[str, Any] = {
    "version": 1,
    "features": {
        "price": {"type": "float", "required": True, "range": {"min": 0.0, "max": 140.0}},
        "country": {"type": "categorical", "domain": ["DE", "FR", "US"], "sensitive": False},
    },
}


def edited(edit: Any) -> dict[str, Any]:
    """The previous inference as a person left it after ``edit``."""
    doc = copy.deepcopy(PREVIOUS)
    edit(doc)
    return doc


def test_an_untouched_key_takes_the_new_inference() -> None:
    assert merge_edits(INFERRED, PREVIOUS, copy.deepcopy(PREVIOUS)) == INFERRED


def test_a_value_a_person_edited_is_kept_over_the_new_inference() -> None:
    current = edited(lambda d: d["features"]["price"]["range"].update(max=500.0))
    merged = merge_edits(INFERRED, PREVIOUS, current)
    assert merged["features"]["price"]["range"] == {"min": 0.0, "max": 500.0}
    assert merged["features"]["country"]["domain"] == ["DE", "FR", "US"]  # untouched: new


def test_an_edited_list_is_kept_whole() -> None:
    current = edited(lambda d: d["features"]["country"].update(domain=["DE", "US", "XX"]))
    merged = merge_edits(INFERRED, PREVIOUS, current)
    assert merged["features"]["country"]["domain"] == ["DE", "US", "XX"]


def test_keys_a_person_added_are_kept() -> None:
    def add(d: dict[str, Any]) -> None:
        d["features"]["price"]["thresholds"] = {"jensen_shannon": 0.2}
        d["features"]["price"]["missing_values"] = [-1]
        d["allow_new_features"] = True

    merged = merge_edits(INFERRED, PREVIOUS, edited(add))
    assert merged["features"]["price"]["thresholds"] == {"jensen_shannon": 0.2}
    assert merged["features"]["price"]["missing_values"] == [-1]
    assert merged["allow_new_features"] is True
    assert merged["features"]["price"]["range"]["max"] == 140.0


def test_keys_a_person_deleted_stay_deleted() -> None:
    def delete(d: dict[str, Any]) -> None:
        del d["features"]["price"]["range"]
        del d["features"]["country"]

    merged = merge_edits(INFERRED, PREVIOUS, edited(delete))
    assert "range" not in merged["features"]["price"]
    assert "country" not in merged["features"]
    assert merged["features"]["price"]["required"] is True


def test_a_key_new_to_this_inference_is_added() -> None:
    inferred = copy.deepcopy(INFERRED)
    inferred["features"]["age"] = {"type": "int", "required": True}
    merged = merge_edits(inferred, PREVIOUS, copy.deepcopy(PREVIOUS))
    assert merged["features"]["age"] == {"type": "int", "required": True}


def test_without_a_previous_inference_every_value_in_the_file_counts_as_edited() -> None:
    current = edited(lambda d: d["features"]["price"]["range"].update(max=7.0))
    merged = merge_edits(INFERRED, None, current)
    assert merged["features"]["price"]["range"]["max"] == 7.0
    assert merged["features"]["country"]["domain"] == ["DE", "US"]


def test_an_untouched_key_that_inference_no_longer_produces_is_dropped() -> None:
    # "Elsewhere take the new inference": a feature gone from the training data, or a float
    # column that became categorical, must not keep last time's inferred keys.
    inferred = {
        "version": 1,
        "features": {"price": {"type": "categorical", "domain": ["cheap", "dear"]}},
    }
    merged = merge_edits(inferred, PREVIOUS, copy.deepcopy(PREVIOUS))
    assert merged == inferred
    assert schema_errors(merged) == []


def test_a_person_can_null_an_inferred_value() -> None:
    current = edited(lambda d: d["features"]["price"].update(range=None))
    assert merge_edits(INFERRED, PREVIOUS, current)["features"]["price"]["range"] is None


# --- infer_schema ----------------------------------------------------------------------------

ROWS = 600
OPTIONS = BaselineOptions(
    max_vocabulary=10,
    calibration=CalibrationOptions(streams=16, stream_length=500, adwin_events=2_000),
)


def training(n: int = ROWS) -> Iterator[dict[str, Any]]:
    rng = random.Random(5)
    for i in range(n):
        row: dict[str, Any] = {
            "clicks": rng.randint(0, 40),
            "temperature": rng.gauss(5, 10),
            "amount": None if i % 7 == 0 else rng.uniform(0, 100),
            "device": rng.choice(["ios", "android", "web"]),
            "user": f"user-{i % 80}",
            "returning": rng.random() < 0.5,
            "sensor": math.nan if i % 50 == 0 else rng.random(),
            "prediction": rng.random(),
        }
        if i % 10:
            row["coupon"] = "yes"  # absent from every tenth row
        yield row


@pytest.fixture(scope="module")
def profile() -> Profile:
    return build_profile(training(), training(), OPTIONS, "training.jsonl")


@pytest.fixture(scope="module")
def inferred(profile: Profile) -> tuple[dict[str, Any], dict[str, str]]:
    return infer_schema(profile, model="ctr", tolerance=0.25, sensitive=frozenset({"user"}))


def test_the_inferred_document_is_a_valid_schema(inferred: tuple[dict[str, Any], Any]) -> None:
    doc, _ = inferred
    assert schema_errors(doc) == []
    assert Schema.model_validate(doc).model == "ctr"


def test_types_are_inferred_from_the_json_kinds_seen(inferred: tuple[dict[str, Any], Any]) -> None:
    features = inferred[0]["features"]
    assert {name: spec["type"] for name, spec in features.items()} == {
        "clicks": "int",
        "temperature": "float",
        "amount": "float",
        "device": "categorical",
        "user": "categorical",
        "returning": "bool",
        "sensor": "float",
        "coupon": "categorical",
    }


def test_the_prediction_column_is_the_prediction_not_a_feature(
    inferred: tuple[dict[str, Any], Any],
) -> None:
    doc, _ = inferred
    assert "prediction" not in doc["features"]
    assert doc["prediction"]["type"] == "float"


def test_a_feature_present_in_every_row_is_required_and_others_are_optional(
    inferred: tuple[dict[str, Any], Any],
) -> None:
    features = inferred[0]["features"]
    required = {name for name, spec in features.items() if spec["required"]}
    assert required == {"clicks", "temperature", "device", "user", "returning", "sensor"}
    assert not features["amount"]["required"]  # null in some rows
    assert not features["coupon"]["required"]  # absent from some rows


def test_few_categories_give_a_closed_domain_of_all_of_them(
    inferred: tuple[dict[str, Any], Any],
) -> None:
    features = inferred[0]["features"]
    assert features["device"]["domain"] == ["android", "ios", "web"]
    assert features["coupon"]["domain"] == ["yes"]


def test_more_categories_than_max_vocabulary_give_an_open_domain(
    inferred: tuple[dict[str, Any], Any],
) -> None:
    assert inferred[0]["features"]["user"]["domain"] is None


def test_a_feature_never_negative_in_training_gets_a_range_floor_of_zero(
    inferred: tuple[dict[str, Any], Any],
) -> None:
    features = inferred[0]["features"]
    # p0.1 - 25% of the spread would be well below zero; training never went there
    assert features["amount"]["range"]["min"] == 0.0
    assert features["clicks"]["range"]["min"] == 0.0
    assert features["amount"]["range"]["max"] > 100.0


def test_a_feature_negative_in_training_keeps_a_negative_range_floor(
    inferred: tuple[dict[str, Any], Any],
) -> None:
    temperature = inferred[0]["features"]["temperature"]["range"]
    assert temperature["min"] < -20.0 < 30.0 < temperature["max"]


def test_an_int_range_has_whole_bounds(inferred: tuple[dict[str, Any], Any]) -> None:
    clicks = inferred[0]["features"]["clicks"]["range"]
    assert clicks["min"].is_integer() and clicks["max"].is_integer()
    assert clicks["max"] >= 40


def test_nan_is_allowed_only_where_training_had_nan(inferred: tuple[dict[str, Any], Any]) -> None:
    features = inferred[0]["features"]
    allow_nan = {n for n, s in features.items() if s.get("allow_nan")}
    assert allow_nan == {"sensor"}
    assert not any(s.get("allow_inf") for s in features.values())


def test_only_the_named_features_are_marked_sensitive(inferred: tuple[dict[str, Any], Any]) -> None:
    features = inferred[0]["features"]
    assert {n for n, s in features.items() if s["sensitive"]} == {"user"}


def test_every_feature_has_a_note_explaining_the_choices(
    inferred: tuple[dict[str, Any], dict[str, str]],
) -> None:
    doc, notes = inferred
    assert set(notes) == {*doc["features"], "prediction"}
    assert "domain closed: all 3 training values" in notes["device"]
    assert "domain open" in notes["user"]
    assert "present in 85.7% of 600 training rows" in notes["amount"]
    assert "page_hinkley threshold" in notes["temperature"]
