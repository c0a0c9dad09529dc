"""The runner fills the labelling queue itself (docs/labelling.md, ``labelling.queue_on_incident``).

    accepted serving record --> Recent (the last ``recent_records`` per model, in memory)
    incident opened (drift, concept drift) --> incident_trigger --> Sampler over Recent's records
      of its model, within what the day's budget has left --> label_store.enqueue (the store)
    judged window of labels (labels on, a slice key) with a slice's label coverage below
      labelling.min_coverage --> coverage_triggers --> the same, from that slice's recent records
      (+ with Elasticsearch, each item's document to the outbox in the same transaction: the
      shipper indexes it into <prefix>-label-queue, _id its request id)

What ``logdrift label queue`` does from a log file, done as the incident opens, from the records
the runner has just seen. Idempotent: the queue holds a request id once (a replayed journal, a
restart or a second incident never queue a record twice), and the budget counts what the store
already holds for the day. Sensitive raw values stay in memory only: items keep what raters may
see (``visible_features``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from config.settings import LabellingSettings
from connectors import es_labelling, label_store
from connectors.store import AnomalyStore
from detectors.baseline.reference import Baseline
from detectors.incidents.tracker import Incident
from detectors.labels.monitor import LabelReport
from detectors.labels.queue import (
    QueueItem,
    QueueOptions,
    Recent,
    Sampler,
    Trigger,
    coverage_triggers,
    incident_trigger,
)
from detectors.records import ServingRecord
from detectors.stats import OTHER
from streams.labelling import candidate


@dataclass(frozen=True, slots=True)
class Queued:
    """What one trigger (an opened incident, a window of low label coverage) put in the queue."""

    model: str
    why: str  # "drift incident <id>", "label coverage 1.2% < 5.0% in slice shoes"
    ts: float  # event time of the trigger
    items: list[QueueItem]
    left: int  # of the model's budget for that day, after these

    def line(self) -> str:
        return (
            f"labelling: queued {len(self.items)} records of {self.model} for {self.why} "
            f"({self.left} left of the day's budget)"
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
        min_coverage: float = 0.0,
    ) -> None:
        self.min_coverage = min_coverage  # 0: no coverage triggers
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
        """Sample for every incident that calls for raters; one at a time, so each sees the
        budget the one before it spent."""
        out = []
        for incident in incidents:
            trigger = incident_trigger(incident, self.slice_key)
            if trigger is not None:
                why = f"{incident.kind} incident {incident.id}"
                out.append(self._sample(incident.model, [trigger], why, trigger.ts))
        return out

    def labelled(self, reports: Sequence[LabelReport]) -> list[Queued]:
        """Sample the slices whose share of labelled predictions in a judged window of labels is
        below ``min_coverage`` (labelling.min_coverage): their recent records (the window's own
        are long gone by the time its labels are judged)."""
        out = []
        for r in reports:
            if r.slice_key is None or r.slice_key != self.slice_key or self.min_coverage <= 0:
                continue
            predictions = {s: int(m.get("predictions", 0)) for s, m in r.slices.items()}
            labelled = {s: int(m.get("labelled", 0)) for s, m in r.slices.items()}
            predictions.pop(OTHER, None)  # the slices past the top K: no records carry that name
            # A slice of fewer predictions than 1 / min_coverage says nothing of its coverage
            # (a single label would put it past the share): it waits for a fuller window.
            fewest = math.ceil(1.0 / self.min_coverage)
            predictions = {s: n for s, n in predictions.items() if n >= fewest}
            triggers = coverage_triggers(r.model, predictions, labelled, self.min_coverage, r.end)
            if triggers:
                why = "; ".join(t.reason for t in triggers)
                queued = self._sample(r.model, triggers, why, r.end)
                if queued.items:  # a window each: said when it queued something
                    out.append(queued)
        return out

    def _sample(self, model: str, triggers: list[Trigger], why: str, ts: float) -> Queued:
        baseline = self.baselines.get(model) or self.baselines.get(None)
        sampler = Sampler(
            triggers,
            baseline,
            self.options,
            label_store.used_budget(self.store),
            label_store.queued_ids(self.store),
        )
        if sampler.left.get(model, 0) > 0:  # the day's budget spent: no distance computed
            for c in self.recent.of(model):
                sampler.offer(c)
        chosen = sampler.take()
        docs = es_labelling.outbox_items(chosen) if self.index else []
        label_store.enqueue(self.store, chosen, docs)  # one transaction
        return Queued(model, why, ts, chosen, sampler.left.get(model, 0) - len(chosen))


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
        settings.min_coverage,
    )
