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


def test_redact_leaves_records_it_cannot_read_or_need_not_touch_as_they_are() -> None:
    assert redact("not json", "features", SENSITIVE, KEY) == "not json"
    assert redact({"features": [1, 2]}, "features", SENSITIVE, KEY) == {"features": [1, 2]}
    record = {"features": {"email": "a@b.c"}}
    assert redact(record, "features", frozenset(), KEY) == record


def test_no_raw_sensitive_value_survives_redaction_whatever_its_type() -> None:
    values = ["a@b.c", 12345, 6.5, True, ["x@y.z"], {"inner": "p@q.r"}]
    for value in values:
        redacted = redact({"features": {"email": value}}, "features", SENSITIVE, KEY)
        assert redacted["features"]["email"].startswith("h:")  # type: ignore[index]
