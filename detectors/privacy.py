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


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 of the value, shortened: 64 bits are plenty to keep categories apart."""
    return "h:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:16]


def _text(value: object) -> str:
    # As the engine spells categories, so a dead letter's hash matches an anomaly's.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def redact(record: object, features_path: str, sensitive: frozenset[str], key: bytes) -> object:
    """A copy of a raw serving record with sensitive feature values replaced by keyed hashes,
    for keeping bad records (dead letters) without keeping what must not be kept.

    >>> hidden = frozenset({"email"})
    >>> redact({"f": {"email": "a@b.c", "x": 1}}, "f", hidden, b"k")  # doctest: +ELLIPSIS
    {'f': {'email': 'h:...', 'x': 1}}
    """
    if not sensitive or not isinstance(record, dict):
        return record
    head, _, rest = features_path.partition(".")
    inner = record.get(head)
    if rest:
        return {**record, head: redact(inner, rest, sensitive, key)}
    if not isinstance(inner, dict):
        return record
    hidden = {
        k: keyed_hash(key, _text(v)) if k in sensitive and v is not None else v
        for k, v in inner.items()
    }
    return {**record, head: hidden}
