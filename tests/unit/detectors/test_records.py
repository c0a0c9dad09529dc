"""detectors.records: any JSON a serving app logged becomes a typed record, or a DecodeError that
names the field at fault; never anything else."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.records import (
    MAX_TEXT_CHARS,
    DecodeError,
    FieldMapping,
    ServingRecord,
    decode_feedback,
    decode_record,
    type_name,
)
from tests.unit.detectors.strategies import json_values

PROPERTY = settings(max_examples=150, deadline=None)
T0 = 1_795_860_000.0  # 2026-11-28T10:00:00Z


def record(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"ts": T0, "model": "ctr", "features": {"price": 1.5}}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def field_at_fault(raw: object, **kwargs: object) -> str:
    with pytest.raises(DecodeError) as caught:
        decode_record(raw, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field in str(caught.value)
    return caught.value.field


# --- timestamps --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2026-11-28T10:00:00Z", T0),
        ("2026-11-28T10:00:00.123Z", T0 + 0.123),
        ("2026-11-28T10:00:00+00:00", T0),
        ("2026-11-28T11:30:00+01:30", T0),
        ("2026-11-28T05:00:00-05:00", T0),
        ("2026-11-28T10:00:00", T0),  # no offset: UTC
        ("2026-11-28 10:00:00Z", T0),
        (T0, T0),
        (int(T0), T0),
        (T0 + 0.25, T0 + 0.25),
        (int(T0 * 1000) + 123, T0 + 0.123),  # epoch milliseconds
        (T0 * 1000, T0),
        (0, 0.0),
    ],
)
def test_timestamps_are_iso_text_with_any_offset_or_epoch_seconds_or_milliseconds(
    ts: object, expected: float
) -> None:
    assert decode_record(record(ts=ts)).ts == pytest.approx(expected, abs=1e-6)


def test_a_missing_or_null_timestamp_takes_the_default_when_one_is_given() -> None:
    assert decode_record(record(ts=...), default_ts=42.0).ts == 42.0
    assert decode_record(record(ts=None), default_ts=42.0).ts == 42.0
    assert decode_record(record(), default_ts=42.0).ts == T0  # a logged one wins


def test_the_default_timestamp_is_checked_like_a_logged_one() -> None:
    """The transport's time (a forward event's) may be in milliseconds, or nonsense."""
    assert decode_record(record(ts=None), default_ts=T0 * 1000).ts == pytest.approx(T0)
    assert decode_feedback({"request_id": "r", "label": 1}, default_ts=T0 * 1000).ts == (
        pytest.approx(T0)
    )
    with pytest.raises(DecodeError, match=r"'ts': timestamp outside 1970\.\.9999"):
        decode_record(record(ts=None), default_ts=-5.0)
    with pytest.raises(DecodeError, match="'ts': timestamp is not finite"):
        decode_feedback({"request_id": "r", "label": 1}, default_ts=math.inf)


@pytest.mark.parametrize(
    "ts", [..., None, "yesterday", "2026-13-01T00:00:00Z", True, math.nan, math.inf, [T0], {}]
)
def test_a_missing_or_unreadable_timestamp_is_a_decode_error_naming_ts(ts: object) -> None:
    assert field_at_fault(record(ts=ts)) == "ts"


@pytest.mark.parametrize("ts", [1e20, 1e300, -1e12, "9999-12-31T23:59:59-01:00"])
def test_a_timestamp_no_date_can_hold_is_a_decode_error_naming_ts(ts: object) -> None:
    # Accepted, such a record crashes the engine later, when an anomaly formats its window
    # (detectors.anomaly.iso): the worker must dead-letter it here instead.
    assert field_at_fault(record(ts=ts)) == "ts"


# --- the other fields --------------------------------------------------------------------


def test_a_full_record_decodes_every_field() -> None:
    r = decode_record(
        {
            "ts": "2026-11-28T10:00:00Z",
            "request_id": "a1b2",
            "model": "ctr",
            "model_version": 3,
            "features": {"price": 12.5, "country": "DE"},
            "prediction": 0.13,
            "slice": {"category": "mens_dress_shoes", "page": 2},
        }
    )
    assert r == ServingRecord(
        ts=T0,
        model="ctr",
        version="3",
        features={"price": 12.5, "country": "DE"},
        prediction=0.13,
        request_id="a1b2",
        slice={"category": "mens_dress_shoes", "page": "2"},
    )


def test_optional_fields_have_plain_defaults() -> None:
    r = decode_record(record())
    assert (r.version, r.prediction, r.request_id, r.slice) == ("", None, None, {})


def test_a_missing_model_takes_the_default_model() -> None:
    assert decode_record(record(model=...), default_model="ctr").model == "ctr"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"features": ...}, "features"),
        ({"features": None}, "features"),
        ({"features": [1, 2]}, "features"),
        ({"features": "price=1"}, "features"),
        ({"model": ...}, "model"),
        ({"model": None}, "model"),
        ({"model": ["ctr"]}, "model"),
        ({"model": True}, "model"),
        ({"model_version": {"v": 3}}, "model_version"),
        ({"request_id": [1]}, "request_id"),
        ({"slice": "shoes"}, "slice"),
        ({"slice": [1]}, "slice"),
        ({"model": "m" * 257}, "model"),  # an identifier, not a document
        ({"model_version": "3" * 257}, "model_version"),
        ({"request_id": "r" * 257}, "request_id"),
    ],
)
def test_a_missing_or_mistyped_field_is_a_decode_error_naming_it(
    fields: dict[str, object], field: str
) -> None:
    assert field_at_fault(record(**fields)) == field


def test_a_slice_value_is_kept_bounded_like_a_category() -> None:
    decoded = decode_record(record(slice={"category": "s" * 5_000, "brand": "acme"}))
    assert len(decoded.slice["category"]) == MAX_TEXT_CHARS and decoded.slice["brand"] == "acme"
    assert decode_record(record(request_id="r" * 256)).request_id == "r" * 256


@pytest.mark.parametrize("raw", [None, [], "ts=1", 3, True])
def test_a_record_that_is_not_an_object_is_a_decode_error(raw: object) -> None:
    assert field_at_fault(raw) == "<record>"


def test_decode_error_is_a_value_error_that_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="'features': expected an object, got list"):
        decode_record(record(features=[1]))


NESTED = FieldMapping(
    ts="meta.time",
    request_id="meta.id",
    model="meta.model.name",
    model_version="meta.model.version",
    features="payload.inputs",
    prediction="payload.output.score",
    slice="meta.slice",
)


def test_a_field_mapping_reaches_into_nested_objects_with_dotted_paths() -> None:
    raw = {
        "meta": {
            "time": "2026-11-28T10:00:00Z",
            "id": "r-1",
            "model": {"name": "ctr", "version": "7"},
            "slice": {"country": "DE"},
        },
        "payload": {"inputs": {"price": 3.0}, "output": {"score": 0.9}},
    }
    r = decode_record(raw, NESTED)
    assert (r.ts, r.request_id, r.model, r.version) == (T0, "r-1", "ctr", "7")
    assert (r.features, r.prediction, r.slice) == ({"price": 3.0}, 0.9, {"country": "DE"})


def test_a_dotted_path_that_does_not_resolve_names_the_whole_path() -> None:
    raw = {"meta": {"time": T0, "model": {"name": "ctr"}}, "payload": {"output": {}}}
    assert field_at_fault(raw, mapping=NESTED) == "payload.inputs"
    raw["payload"] = {"inputs": {}}
    raw["meta"] = {"time": T0, "model": "ctr"}  # not an object: model.name cannot resolve
    assert field_at_fault(raw, mapping=NESTED) == "meta.model.name"
    raw["meta"] = {"model": {"name": "ctr"}}
    assert field_at_fault(raw, mapping=NESTED) == "meta.time"


def test_type_names_never_show_the_value() -> None:
    names = [type_name(v) for v in (None, True, 1, 1.5, "secret", [1], {"a": 1})]
    assert names == ["null", "bool", "int", "float", "string", "list", "object"]


# --- never anything but DecodeError ---------------------------------------------------------

timestamps = (
    json_values
    | st.floats(min_value=-1e18, max_value=1e18)
    | st.datetimes().map(lambda d: d.isoformat())
    | st.datetimes().map(lambda d: d.isoformat() + "Z")
)
records = st.fixed_dictionaries(
    {},
    optional={
        "ts": timestamps,
        "model": json_values | st.text(max_size=5),
        "model_version": json_values,
        "request_id": json_values,
        "features": json_values | st.dictionaries(st.text(max_size=5), json_values, max_size=4),
        "prediction": json_values,
        "slice": json_values | st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    },
)


@PROPERTY
@given(records | json_values, st.none() | st.floats(0, 2e9), st.none() | st.text(max_size=4))
def test_decode_record_raises_nothing_but_decode_error_on_any_json(
    raw: object, default_ts: float | None, default_model: str | None
) -> None:
    try:
        r = decode_record(raw, default_ts=default_ts, default_model=default_model)
    except DecodeError as exc:
        assert exc.field
        return
    assert math.isfinite(r.ts)
    assert isinstance(r.model, str)
    assert isinstance(r.features, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in r.slice.items())
