"""The labelling queue in Elasticsearch: ``<prefix>-label-queue``, one document per queued record,
``_id`` = its request id, rewritten whole when its state changes (queued, exported, labelled,
review), so a search sees where every item is and a re-run overwrites instead of duplicating.

No feature value is indexed (only aggregates and identifiers leave logdrift, DESIGN section 1):
model, slice, reason, distance band, state, and once resolved the label and its agreement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from connectors.elasticsearch import Doc, ElasticSink, Rejection
from connectors.label_store import HumanLabel
from connectors.outbox import OutboxItem
from detectors.anomaly import iso
from detectors.labels.queue import QueueItem

TARGET = "label-queue"
MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "@timestamp": {"type": "date"},
        "model": {"properties": {"name": {"type": "keyword"}, "version": {"type": "keyword"}}},
        "slice": {"type": "keyword"},
        "label": {
            "properties": {
                "request_id": {"type": "keyword"},
                "state": {"type": "keyword"},
                "reason": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
                "band": {"type": "keyword"},
                "distance": {"type": "float"},
                "choice": {"type": "keyword"},
                "agreement": {"type": "float"},
                "raters": {"type": "integer"},
                "batch": {"type": "keyword"},
                "source": {"type": "keyword"},
            }
        },
    },
}


def queue_document(item: QueueItem, resolved: HumanLabel | None = None) -> dict[str, Any]:
    label: dict[str, Any] = {
        "request_id": item.request_id,
        "state": item.state,
        "reason": item.reason,
        "band": item.band,
        "distance": item.distance,
        "source": "human",
    }
    if resolved is not None:
        label.update(
            choice=resolved.choice,
            agreement=resolved.share,
            raters=resolved.raters,
            batch=resolved.batch,
        )
    return {
        "@timestamp": iso(item.ts),
        "model": {"name": item.model, "version": item.version},
        "slice": item.slice,
        "label": label,
    }


def outbox_items(items: Sequence[QueueItem]) -> list[OutboxItem]:
    """Queue items as outbox documents: what the embedded runner's shipper sends (into the one
    ``<prefix>-label-queue`` index, not a daily one: see ``is_queue``)."""
    return [OutboxItem(TARGET, i.request_id, i.ts, orjson.dumps(queue_document(i))) for i in items]


def is_queue(target: str) -> bool:
    return target == TARGET


async def ensure_index(sink: ElasticSink) -> str:
    """The queue's index, created with its strict mapping when absent; returns its name."""
    index = sink.names.alias(TARGET)
    if not (await sink.client.indices.exists(index=index)).body:
        await sink.client.options(ignore_status=400).indices.create(
            index=index,
            mappings=MAPPINGS,
            settings={"number_of_shards": 1},
        )
    return index


async def index_queue(
    sink: ElasticSink,
    items: Sequence[QueueItem],
    resolved: Mapping[str, HumanLabel] | None = None,
) -> list[Rejection]:
    """Create the index with its mapping when absent, then index ``items`` until acknowledged."""
    index = await ensure_index(sink)
    found = resolved or {}
    docs = [
        Doc(index, i.request_id, orjson.dumps(queue_document(i, found.get(i.request_id))))
        for i in items
    ]
    return await sink.index_until_acked(docs)
