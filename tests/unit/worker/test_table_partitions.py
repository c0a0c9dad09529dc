"""Stage two's state table writes with the producer's partitioner (after a batch, where Faust has
no current event): its changelog key must be the very bytes feature-summaries is keyed by, or a
feature's state lands in a partition another worker owns and recovers."""

from __future__ import annotations

import pytest

from streams.worker.tables import feature_to_state
from streams.worker.topics import feature_summaries


@pytest.mark.parametrize("key", ["ctr/1/price", "ctr//country", "mödel/v 2/größe"])
def test_changelog_key_bytes_equal_the_summary_key_bytes(key: str) -> None:
    changelog = feature_to_state.changelog_topic
    table_key, _ = changelog.prepare_key(key, feature_to_state.key_serializer)
    topic_key, _ = feature_summaries.prepare_key(key, None)
    assert table_key == topic_key


def test_state_table_and_summaries_have_the_same_partition_count() -> None:
    assert feature_to_state.partitions == feature_summaries.partitions
