"""Every topic of the worker.

serving-logs and feedback are external (Fluentd or ``forward-to-kafka`` write them, keyed by
request id) and read as raw bytes, so a record that is not even JSON can still be dead-lettered
with its original bytes. feature-summaries carries stage one's micro-batches, keyed
model/version/feature: orjson bytes of ``detectors.stages.SummaryBuilder.drain``'s summaries
(columnar; a faust Record would rebuild every entry in Python). The others are the worker's
own and created with ``kafka.partitions`` partitions, which the stage-two changelog must
match.
"""

from __future__ import annotations

from typing import Any

import faust

from streams.app import app, kafka


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
# Keys in JSON, as the stage-two table's changelog writes them: that table picks partitions
# with the partitioner (it writes after a batch), so the same key bytes land in the same partition.
feature_summaries = _own(
    kafka.topic("feature_summaries"),
    key_type=str,
    key_serializer="json",
    value_type=bytes,
    value_serializer="raw",
)
# The join's outcomes for the label judge, keyed model/version in JSON (as feature-summaries).
label_outcomes = _own(
    kafka.topic("label_outcomes"),
    key_type=str,
    key_serializer="json",
    value_type=bytes,
    value_serializer="raw",
)
anomalies = _own(kafka.topic("anomalies"), key_type=str, value_type=bytes, value_serializer="raw")
dead_letters = _own(
    kafka.topic("dead_letters"), key_type=bytes, value_type=bytes, value_serializer="raw"
)
