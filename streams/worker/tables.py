"""Every table of the worker. State is bytes of versioned plain JSON
(``detectors.state_codec``), never a pickle; the changelog is partitioned like its source,
feature-summaries, so each partition's owner recovers exactly its features."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import faust
import orjson

from detectors.feature_state import FeatureState
from detectors.state_codec import BUFFER, to_plain
from streams.worker.app import app, kafka

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


# model/version/feature -> that feature's incident tracker (``detectors.incidents.tracker``),
# written with its stage-two state, keyed and partitioned like it (streams/worker/incidents.py)
feature_to_incidents = app.Table(
    "feature_to_incidents",
    key_type=str,
    value_type=bytes,
    partitions=kafka.partitions,
    use_partitioner=True,
)


# model/version -> roll-up parts of its recent windows, merged until every feature's part is in
model_to_rollups = app.Table(
    "model_to_rollups",
    key_type=str,
    value_type=bytes,
    partitions=kafka.partitions,
    use_partitioner=True,  # as feature_to_state: its keys hash like the rollups topic's JSON keys
)


def encode_state(plain: dict[str, Any], finite: str | None = None) -> bytes:
    """Plain state as JSON bytes. The stdlib json keeps +-Infinity (an empty window's min and
    max), where orjson would write null; ``finite`` names the one key whose value holds only
    finite numbers, text and null, which orjson writes ~20x faster (stage two's merge buffer)."""
    if finite is None or finite not in plain:
        return json.dumps(plain, separators=(",", ":")).encode()
    rest = json.dumps({k: v for k, v in plain.items() if k != finite}, separators=(",", ":"))
    tail = orjson.dumps(finite) + b":" + orjson.dumps(plain[finite]) + b"}"
    return rest[:-1].encode() + (b"," if len(rest) > 2 else b"") + tail


def state_bytes(state: FeatureState) -> bytes:
    """A stage-two state's ``feature_to_state`` value. Its merge buffer holds only what
    summaries brought, and summaries are read with orjson, which refuses NaN and infinities:
    orjson may write it."""
    return encode_state(to_plain(state), BUFFER)


def decode_state(raw: bytes) -> dict[str, Any]:
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError(f"stage-two state is a {type(data).__name__}, not an object")
    return data


class PartitionedTable(faust.Table[str, bytes]):
    """A table whose writes go to the changelog partition the caller names (``writing_to``):
    the label join writes outside the event a key came from (expiry, eviction), and the
    partitioner would not pick the partition Fluentd's client hashed the request id to."""

    def partition_for_key(self, key: Any) -> int | None:
        partition = _write_partition.get()
        if partition is None:
            raise RuntimeError(f"{self.name}: write {key!r} inside writing_to(partition)")
        return partition


_write_partition: ContextVar[int | None] = ContextVar("write_partition", default=None)


@contextmanager
def writing_to(partition: int) -> Iterator[None]:
    token = _write_partition.set(partition)
    try:
        yield
    finally:
        _write_partition.reset(token)


# request id -> a prediction waiting for its label (``detectors.labels.join.Pending`` as orjson),
# partitioned like serving-logs and feedback: a label finds its prediction in its own partition.
pending_labels = PartitionedTable(
    app,
    name="pending_labels",
    key_type=str,
    value_type=bytes,
    partitions=kafka.partitions,
    beacon=app.tables.beacon,
)
app.tables.add(pending_labels)

# model/version -> the label judge's state (``detectors.labels.state``), written once per batch
model_to_labels = app.Table(
    "model_to_labels",
    key_type=str,
    value_type=bytes,
    partitions=kafka.partitions,
    use_partitioner=True,  # as feature_to_state: its keys hash like label-outcomes' JSON keys
)

# Feature skew (feature_skew.enabled): request id -> a serving record's features waiting for the
# pipeline's (or the pipeline's for serving's), partitioned like serving-logs and
# pipeline-features; and model/version -> the feature-skew judge's state (detectors/skew_state).
pending_features = PartitionedTable(
    app,
    name="pending_features",
    key_type=str,
    value_type=bytes,
    partitions=kafka.partitions,
    beacon=app.tables.beacon,
)
app.tables.add(pending_features)
model_to_skew = app.Table(
    "model_to_skew",
    key_type=str,
    value_type=bytes,
    partitions=kafka.partitions,
    use_partitioner=True,  # as model_to_labels: its keys hash like skew-outcomes' JSON keys
)
