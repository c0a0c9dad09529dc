"""Every table of the worker. State is bytes of versioned plain JSON
(``detectors.state_codec``), never a pickle; the changelog is partitioned like its source,
feature-summaries, so each partition's owner recovers exactly its features."""

from __future__ import annotations

import json
from typing import Any

from streams.app import app, kafka

# model/version/feature -> stage-two state (windows, detectors, merge buffer, offset guards)
feature_to_state = app.Table(
    "feature_to_state",
    key_type=str,
    value_type=bytes,  # faust picks the raw codec for bytes, in writes and in recovery alike
    partitions=kafka.partitions,
    # Stage two writes once per batch of summaries, after the batch's loop, where Faust has no
    # current event to take the partition from. The key's hash picks the same partition its
    # summaries came from (same key bytes — JSON in both, see topics.py —, partitioner and
    # partition count): each changelog partition belongs to that summaries partition's owner.
    use_partitioner=True,
)


def encode_state(plain: dict[str, Any]) -> bytes:
    # stdlib json keeps +-Infinity (an empty window's min and max); orjson would write null.
    return json.dumps(plain, separators=(",", ":")).encode()


def decode_state(raw: bytes) -> dict[str, Any]:
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError(f"stage-two state is a {type(data).__name__}, not an object")
    return data
