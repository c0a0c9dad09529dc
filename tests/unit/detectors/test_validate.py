"""detectors.validate: every value gets a verdict in TFDV's vocabulary, validation never raises
whatever JSON arrives, and no verdict repeats the value it judged."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.baseline.schema import FeatureSpec, Schema
from detectors.records import MAX_TEXT_CHARS
from detectors.validate import CODES, Checked, check_value, structural_violations
from tests.unit.detectors.strategies import json_values

PROPERTY = settings(max_examples=150, deadline=None)
MISSING = "<missing>"
STRUCTURAL = {"SCHEMA_MISSING_COLUMN", "SCHEMA_NEW_COLUMN"}

AGE = FeatureSpec(type="int", range={"min": 0, "max": 120})
SCORE = FeatureSpec(type="float", range={"min": -1.0, "max": 1.0})
DEVICE = FeatureSpec(type="categorical", domain=["ios", "android"])
TAG = FeatureSpec(type="categorical")
FLAG = FeatureSpec(type="bool")
NAN_OK = FeatureSpec(type="float", allow_nan=True)
INF_OK = FeatureSpec(type="float", allow_inf=True)
INT_SENTINELS = FeatureSpec(type="int", missing_values=[-1])
FLOAT_SENTINELS = FeatureSpec(type="float", missing_values=[0])
TEXT_SENTINELS = FeatureSpec(type="categorical", missing_values=["NA", ""])

TABLE = [
    # int
    (AGE, 34, None),
    (AGE, 34.0, None),
    (AGE, 0, None),
    (AGE, 120, None),
    (AGE, "34", "INT_TYPE_NOT_INT_STRING"),
    (AGE, 34.5, "INT_TYPE_HAS_FLOAT"),
    (AGE, 121, "INT_TYPE_BIG_INT"),
    (AGE, -1, "INT_TYPE_SMALL_INT"),
    (AGE, math.nan, "FLOAT_TYPE_HAS_NAN"),
    (AGE, math.inf, "FLOAT_TYPE_HAS_INF"),
    (AGE, True, "UNEXPECTED_VALUE_TYPE"),
    (AGE, [34], "UNEXPECTED_VALUE_TYPE"),
    (AGE, {"years": 34}, "UNEXPECTED_VALUE_TYPE"),
    (AGE, None, MISSING),
    # float
    (SCORE, 0.25, None),
    (SCORE, 1, None),
    (SCORE, "0.25", "FLOAT_TYPE_STRING_NOT_FLOAT"),
    (SCORE, 1.5, "FLOAT_TYPE_BIG_FLOAT"),
    (SCORE, -1.5, "FLOAT_TYPE_SMALL_FLOAT"),
    (SCORE, math.nan, "FLOAT_TYPE_HAS_NAN"),
    (SCORE, math.inf, "FLOAT_TYPE_HAS_INF"),
    (SCORE, -math.inf, "FLOAT_TYPE_HAS_INF"),
    (SCORE, False, "UNEXPECTED_VALUE_TYPE"),
    (SCORE, [0.25], "UNEXPECTED_VALUE_TYPE"),
    (SCORE, {}, "UNEXPECTED_VALUE_TYPE"),
    (NAN_OK, math.nan, None),
    (NAN_OK, math.inf, "FLOAT_TYPE_HAS_INF"),
    (INF_OK, math.inf, None),
    (INF_OK, -math.inf, None),
    (INF_OK, math.nan, "FLOAT_TYPE_HAS_NAN"),
    # categorical
    (DEVICE, "ios", None),
    (DEVICE, "web", "ENUM_TYPE_UNEXPECTED_STRING_VALUES"),
    (DEVICE, 3, "STRING_TYPE_NOW_INT"),
    (DEVICE, 3.5, "STRING_TYPE_NOW_FLOAT"),
    (DEVICE, True, "UNEXPECTED_VALUE_TYPE"),
    (DEVICE, ["ios"], "UNEXPECTED_VALUE_TYPE"),
    (DEVICE, {"os": "ios"}, "UNEXPECTED_VALUE_TYPE"),
    (DEVICE, None, MISSING),
    (TAG, "anything at all", None),
    (TAG, 7, "STRING_TYPE_NOW_INT"),
    # bool
    (FLAG, True, None),
    (FLAG, False, None),
    (FLAG, 1, None),
    (FLAG, 0, None),
    (FLAG, 2, "BOOL_TYPE_BIG_INT"),
    (FLAG, -1, "BOOL_TYPE_SMALL_INT"),
    (FLAG, "true", "BOOL_TYPE_UNEXPECTED_STRING"),
    (FLAG, 1.0, "BOOL_TYPE_UNEXPECTED_FLOAT"),
    (FLAG, [True], "UNEXPECTED_VALUE_TYPE"),
    (FLAG, {"v": True}, "UNEXPECTED_VALUE_TYPE"),
    (FLAG, None, MISSING),
    # sentinels that mean "missing"
    (INT_SENTINELS, -1, MISSING),
    (INT_SENTINELS, -1.0, MISSING),
    (INT_SENTINELS, -2, None),
    (FLOAT_SENTINELS, 0, MISSING),
    (FLOAT_SENTINELS, 0.0, MISSING),
    (FLOAT_SENTINELS, False, "UNEXPECTED_VALUE_TYPE"),  # False == 0, but it is not the sentinel
    (FLOAT_SENTINELS, "0", "FLOAT_TYPE_STRING_NOT_FLOAT"),
    (TEXT_SENTINELS, "NA", MISSING),
    (TEXT_SENTINELS, "", MISSING),
    (TEXT_SENTINELS, "na", None),
    (TEXT_SENTINELS, ["NA"], "UNEXPECTED_VALUE_TYPE"),
]


@pytest.mark.parametrize(("spec", "value", "expected"), TABLE)
def test_check_value_gives_the_tfdv_code_for_each_kind_of_bad_value(
    spec: FeatureSpec, value: object, expected: str | None
) -> None:
    checked = check_value("f", spec, value)
    assert checked.missing is (expected == MISSING)
    code = checked.violation.code if checked.violation else None
    assert code == (None if expected == MISSING else expected)
    if checked.violation:
        assert checked.violation.feature == "f"
        assert checked.violation.code in CODES


def test_the_table_covers_every_code_check_value_can_produce() -> None:
    assert {expected for _, _, expected in TABLE} - {None, MISSING} == set(CODES) - STRUCTURAL


def test_a_valid_number_enters_the_statistics_as_a_float() -> None:
    assert check_value("age", AGE, 34) == Checked(34.0)
    assert isinstance(check_value("age", AGE, 34).value, float)


def test_an_out_of_range_number_still_enters_the_statistics() -> None:
    checked = check_value("age", AGE, 150)
    assert checked.value == 150.0
    assert checked.violation is not None
    assert checked.violation.code == "INT_TYPE_BIG_INT"


def test_values_of_the_wrong_type_and_nan_do_not_enter_the_statistics() -> None:
    for spec, value in [(AGE, "34"), (AGE, 3.5), (SCORE, math.nan), (NAN_OK, math.nan)]:
        assert check_value("f", spec, value).value is None


def test_booleans_enter_as_lower_case_json_literals() -> None:
    assert [check_value("f", FLAG, v).value for v in (True, False, 1, 0)] == [
        "true",
        "false",
        "true",
        "false",
    ]


def test_a_category_outside_the_domain_is_flagged_but_still_counted() -> None:
    checked = check_value("device", DEVICE, "web")
    assert checked.value == "web"
    assert checked.violation is not None


def test_a_category_value_longer_than_a_kilobyte_is_kept_as_its_head_and_a_digest() -> None:
    long_a, long_b = "w" * 60_000, "w" * 59_999 + "v"
    a, b = check_value("device", DEVICE, long_a), check_value("device", DEVICE, long_b)
    assert isinstance(a.value, str) and isinstance(b.value, str)
    assert len(a.value) == len(b.value) == MAX_TEXT_CHARS
    assert a.value != b.value and a.value.startswith("w" * 1_000)  # distinct stay distinct
    assert a.violation is not None  # and outside the domain, as the raw value was
    assert check_value("device", DEVICE, "w" * MAX_TEXT_CHARS).value == "w" * MAX_TEXT_CHARS


def test_the_given_text_of_a_sensitive_value_is_what_the_domain_is_checked_against() -> None:
    hashed = FeatureSpec(type="categorical", domain=["h:0123456789abcdef"], sensitive=True)
    assert check_value("email", hashed, "a@b.c", text="h:0123456789abcdef") == Checked(
        "h:0123456789abcdef"
    )
    checked = check_value("email", hashed, "a@b.c", text="h:ffffffffffffffff")
    assert checked.value == "h:ffffffffffffffff"
    assert checked.violation is not None
    assert checked.violation.code == "ENUM_TYPE_UNEXPECTED_STRING_VALUES"


@pytest.mark.parametrize("spec", [AGE, SCORE, FLAG, DEVICE], ids=["int", "float", "bool", "cat"])
@pytest.mark.parametrize("value", [10**400, -(10**400)], ids=["1e400", "-1e400"])
def test_check_value_never_raises_on_integers_too_large_for_a_float(
    spec: FeatureSpec, value: int
) -> None:
    # json.loads("1" + "0" * 400) is an int; float() of it raises OverflowError.
    checked = check_value("f", spec, value)
    assert checked.violation is not None


# --- structure ---------------------------------------------------------------------------

SCHEMA = Schema.model_validate(
    {
        "features": {
            "price": {"type": "float", "required": True},
            "country": {"type": "categorical", "required": True},
            "coupon": {"type": "categorical"},
        }
    }
)


def codes(violations: list) -> set[tuple[str, str]]:  # type: ignore[type-arg]
    return {(v.feature, v.code) for v in violations}


def test_a_required_feature_absent_from_the_record_is_a_missing_column() -> None:
    found = structural_violations(SCHEMA, {"price": 1.0})
    assert codes(found) == {("country", "SCHEMA_MISSING_COLUMN")}


def test_an_optional_feature_may_be_absent_and_a_required_one_may_be_null() -> None:
    assert structural_violations(SCHEMA, {"price": 1.0, "country": None}) == []


def test_a_feature_the_schema_does_not_know_is_a_new_column() -> None:
    found = structural_violations(SCHEMA, {"price": 1.0, "country": "DE", "age": 3})
    assert codes(found) == {("age", "SCHEMA_NEW_COLUMN")}


def test_a_new_columns_name_is_kept_bounded() -> None:
    (found,) = structural_violations(SCHEMA, {"price": 1.0, "country": "DE", "z" * 50_000: 1})
    assert found.code == "SCHEMA_NEW_COLUMN" and len(found.feature) == MAX_TEXT_CHARS


def test_new_columns_are_accepted_when_the_schema_allows_new_features() -> None:
    open_schema = SCHEMA.model_copy(update={"allow_new_features": True})
    found = structural_violations(open_schema, {"age": 3})
    assert codes(found) == {
        ("price", "SCHEMA_MISSING_COLUMN"),
        ("country", "SCHEMA_MISSING_COLUMN"),
    }


def test_every_code_in_the_vocabulary_is_produced_somewhere() -> None:
    structural = structural_violations(SCHEMA, {"age": 3})
    produced = {v.code for v in structural} | {e for _, _, e in TABLE} - {None, MISSING}
    assert produced == set(CODES)
    assert all(kind in {"schema_skew", "data_quality"} for kind, _ in CODES.values())


# --- never raises, never tells ------------------------------------------------------------

SPECS = [
    AGE,
    SCORE,
    DEVICE,
    TAG,
    FLAG,
    NAN_OK,
    INF_OK,
    INT_SENTINELS,
    FLOAT_SENTINELS,
    TEXT_SENTINELS,
    FeatureSpec(type="float"),
    FeatureSpec(type="int"),
    FeatureSpec(type="bool", missing_values=[0, "n/a"]),
]


@PROPERTY
@given(st.sampled_from(SPECS), json_values, st.none() | st.text(max_size=8))
def test_check_value_never_raises_on_any_json_value(
    spec: FeatureSpec, value: object, text: str | None
) -> None:
    checked = check_value("f", spec, value, text)
    assert isinstance(checked, Checked)
    assert checked.violation is None or checked.violation.code in CODES
    assert not (checked.missing and checked.violation)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6), st.booleans())
def test_structural_violations_never_raise_on_any_features_object(
    features: dict[str, object], allow_new: bool
) -> None:
    schema = SCHEMA.model_copy(update={"allow_new_features": allow_new})
    for v in structural_violations(schema, features):
        assert v.code in STRUCTURAL


SECRET = "s3cr3t-4111-1111-1111-1111"


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize(
    "value",
    [SECRET, [SECRET], {"card": SECRET}, {SECRET: 1}, 987654321, 9876.54321, -987654321],
)
def test_a_violation_never_repeats_the_value_it_judged(spec: FeatureSpec, value: object) -> None:
    checked = check_value("card", spec, value)
    if checked.violation is not None:
        detail = checked.violation.detail
        assert SECRET not in detail
        assert "987654321" not in detail.replace(".", "")


def test_the_secret_draws_a_violation_from_every_spec_that_cannot_take_free_text() -> None:
    # the test above would be vacuous if no spec objected to the secret value
    silent = [spec for spec in SPECS if check_value("card", spec, SECRET).violation is None]
    assert silent == [TAG, TEXT_SENTINELS]
