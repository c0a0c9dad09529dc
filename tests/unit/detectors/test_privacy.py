"""detectors.privacy: a sensitive value keeps its identity (equal values, equal hashes) but the
raw value never leaves the worker."""

from __future__ import annotations

import copy
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.privacy import keyed_hash, redact

KEY = b"k3y"
SENSITIVE = frozenset({"email", "country"})


def test_a_keyed_hash_is_h_colon_and_16_hex_digits() -> None:
    assert re.fullmatch(r"h:[0-9a-f]{16}", keyed_hash(KEY, "alice@example.com"))


@settings(max_examples=100, deadline=None)
@given(st.text(), st.text())
def test_equal_values_hash_equal_and_different_values_hash_apart(a: str, b: str) -> None:
    assert keyed_hash(KEY, a) == keyed_hash(KEY, a)
    assert (keyed_hash(KEY, a) == keyed_hash(KEY, b)) == (a == b)


def test_the_hash_depends_on_the_key() -> None:
    assert keyed_hash(b"one", "DE") != keyed_hash(b"two", "DE")


def test_redact_replaces_sensitive_feature_values_with_their_keyed_hash() -> None:
    record = {"ts": 1, "features": {"email": "a@b.c", "country": "DE", "price": 3.5}}
    assert redact(record, "features", SENSITIVE, KEY) == {
        "ts": 1,
        "features": {
            "email": keyed_hash(KEY, "a@b.c"),
            "country": keyed_hash(KEY, "DE"),
            "price": 3.5,
        },
    }


def test_redact_keeps_nulls_and_never_changes_its_input() -> None:
    record = {"features": {"email": None, "country": "DE"}}
    before = copy.deepcopy(record)
    redacted = redact(record, "features", SENSITIVE, KEY)
    assert record == before
    assert redacted == {"features": {"email": None, "country": keyed_hash(KEY, "DE")}}


def test_redact_follows_a_dotted_features_path() -> None:
    record = {"payload": {"inputs": {"email": "a@b.c"}, "id": 7}}
    redacted = redact(record, "payload.inputs", SENSITIVE, KEY)
    assert redacted == {"payload": {"inputs": {"email": keyed_hash(KEY, "a@b.c")}, "id": 7}}


def test_redact_leaves_records_alone_when_no_feature_is_sensitive() -> None:
    record = {"features": {"email": "a@b.c"}}
    assert redact(record, "features", frozenset(), KEY) == record
    assert redact({"features": {"price": 1}}, "features", SENSITIVE, KEY) == {
        "features": {"price": 1}
    }


def test_features_that_are_a_list_have_every_value_hashed() -> None:
    # Issue 14 row 9: a list says nothing of which value is the sensitive one.
    redacted = redact({"features": ["a@b.c", 2, None]}, "features", SENSITIVE, KEY)
    assert redacted == {"features": [keyed_hash(KEY, "a@b.c"), keyed_hash(KEY, "2"), None]}


def test_a_sensitive_name_is_hashed_wherever_it_sits() -> None:
    record = {"features": [{"email": "a@b.c", "price": 1}], "meta": {"country": "DE"}}
    redacted = redact(record, "features", SENSITIVE, KEY)
    assert "a@b.c" not in str(redacted) and "DE" not in str(redacted)
    assert redacted["meta"] == {"country": keyed_hash(KEY, "DE")}  # type: ignore[index]


def test_a_record_that_is_not_a_map_is_hashed_whole() -> None:
    assert redact("a@b.c", "features", SENSITIVE, KEY) == keyed_hash(KEY, "a@b.c")


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.sampled_from(["email", "x", "features"]), inner, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_no_secret_survives_in_any_shape(shape: object) -> None:
    secret = "s3cr3t@example.com"
    record = {"features": {"email": secret, "other": shape}, "list": [{"email": secret}]}
    for features in (record, {"features": [shape, secret]}, {"features": {"x": [secret]}}):
        redacted = redact(features, "features", frozenset({"email", "x"}), KEY)
        assert secret not in str(redacted)


def test_no_raw_sensitive_value_survives_redaction_whatever_its_type() -> None:
    values = ["a@b.c", 12345, 6.5, True, ["x@y.z"], {"inner": "p@q.r"}]
    for value in values:
        redacted = redact({"features": {"email": value}}, "features", SENSITIVE, KEY)
        assert redacted["features"]["email"].startswith("h:")  # type: ignore[index]
