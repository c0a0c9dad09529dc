"""Every topic of the worker, with its key and its payload (the types and their codecs are in
streams/worker/payloads.py, a leaf module):

| topic | key | payload |
|---|---|---|
| serving-logs | request id | a JSON serving record (``detectors.records.decode_record``) |
| feedback | request id | a JSON feedback record (``detectors.records.decode_feedback``) |
| feature-summaries | model/version/feature | ``FeatureSummary`` (``encode_parts``) |
| label-outcomes | model/version | ``LabelOutcomes`` |
| rollups | model/version | ``ROLLUP``: a part of a window's roll-up |
| window-rollups | roll-up id | ``ROLLUP``: a whole roll-up |
| anomalies | anomaly id | ``ANOMALY`` |
| incidents | incident id | ``INCIDENT`` (each version overwrites the last) |
| drift-scores | document id | ``DRIFT_SCORE`` |
| dead-letters | the record's key | its original bytes; the reason in headers |

serving-logs and feedback are external (Fluentd or ``forward-to-kafka`` write them) and read
as raw bytes, so a record that is not even JSON can still be dead-lettered with its original
bytes. feature-summaries carries stage one's micro-batches (columnar; a faust Record would
rebuild every entry in Python). The others are the worker's own and created with
``kafka.partitions`` partitions, which the stage-two changelog must match.
"""

from __future__ import annotations

from typing import Any

import faust
import orjson

from detectors.stages import summary_part
from streams.worker.app import app, kafka
from streams.worker.payloads import FeatureSummary

MAX_SUMMARY_BYTES = 512 * 1024  # half of Kafka's default max.message.bytes (1 MB)


def _raw(name: str) -> faust.TopicT:
    return app.topic(name, key_type=bytes, value_type=bytes, value_serializer="raw")


def _own(name: str, **kwargs: Any) -> faust.TopicT:
    return app.topic(name, partitions=kafka.partitions, internal=True, **kwargs)


serving_logs = _raw(kafka.topic("serving_logs"))
feedback = _raw(kafka.topic("feedback"))
# The label join reads both, co-partitioned by request id (same partition count, same key).
predictions_and_labels = app.topic(
    serving_logs.get_topic_name(),
    feedback.get_topic_name(),
    key_type=bytes,
    value_type=bytes,
    value_serializer="raw",
)

pipeline_features = _raw(kafka.topic("pipeline_features"))
# The feature-skew join reads serving-logs and pipeline-features, co-partitioned like feedback.
serving_and_pipeline = app.topic(
    serving_logs.get_topic_name(),
    pipeline_features.get_topic_name(),
    key_type=bytes,
    value_type=bytes,
    value_serializer="raw",
)


def _keyed_like_state(name: str) -> faust.TopicT:
    """Keys in JSON, as a state table's changelog writes them: such a table picks partitions
    with the partitioner (it writes after a batch), so the same key bytes land in the same
    partition, and each partition's owner holds the states of its keys."""
    return _own(name, key_type=str, key_serializer="json", value_type=bytes, value_serializer="raw")


feature_summaries = _keyed_like_state(kafka.topic("feature_summaries"))  # model/version/feature
label_outcomes = _keyed_like_state(kafka.topic("label_outcomes"))  # model/version: LabelOutcomes
skew_outcomes = _keyed_like_state(kafka.topic("skew_outcomes"))  # model/version: joined pairs
rollups = _keyed_like_state(kafka.topic("rollups"))  # model/version: per-feature roll-up parts
anomalies = _own(kafka.topic("anomalies"), key_type=str, value_type=bytes, value_serializer="raw")
# incidents, keyed by incident id: each version (opened, updated, resolved) overwrites the last
incidents = _own(kafka.topic("incidents"), key_type=str, value_type=bytes, value_serializer="raw")
window_rollups = _own(  # whole roll-ups of closed windows, keyed by roll-up id
    kafka.topic("window_rollups"), key_type=str, value_type=bytes, value_serializer="raw"
)
drift_scores = _own(  # drift-score documents (feature and label windows), keyed by their id
    kafka.topic("drift_scores"), key_type=str, value_type=bytes, value_serializer="raw"
)
dead_letters = _own(
    kafka.topic("dead_letters"), key_type=bytes, value_type=bytes, value_serializer="raw"
)


def encode_parts(summary: FeatureSummary, max_bytes: int = MAX_SUMMARY_BYTES) -> list[bytes]:
    """The summary as JSON bytes, cut by entries into parts of at most ``max_bytes`` (unless
    one entry alone is larger)."""
    raw = orjson.dumps(summary)
    n = len(summary["offsets"])
    if len(raw) <= max_bytes or n <= 1:
        return [raw]
    half = n // 2
    return encode_parts(summary_part(summary, 0, half), max_bytes) + encode_parts(
        summary_part(summary, half, n), max_bytes
    )
