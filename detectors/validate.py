"""Per-record validation against the schema, in TFDV's anomaly vocabulary where it has a name.

Validation never raises, whatever JSON arrives: every problem becomes a Violation. Details name
types, never values, because a value may be sensitive.

>>> from detectors.baseline.schema import FeatureSpec
>>> check_value("age", FeatureSpec(type="int", range={"min": 0, "max": 120}), "34").violation
Violation(feature='age', code='INT_TYPE_NOT_INT_STRING', detail='string where int expected')
>>> check_value("age", FeatureSpec(type="int"), 34.0)
Checked(value=34.0, missing=False, violation=None)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detectors.baseline.schema import FeatureSpec, Schema
from detectors.records import bounded_text, type_name

# Code -> (anomaly kind, what it means). Codes without a TFDV name are ours
# (INT_TYPE_HAS_FLOAT, UNEXPECTED_VALUE_TYPE).
CODES = {
    "SCHEMA_MISSING_COLUMN": ("schema_skew", "a required feature is absent"),
    "SCHEMA_NEW_COLUMN": ("schema_skew", "a feature the schema does not know"),
    "INT_TYPE_HAS_FLOAT": ("schema_skew", "floats with a fractional part where int expected"),
    "INT_TYPE_NOT_INT_STRING": ("schema_skew", "strings where int expected"),
    "FLOAT_TYPE_STRING_NOT_FLOAT": ("schema_skew", "strings where float expected"),
    "STRING_TYPE_NOW_INT": ("schema_skew", "integers where a category string expected"),
    "STRING_TYPE_NOW_FLOAT": ("schema_skew", "floats where a category string expected"),
    "BOOL_TYPE_UNEXPECTED_STRING": ("schema_skew", "strings where bool expected"),
    "BOOL_TYPE_UNEXPECTED_FLOAT": ("schema_skew", "floats where bool expected"),
    "BOOL_TYPE_BIG_INT": ("schema_skew", "integers above 1 where bool expected"),
    "BOOL_TYPE_SMALL_INT": ("schema_skew", "integers below 0 where bool expected"),
    "UNEXPECTED_VALUE_TYPE": ("schema_skew", "lists, objects or booleans where a scalar expected"),
    "ENUM_TYPE_UNEXPECTED_STRING_VALUES": ("schema_skew", "categories outside the domain"),
    "INT_TYPE_BIG_INT": ("data_quality", "values above range.max"),
    "INT_TYPE_SMALL_INT": ("data_quality", "values below range.min"),
    "FLOAT_TYPE_BIG_FLOAT": ("data_quality", "values above range.max"),
    "FLOAT_TYPE_SMALL_FLOAT": ("data_quality", "values below range.min"),
    "FLOAT_TYPE_HAS_NAN": ("data_quality", "NaN values"),
    "FLOAT_TYPE_HAS_INF": ("data_quality", "infinite values"),
}


# Values beyond the schema's range: training has some (its tails), so their rate is judged
# against how the training's own tails cluster, not as a break at the first few.
RANGE_CODES = frozenset(
    {"INT_TYPE_BIG_INT", "INT_TYPE_SMALL_INT", "FLOAT_TYPE_BIG_FLOAT", "FLOAT_TYPE_SMALL_FLOAT"}
)


@dataclass(frozen=True, slots=True)
class Violation:
    feature: str
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class Checked:
    """A value ready for statistics (float or category text), or None when it cannot enter
    them; ``missing`` and ``violation`` say why."""

    value: float | str | None
    missing: bool = False
    violation: Violation | None = None


def as_float(value: int | float) -> float:
    """The value as a float; an integer too large for one becomes infinity (JSON allows it)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _bad(name: str, code: str, detail: str) -> Checked:
    return Checked(None, False, Violation(name, code, detail))


def _is_missing(spec: FeatureSpec, value: object) -> bool:
    if value is None:
        return True
    if not spec.missing_values or isinstance(value, bool | list | dict):
        return False
    return value in spec.missing_values


def _check_range(name: str, spec: FeatureSpec, x: float) -> Checked:
    big, small = (
        ("INT_TYPE_BIG_INT", "INT_TYPE_SMALL_INT")
        if spec.type == "int"
        else ("FLOAT_TYPE_BIG_FLOAT", "FLOAT_TYPE_SMALL_FLOAT")
    )
    if spec.range is not None:
        if spec.range.max is not None and x > spec.range.max:
            return Checked(x, False, Violation(name, big, f"above range.max {spec.range.max:g}"))
        if spec.range.min is not None and x < spec.range.min:
            return Checked(x, False, Violation(name, small, f"below range.min {spec.range.min:g}"))
    return Checked(x)


def _check_number(name: str, spec: FeatureSpec, value: object) -> Checked:
    if isinstance(value, str):
        code = "INT_TYPE_NOT_INT_STRING" if spec.type == "int" else "FLOAT_TYPE_STRING_NOT_FLOAT"
        return _bad(name, code, f"string where {spec.type} expected")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _bad(name, "UNEXPECTED_VALUE_TYPE", f"{type_name(value)} where {spec.type} expected")
    x = as_float(value)
    if math.isnan(x):
        return Checked(
            None,
            False,
            None
            if spec.allow_nan
            else Violation(name, "FLOAT_TYPE_HAS_NAN", "NaN where a number was expected"),
        )
    if math.isinf(x):
        return Checked(
            None,
            False,
            None
            if spec.allow_inf
            else Violation(
                name, "FLOAT_TYPE_HAS_INF", "infinity where a finite number was expected"
            ),
        )
    if spec.type == "int" and not x.is_integer():
        return _bad(name, "INT_TYPE_HAS_FLOAT", "float with a fractional part where int expected")
    return _check_range(name, spec, x)


def _check_category(name: str, spec: FeatureSpec, value: object, text: str | None) -> Checked:
    if text is None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _bad(name, "UNEXPECTED_VALUE_TYPE", f"{type_name(value)} where string expected")
        code = "STRING_TYPE_NOW_INT" if isinstance(value, int) else "STRING_TYPE_NOW_FLOAT"
        return _bad(name, code, f"{type_name(value)} where string expected")
    text = bounded_text(text)
    if spec.domain is not None and text not in spec.domain:
        return Checked(
            text,
            False,
            Violation(
                name, "ENUM_TYPE_UNEXPECTED_STRING_VALUES", "value outside the schema's domain"
            ),
        )
    return Checked(text)


def _check_bool(name: str, value: object) -> Checked:
    if isinstance(value, bool):
        return Checked("true" if value else "false")
    if isinstance(value, int):
        if value in (0, 1):
            return Checked("true" if value else "false")
        code = "BOOL_TYPE_BIG_INT" if value > 1 else "BOOL_TYPE_SMALL_INT"
        return _bad(name, code, "integer other than 0 or 1 where bool expected")
    if isinstance(value, str):
        return _bad(name, "BOOL_TYPE_UNEXPECTED_STRING", "string where bool expected")
    if isinstance(value, float):
        return _bad(name, "BOOL_TYPE_UNEXPECTED_FLOAT", "float where bool expected")
    return _bad(name, "UNEXPECTED_VALUE_TYPE", f"{type_name(value)} where bool expected")


def check_value(name: str, spec: FeatureSpec, value: object, text: str | None = None) -> Checked:
    """Check one value. ``text`` is the category string to use for a categorical value (the
    keyed hash for a sensitive feature); by default the value itself when it is a string."""
    if _is_missing(spec, value):
        return Checked(None, True)
    if spec.numeric:
        return _check_number(name, spec, value)
    if spec.type == "bool":
        return _check_bool(name, value)
    if text is None and isinstance(value, str):
        text = value
    return _check_category(name, spec, value, text)


def structural_violations(schema: Schema, features: dict[str, object]) -> list[Violation]:
    """Features the schema requires but the record lacks, and features it does not know."""
    out = [
        Violation(name, "SCHEMA_MISSING_COLUMN", "required feature absent")
        for name, spec in schema.features.items()
        if spec.required and name not in features
    ]
    if not schema.allow_new_features:
        out.extend(
            Violation(bounded_text(name), "SCHEMA_NEW_COLUMN", "feature not in the schema")
            for name in features
            if name not in schema.features
        )
    return out
