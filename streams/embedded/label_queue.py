"""The runner fills the labelling queue itself (docs/labelling.md, ``labelling.queue_on_incident``).

    accepted serving record --> Recent (the last ``recent_records`` per model, in memory)
    incident opened (drift, concept drift) --> incident_trigger --> Sampler over Recent's records
      of its model, within what the day's budget has left --> label_store.enqueue (the store)
      (+ with Elasticsearch, each item's document to the outbox in the same transaction: the
      shipper indexes it into <prefix>-label-queue, _id its request id)

What ``logdrift label queue`` does from a log file, done as the incident opens, from the records
the runner has just seen. Idempotent: the queue holds a request id once (a replayed journal, a
restart or a second incident never queue a record twice), and the budget counts what the store
already holds for the day. Sensitive raw values stay in memory only: items keep what raters may
see (``visible_features``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from config.settings import LabellingSettings
from connectors import es_labelling, label_store
from connectors.store import AnomalyStore
from detectors.baseline.reference import Baseline
from detectors.incidents.tracker import Incident
from detectors.labels.queue import QueueItem, QueueOptions, Recent, Sampler, incident_trigger
from detectors.records import ServingRecord
from streams.labelling import candidate


@dataclass(frozen=True, slots=True)
class Queued:
    """What one opened incident put in the queue."""

    incident: Incident
    items: list[QueueItem]
    left: int  # of the model's budget for that day, after these

    def line(self) -> str:
        return (
            f"labelling: queued {len(self.items)} records of {self.incident.model} for "
            f"{self.incident.kind} incident {self.incident.id} ({self.left} left of the "
            "day's budget)"
        )


class RunnerQueue:
    def __init__(
        self,
        store: AnomalyStore,
        baselines: Mapping[str | None, Baseline],
        options: QueueOptions,
        slice_key: str | None,
        recent: int,
        index: bool = False,
    ) -> None:
        self.store = store
        self.index = index  # Elasticsearch configured: each item's document to the outbox
        self.baselines = baselines
        self.options = options
        self.slice_key = slice_key
        self.recent = Recent(recent)

    def offer(self, record: ServingRecord) -> None:
        if (c := candidate(record, self.slice_key)) is not None:
            self.recent.offer(c)

    def opened(self, incidents: Sequence[Incident]) -> list[Queued]:
        """Sample for every incident that calls for raters; one model's incidents one at a time,
        so each sees the budget the one before it spent."""
        out = []
        for incident in incidents:
            trigger = incident_trigger(incident, self.slice_key)
            if trigger is None:
                continue
            baseline = self.baselines.get(incident.model) or self.baselines.get(None)
            sampler = Sampler(
                [trigger],
                baseline,
                self.options,
                label_store.used_budget(self.store),
                label_store.queued_ids(self.store),
            )
            for c in self.recent.of(incident.model):
                sampler.offer(c)
            chosen = sampler.take()
            docs = es_labelling.outbox_items(chosen) if self.index else []
            label_store.enqueue(self.store, chosen, docs)  # one transaction
            out.append(Queued(incident, chosen, sampler.left[incident.model] - len(chosen)))
        return out


def runner_queue(
    settings: LabellingSettings,
    store: AnomalyStore,
    baselines: Mapping[str | None, Baseline],
    slice_key: str | None,
    index: bool = False,
) -> RunnerQueue | None:
    """None unless ``labelling.queue_on_incident``; ``index``: also to Elasticsearch (through
    the store's outbox and the runner's shipper, into ``<prefix>-label-queue``)."""
    if not settings.queue_on_incident:
        return None
    return RunnerQueue(
        store,
        baselines,
        QueueOptions(settings.budget_per_day),
        slice_key,
        settings.recent_records,
        index,
    )
