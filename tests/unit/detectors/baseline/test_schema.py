"""detectors.baseline.schema: the reference schema, its threshold ladder (default -> per type -> per
feature), and errors that name the key at fault."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from detectors.baseline.schema import PREDICTION, FeatureSpec, Schema, Thresholds, schema_errors

LADDER = Schema.model_validate(
    {
        "features": {
            "price": {"type": "float", "thresholds": {"jensen_shannon": 0.2}},
            "age": {"type": "int"},
            "score": {"type": "float"},
            "country": {"type": "categorical", "thresholds": {"violation_rate": 0.5}},
            "device": {"type": "categorical"},
        },
        "prediction": {"type": "float"},
        "thresholds": {
            "default": {"jensen_shannon": 0.02, "l_infinity": 0.1},
            "by_type": {
                "float": {"jensen_shannon": 0.05, "false_alarm_rate": 1e-4},
                "categorical": {"l_infinity": 0.3},
            },
        },
    }
)


def test_a_feature_without_overrides_takes_the_defaults() -> None:
    t = LADDER.thresholds_for("age")
    assert (t.jensen_shannon, t.l_infinity) == (0.02, 0.1)
    assert t.false_alarm_rate == Thresholds().false_alarm_rate  # built-in default kept


def test_a_per_type_override_beats_the_default_for_that_type_only() -> None:
    assert LADDER.thresholds_for("score").jensen_shannon == 0.05
    assert LADDER.thresholds_for("score").false_alarm_rate == 1e-4
    assert LADDER.thresholds_for("device").l_infinity == 0.3
    assert LADDER.thresholds_for("age").jensen_shannon == 0.02


def test_a_per_feature_override_beats_its_type_and_keeps_the_rest_of_the_ladder() -> None:
    price = LADDER.thresholds_for("price")
    assert price.jensen_shannon == 0.2  # feature over by_type 0.05 over default 0.02
    assert price.false_alarm_rate == 1e-4  # by_type, not overridden by the feature
    assert price.l_infinity == 0.1  # default
    country = LADDER.thresholds_for("country")
    assert (country.violation_rate, country.l_infinity) == (0.5, 0.3)


def test_the_prediction_has_thresholds_of_its_type() -> None:
    assert LADDER.thresholds_for(PREDICTION).jensen_shannon == 0.05


def test_the_prediction_is_monitored_after_the_features() -> None:
    assert LADDER.monitored() == ["price", "age", "score", "country", "device", PREDICTION]
    assert LADDER.spec(PREDICTION).type == "float"
    no_prediction = Schema.model_validate({"features": {"x": {"type": "int"}}})
    assert no_prediction.monitored() == ["x"]


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        (
            {"features": {"price": {"type": "float", "range": {"min": 5, "max": 1}}}},
            "features.price.range",
        ),
        ({"features": {"price": {"type": "float", "domain": ["a"]}}}, "features.price"),
        (
            {"features": {"country": {"type": "categorical", "range": {"min": 0}}}},
            "features.country",
        ),
        ({"features": {"price": {"type": "decimal"}}}, "features.price.type"),
        ({"features": {"price": {"type": "float", "colour": "red"}}}, "features.price.colour"),
        (
            {"features": {"price": {"type": "float", "required": "maybe"}}},
            "features.price.required",
        ),
        ({"features": {"price": {}}}, "features.price.type"),
        (
            {"features": {}, "thresholds": {"default": {"l_infinity": 2}}},
            "thresholds.default.l_infinity",
        ),
        (
            {"features": {}, "thresholds": {"by_type": {"float": {"jensen_shannon": 0}}}},
            "thresholds.by_type.float.jensen_shannon",
        ),
        (
            {"features": {"p": {"type": "float", "thresholds": {"false_alarm_rate": 0.9}}}},
            "features.p.thresholds.false_alarm_rate",
        ),
        ({"version": 2, "features": {}}, "version"),
        ({}, "features"),
    ],
)
def test_schema_errors_name_the_key_at_fault(doc: dict[str, object], key: str) -> None:
    errors = schema_errors(doc)
    assert errors
    assert any(e.startswith(f"{key}: ") for e in errors), errors


def test_schema_errors_report_every_problem_at_once() -> None:
    doc = {
        "features": {
            "a": {"type": "float", "range": {"min": 2, "max": 1}},
            "b": {"type": "nope"},
        },
        "thresholds": {"default": {"l_infinity": -1}},
    }
    keys = {e.split(": ")[0] for e in schema_errors(doc)}
    assert {"features.a.range", "features.b.type", "thresholds.default.l_infinity"} <= keys


def test_a_valid_schema_has_no_errors() -> None:
    assert schema_errors(LADDER.model_dump()) == []


def test_a_document_that_is_not_a_mapping_is_an_error_at_the_root() -> None:
    assert schema_errors(["features"])[0].startswith("<root>: ")


def test_a_domain_is_only_for_categorical_features() -> None:
    with pytest.raises(ValidationError, match="domain is for categorical features"):
        FeatureSpec(type="float", domain=["a", "b"])
    with pytest.raises(ValidationError, match="domain"):
        FeatureSpec(type="int", domain=[])
    assert FeatureSpec(type="categorical", domain=["a"]).domain == ["a"]


def test_a_range_is_only_for_numeric_features_and_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="range is for int and float"):
        FeatureSpec(type="bool", range={"min": 0})
    with pytest.raises(ValidationError, match=r"range.min \(3.0\) is above range.max \(1.0\)"):
        FeatureSpec(type="int", range={"min": 3, "max": 1})
    assert FeatureSpec(type="int", range={"min": 1, "max": 1}).range is not None


def test_specs_are_frozen_values() -> None:
    spec = FeatureSpec(type="float")
    with pytest.raises(ValidationError):
        spec.type = "int"  # type: ignore[misc]
    assert spec == FeatureSpec(type="float")
    assert spec.numeric and not FeatureSpec(type="bool").numeric
