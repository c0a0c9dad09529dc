"""The worker's window roll-ups: each stage-two owner makes its feature's part of a closed
window's roll-up (``detectors.incidents.tracker``), and one owner per model version merges the
parts:

```
compare_windows ──▶ rollups (key = model/version; one part per feature and closed window)
  ──▶ roll_up_windows   merge the parts (detectors.incidents.rollups.PartialRollUps, state in
                        model_to_rollups) until every feature of the baseline is in
  ──▶ window-rollups    (key = roll-up id) the whole roll-up, the Engine's
  ──▶ index_rollups     (only with elasticsearch.url) into the roll-ups index
```
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Sequence
from typing import Any

from faust.types import EventT

from detectors.incidents.rollups import PartialRollUps, RollUp
from streams.worker import metrics as measured
from streams.worker.agents import (
    INDEXING,
    SUMMARY_BATCH,
    Stopping,
    dead_letter,
    declare_outputs,
    delivered,
    in_batches,
    index_documents,
)
from streams.worker.app import app, detection, kafka
from streams.worker.indexing import ROLLUPS
from streams.worker.payloads import ROLLUP
from streams.worker.tables import decode_state, encode_state, model_to_rollups
from streams.worker.topics import rollups, window_rollups

logger = logging.getLogger("logdrift.worker")
_merged: dict[str, tuple[bytes, PartialRollUps]] = {}


def _load(key: str) -> PartialRollUps:
    stored = model_to_rollups.get(key)
    cached = _merged.get(key)
    if cached is not None and stored is cached[0]:
        return cached[1]
    if stored is None:
        return PartialRollUps()
    try:
        return PartialRollUps.from_plain(decode_state(stored))
    except (KeyError, TypeError, ValueError) as exc:
        logger.warning("%s: roll-up state unreadable (%s); merging afresh", key, exc)
        return PartialRollUps()


async def roll_up_windows(stream: AsyncIterable[Any]) -> None:
    """One owner per model version; its state written once per batch, after the whole
    roll-ups the batch completed were acknowledged."""
    await in_batches(stream, SUMMARY_BATCH, kafka.batch_max_seconds, _merge_batch, _merged.clear)


async def _merge_batch(events: Sequence[EventT[Any]]) -> None:
    measured.consumed(rollups.get_topic_name(), len(events))
    touched: dict[str, PartialRollUps] = {}
    whole: dict[str, RollUp] = {}
    for event in events:
        key = str(event.key)
        value = event.value if isinstance(event.value, bytes) else b""
        try:
            pending = touched[key] = touched.get(key) or _load(key)
            part = ROLLUP.decode(value)
            expected = frozenset(detection().engine.baseline_for(part.model).references)
            done = pending.add(part, expected)
            if done is not None:
                whole[done.id] = done
        except Exception as exc:
            logger.exception("roll_up_windows failed on a part of %s", key)
            await dead_letter(key.encode(), value, repr(exc), "internal_error", key)
    await _send([(i, ROLLUP.encode(r)) for i, r in whole.items()])
    for key, pending in touched.items():
        raw = encode_state(pending.to_plain())
        model_to_rollups[key] = raw
        _merged[key] = (raw, pending)


async def _send(messages: list[tuple[str, bytes]]) -> None:
    """Every whole roll-up acknowledged, retried with backoff (the same ids overwrite)."""
    delay = 0.5
    while messages:
        try:
            await declare_outputs()
            sends = [window_rollups.send(key=k, value=v) for k, v in messages]
            await asyncio.gather(*(delivered(s) for s in sends))
            measured.produced(window_rollups.get_topic_name(), len(messages))
            return
        except Exception as exc:
            if app.should_stop:
                raise Stopping from exc
            logger.exception("could not send %d roll-ups; retrying in %.1f s", len(messages), delay)
            await asyncio.sleep(delay)
            delay = min(2 * delay, 30.0)


app.agent(rollups, concurrency=1, name="roll_up_windows")(roll_up_windows)
if INDEXING:
    app.agent(window_rollups, concurrency=1, name="index_rollups")(index_documents(ROLLUPS))
