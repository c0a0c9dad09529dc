"""Keyed hashing for sensitive features: the value's identity survives (counts still add up
per category) but the raw value never leaves the worker.

>>> keyed_hash(b"k", "alice") == keyed_hash(b"k", "alice") != keyed_hash(b"other", "alice")
True
>>> keyed_hash(b"k", "alice").startswith("h:")
True
"""

from __future__ import annotations

import hashlib
import hmac
import json


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 of the value, shortened: 64 bits are plenty to keep categories apart."""
    return "h:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:16]


def _text(value: object) -> str:
    # As the engine spells categories, so a dead letter's hash matches an anomaly's.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _hashed(key: bytes, value: object) -> object:
    """A sensitive value of any shape as one keyed hash (a nested value's JSON text)."""
    if value is None:
        return None
    if isinstance(value, dict | list):
        return keyed_hash(key, json.dumps(value, sort_keys=True, default=str))
    return keyed_hash(key, _text(value))


def _by_name(value: object, sensitive: frozenset[str], key: bytes) -> object:
    """``value`` with every map entry named as a sensitive feature hashed, at any depth."""
    if isinstance(value, dict):
        return {
            k: _hashed(key, v) if k in sensitive else _by_name(v, sensitive, key)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_by_name(v, sensitive, key) for v in value]
    return value


def _every_leaf(value: object, sensitive: frozenset[str], key: bytes) -> object:
    """Features that are not a map cannot say which value is which: hash every value."""
    if isinstance(value, dict):
        return {k: _every_leaf(v, sensitive, key) for k, v in value.items()}
    if isinstance(value, list):
        return [_every_leaf(v, sensitive, key) for v in value]
    return _hashed(key, value)


def redact(record: object, features_path: str, sensitive: frozenset[str], key: bytes) -> object:
    """A copy of a raw serving record with sensitive feature values replaced by keyed hashes,
    for keeping bad records (dead letters) without keeping what must not be kept, whatever the
    record's shape: an entry named as a sensitive feature is hashed wherever it sits (a nested
    value as a whole), and features that are not a map (a list, a string) have every value
    hashed, since nothing says which of them is sensitive.

    >>> hidden = frozenset({"email"})
    >>> redact({"f": {"email": "a@b.c", "x": 1}}, "f", hidden, b"k")  # doctest: +ELLIPSIS
    {'f': {'email': 'h:...', 'x': 1}}
    >>> redact({"f": ["a@b.c", 1]}, "f", hidden, b"k")  # doctest: +ELLIPSIS
    {'f': ['h:...', 'h:...']}
    >>> redact({"f": {"email": {"home": "a@b.c"}}}, "f", hidden, b"k")  # doctest: +ELLIPSIS
    {'f': {'email': 'h:...'}}
    """
    if not sensitive:
        return record
    named = _by_name(record, sensitive, key)
    return _features_hidden(named, features_path, sensitive, key)


def _features_hidden(record: object, path: str, sensitive: frozenset[str], key: bytes) -> object:
    if not isinstance(record, dict):  # not a map where one was expected: nothing says which
        return _every_leaf(record, sensitive, key)
    head, _, rest = path.partition(".")
    if head not in record:
        return record
    inner = record[head]
    if rest:
        return {**record, head: _features_hidden(inner, rest, sensitive, key)}
    if isinstance(inner, dict):
        return record
    return {**record, head: _every_leaf(inner, sensitive, key)}
