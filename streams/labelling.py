"""Human labelling, wired: serving logs and incidents -> the queue; Label Studio's answers ->
agreement, resolved labels, feedback marked human, a training set (docs/labelling.md).

    store incidents + serving log file (+ feedback file) --> detectors.labels.queue --> store queue
    store queue --> Label Studio tasks (file or HTTP) ... raters ... export (file or HTTP)
      --> connectors.label_studio_format.parse_export --> detectors.labels.agreement --> store
      labels
      --> feedback records (label_source "human") and `logdrift label dataset`
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from config.settings import ElasticsearchSettings
from connectors import es_labelling, label_store
from connectors.elasticsearch import ElasticSink, Rejection
from connectors.files import FileFormatError, iter_json_lines
from connectors.label_store import HumanLabel
from connectors.label_studio_format import ParsedExport
from connectors.store import AnomalyStore
from detectors.baseline.reference import Baseline
from detectors.labels.agreement import AgreementOptions, BatchAgreement, agreement
from detectors.labels.queue import (
    Candidate,
    QueueItem,
    QueueOptions,
    Sampler,
    Trigger,
    coverage_triggers,
    incident_trigger,
)
from detectors.records import (
    LABEL_SOURCE,
    DecodeError,
    FieldMapping,
    ServingRecord,
    decode_feedback,
    decode_record,
    is_feedback,
)


@dataclass(slots=True)
class Filled:
    triggers: list[Trigger]
    offered: int
    queued: int
    bad_lines: list[str]  # the first few reasons; ``bad`` counts them all
    bad: int
    budget_left: dict[str, int]


def _serving(path: Path, mapping: FieldMapping) -> Iterator[tuple[Any, str | None]]:
    """(record, None) per decodable serving record, (None, reason) per bad line; feedback lines
    are skipped (a mixed log holds both)."""
    for number, row in iter_json_lines(path):
        if isinstance(row, FileFormatError):
            yield None, str(row)
            continue
        if is_feedback(row, mapping):
            continue
        try:
            yield decode_record(row, mapping), None
        except DecodeError as exc:
            yield None, f"{path}:{number}: {exc}"


def read_feedback(path: Path | None, mapping: FieldMapping) -> dict[str, float]:
    """request id -> label, from a JSON-lines file of feedback records (bad lines skipped)."""
    if path is None:
        return {}
    found: dict[str, float] = {}
    for _, row in iter_json_lines(path):
        if isinstance(row, dict) and is_feedback(row, mapping):
            try:
                fb = decode_feedback(row, mapping)
            except DecodeError:
                continue
            found[fb.request_id] = fb.label
    return found


def fill_queue(
    store: AnomalyStore,
    logs: Path,
    baseline: Baseline | None,
    mapping: FieldMapping,
    *,
    slice_key: str | None,
    options: QueueOptions,
    min_coverage: float,
    feedback: Mapping[str, float],
) -> Filled:
    """Triggers from the store's drift and concept-drift incidents and from slice coverage in
    ``logs`` (labelled by ``feedback``); then one pass offering ``logs``' records to the sampler."""
    triggers = [t for i in store.incidents() if (t := incident_trigger(i, slice_key))]
    triggers += _coverage(logs, mapping, slice_key, min_coverage, feedback)
    queued = frozenset(i.request_id for i in label_store.queue(store))
    sampler = Sampler(triggers, baseline, options, label_store.used_budget(store), queued)
    bad: list[str] = []
    nbad = 0
    for record, problem in _serving(logs, mapping):
        if record is None:
            nbad += 1
            if len(bad) < 20 and problem:
                bad.append(problem)
            continue
        if (c := candidate(record, slice_key)) is not None:
            sampler.offer(c)
    chosen = sampler.take()
    added = label_store.enqueue(store, chosen)
    left = {m: n - sum(i.model == m for i in chosen) for m, n in sampler.left.items()}
    return Filled(triggers, sampler.offered, added, bad, nbad, left)


def candidate(record: ServingRecord, slice_key: str | None) -> Candidate | None:
    """A serving record as the sampler takes it; None without a request id (nothing to join the
    raters' answer to)."""
    if record.request_id is None:
        return None
    prediction = record.prediction if isinstance(record.prediction, int | float) else None
    return Candidate(
        record.request_id,
        record.ts,
        record.model,
        record.version,
        record.slice.get(slice_key) if slice_key else None,
        record.features,
        None if prediction is None else float(prediction),
    )


def _coverage(
    logs: Path,
    mapping: FieldMapping,
    slice_key: str | None,
    min_coverage: float,
    feedback: Mapping[str, float],
) -> list[Trigger]:
    if slice_key is None or not feedback or min_coverage <= 0:
        return []  # coverage is a share of labelled predictions: no labels, no measure
    predictions: Counter[tuple[str, str]] = Counter()
    labelled: Counter[tuple[str, str]] = Counter()
    newest: dict[str, float] = {}
    for record, _ in _serving(logs, mapping):
        if record is None or slice_key not in record.slice:
            continue
        key = (record.model, record.slice[slice_key])
        predictions[key] += 1
        labelled[key] += record.request_id in feedback
        newest[record.model] = max(newest.get(record.model, record.ts), record.ts)
    out = []
    for model, ts in newest.items():
        mine = {s: n for (m, s), n in predictions.items() if m == model}
        have = {s: n for (m, s), n in labelled.items() if m == model}
        out += coverage_triggers(model, mine, have, min_coverage, ts)
    return out


@dataclass(slots=True)
class Imported:
    batch: str
    figures: BatchAgreement
    labels: list[HumanLabel]
    errors: list[str] = field(default_factory=list)


def import_answers(
    store: AnomalyStore,
    parsed: ParsedExport,
    choices: Mapping[str, float],
    feedback: Mapping[str, float],
    options: AgreementOptions,
    batch: str,
) -> Imported:
    """Agreement and resolution of one batch; every answer and resolution kept in the store."""
    by_value = {v: c for c, v in choices.items()}
    fb_choice = {
        r: by_value[v] for r, v in feedback.items() if r in parsed.answers and v in by_value
    }
    figures = agreement(parsed.answers, fb_choice, options)
    models = {i.request_id: i.model for i in label_store.queue(store)}
    labels = [
        HumanLabel(r.item, models[r.item], r.label, r.share, r.raters, r.flagged, batch)
        for r in figures.resolutions
    ]
    label_store.put_answers(store, parsed.answers, labels)
    label_store.set_task_ids(store, parsed.task_ids)
    return Imported(batch, figures, labels, list(parsed.errors))


def human_feedback(
    labels: Sequence[HumanLabel], choices: Mapping[str, float], ts: float | None = None
) -> list[dict[str, Any]]:
    """Resolved labels as feedback records, marked human: what the label path reads."""
    now = time.time() if ts is None else ts
    return [
        {"ts": now, "request_id": h.request_id, "label": choices[h.choice], LABEL_SOURCE: "human"}
        for h in labels
        if h.choice is not None and not h.flagged
    ]


def dataset_rows(store: AnomalyStore, choices: Mapping[str, float]) -> list[dict[str, Any]]:
    """One row per resolved item: its features, the label, where it came from, its agreement."""
    items = {i.request_id: i for i in label_store.queue(store)}
    rows = []
    for h in label_store.human_labels(store):
        item: QueueItem | None = items.get(h.request_id)
        if item is None or h.choice is None:
            continue
        row: dict[str, Any] = {
            "request_id": h.request_id,
            "model": h.model,
            "model_version": item.version,
            "ts": item.ts,
            "slice": item.slice,
        }
        row.update({f"feature.{k}": v for k, v in item.features.items()})
        row.update(
            label=choices[h.choice],
            label_choice=h.choice,
            source="human",
            agreement=h.share,
            raters=h.raters,
            batch=h.batch,
            reason=item.reason,
        )
        rows.append(row)
    return rows


def index_queue(settings: ElasticsearchSettings, store: AnomalyStore) -> int | None:
    """Every queue item, with its resolution where there is one, into ``<prefix>-label-queue``;
    None when Elasticsearch is not configured. Raises ``LabellingIndexError`` on rejections."""
    if settings.url is None:
        return None
    items = label_store.queue(store)
    resolved = {h.request_id: h for h in label_store.human_labels(store, resolved_only=False)}

    async def send() -> list[Rejection]:
        sink = ElasticSink.from_settings(settings)
        try:
            return await es_labelling.index_queue(sink, items, resolved)
        finally:
            await sink.close()

    rejected = asyncio.run(send())
    if rejected:
        first = rejected[0]
        raise LabellingIndexError(
            f"Elasticsearch refused {len(rejected)} queue documents "
            f"(first: {first.doc.doc_id}: {first.reason})"
        )
    return len(items)


class LabellingIndexError(RuntimeError):
    pass


def json_lines(rows: Sequence[Mapping[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)
