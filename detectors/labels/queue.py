"""Choosing what raters label: a stratified, weighted sample of serving records, within a budget.

    trigger (incident opened, slice coverage low) --> candidates of its model (and slice)
      --> distance from training per record --> band (near / mid / far)
      --> one weighted reservoir per slice (far records weigh more: the region that moved)
      --> queue items, each with its reason; sensitive raw values left out

Memory is bounded by the budget: each reservoir keeps at most its quota, however many records
are offered. Keys are keyed hashes of the request id, so a re-run picks the same records.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from detectors.baseline.profile import category_text
from detectors.baseline.reference import Baseline, FeatureReference
from detectors.incidents.tracker import Incident
from detectors.privacy import keyed_hash

DAY = 86_400.0
BANDS = ("near", "mid", "far")
BAND_WEIGHTS = {"near": 1.0, "mid": 2.0, "far": 4.0}
STATES = ("queued", "exported", "labelled", "review")  # review: a tie or low agreement


@dataclass(frozen=True, slots=True)
class Trigger:
    """Why records of a model (and a slice, or the whole model when None) are to be labelled."""

    model: str
    reason: str
    ts: float  # event time the need was seen: the day its budget counts against
    slice: str | None = None
    since: float = -math.inf  # only records at or after this event time
    until: float = math.inf  # and at or before this one (a resolved incident's end)


@dataclass(frozen=True, slots=True)
class Candidate:
    request_id: str
    ts: float
    model: str
    version: str
    slice: str | None
    features: Mapping[str, Any]
    prediction: float | None


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One record chosen for rating, as the queue keeps it."""

    request_id: str
    model: str
    version: str
    ts: float
    slice: str | None
    distance: float
    band: str
    reason: str
    features: dict[str, Any]  # what raters may see: no sensitive raw value
    prediction: float | None
    state: str = "queued"

    def to_plain(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_plain(cls, data: Mapping[str, Any]) -> QueueItem:
        return cls(**{name: data[name] for name in cls.__slots__ if name in data})


def distance(baseline: Baseline, features: Mapping[str, Any]) -> float:
    """How far one record lies from training, in [0, 1]: one minus the Bonferroni-combined tail
    probability of its most unusual feature (a numeric value's two-sided tail under the training
    bins; a category's share of training at most as common as it). A typical record scores low
    however many features it has; one value past the training's support, or an unseen category,
    scores 1 even when every other feature is ordinary."""
    tails = [
        _tail(ref, features[name], baseline.privacy_key)
        for name, ref in baseline.references.items()
        if name in features and features[name] is not None
    ]
    return 1.0 - min(1.0, len(tails) * min(tails)) if tails else 0.0


def _tail(ref: FeatureReference, value: Any, key: bytes) -> float:
    if ref.numeric:
        if isinstance(value, bool) or not isinstance(value, int | float) or not ref.edges:
            return 0.0
        x = float(value)
        if not math.isfinite(x) or x < ref.edges[0] or x > ref.edges[-1]:
            return 0.0
        i = min(max(bisect.bisect_right(ref.edges, x) - 1, 0), len(ref.bin_probs) - 1)
        below = sum(ref.bin_probs[:i]) + ref.bin_probs[i] / 2  # mid-bin cumulative share
        return 2.0 * min(below, 1.0 - below)
    probs = ref.category_probs
    text = category_text(value)
    p = probs.get(keyed_hash(key, text) if ref.spec.sensitive else text)  # as the profile keeps it
    return 0.0 if p is None else sum(q for q in probs.values() if q <= p)


def band(d: float) -> str:
    return BANDS[min(int(d * 3), 2)]


def visible_features(baseline: Baseline | None, features: Mapping[str, Any]) -> dict[str, Any]:
    """The features raters may see: a sensitive one only where the schema allows it."""
    if baseline is None:
        return dict(features)
    shown = {}
    for name, value in features.items():
        ref = baseline.references.get(name)
        if ref is not None and ref.spec.sensitive and not ref.spec.raters_may_see:
            continue
        shown[name] = value
    return shown


@dataclass(slots=True)
class Reservoir:
    """Weighted sampling without replacement (Efraimidis and Spirakis): keep the ``size`` largest
    ``u ** (1 / w)``, with ``u`` a hash of the request id in (0, 1)."""

    size: int
    heap: list[tuple[float, str, QueueItem]] = field(default_factory=list)

    def offer(self, key: float, item: QueueItem) -> None:
        entry = (key, item.request_id, item)
        if len(self.heap) < self.size:
            heapq.heappush(self.heap, entry)
        elif self.heap and entry[:2] > self.heap[0][:2]:
            heapq.heapreplace(self.heap, entry)


@dataclass(frozen=True, slots=True)
class QueueOptions:
    budget: int = 200  # records per model per day
    seed: bytes = b"logdrift-label-queue"

    def __post_init__(self) -> None:
        if self.budget < 0:
            raise ValueError(f"budget must be >= 0, got {self.budget}")


class Sampler:
    """Offer candidates for some triggers; ``take`` gives the sample, within what each model has
    left of its day's budget (``used``: items already queued per (model, day))."""

    def __init__(
        self,
        triggers: list[Trigger],
        baseline: Baseline | None,
        options: QueueOptions,
        used: Mapping[tuple[str, int], int],
        queued: frozenset[str] = frozenset(),
    ) -> None:
        self.baseline = baseline
        self.options = options
        self.queued = queued  # request ids already in the queue: never chosen twice
        # A change local to one slice often shows in the whole model too: where a model has
        # slice triggers, its model-wide ones are dropped, so the budget goes where it moved.
        sliced = {t.model for t in triggers if t.slice is not None}
        self.triggers: dict[tuple[str, str | None], Trigger] = {}
        for t in triggers:
            if t.slice is not None or t.model not in sliced:
                self.triggers.setdefault((t.model, t.slice), t)
        left: dict[str, int] = {}
        for t in self.triggers.values():
            day = int(t.ts // DAY)
            left.setdefault(t.model, max(0, options.budget - used.get((t.model, day), 0)))
        self.left = left
        self.reservoirs: dict[tuple[str, str | None], Reservoir] = {}
        for model, n in left.items():
            keys = [k for k in self.triggers if k[0] == model]
            for i, key in enumerate(keys):  # the budget split evenly across the model's slices
                self.reservoirs[key] = Reservoir(n // len(keys) + (i < n % len(keys)))
        self.offered = 0

    def offer(self, c: Candidate) -> None:
        trigger = self.triggers.get((c.model, c.slice)) or self.triggers.get((c.model, None))
        if trigger is None or not trigger.since <= c.ts <= trigger.until:
            return
        if c.request_id in self.queued:
            return
        self.offered += 1
        d = distance(self.baseline, c.features) if self.baseline is not None else 0.0
        b = band(d)
        item = QueueItem(
            c.request_id,
            c.model,
            c.version,
            c.ts,
            c.slice,
            round(d, 4),
            b,
            f"{trigger.reason}; {b} from training",
            visible_features(self.baseline, c.features),
            c.prediction,
        )
        key = _unit(self.options.seed, c.request_id) ** (1.0 / BAND_WEIGHTS[b])
        self.reservoirs[(trigger.model, trigger.slice)].offer(key, item)

    def take(self) -> list[QueueItem]:
        items = [e[2] for r in self.reservoirs.values() for e in r.heap]
        return sorted(items, key=lambda i: (i.model, i.ts, i.request_id))


@dataclass(slots=True)
class Recent:
    """The last ``size`` serving records of each model, the pool a trigger seen while running
    samples from (``logdrift run``): memory is ``size`` records per model, however many come."""

    size: int
    by_model: dict[str, deque[Candidate]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")

    def offer(self, c: Candidate) -> None:
        kept = self.by_model.get(c.model)
        if kept is None:
            kept = self.by_model[c.model] = deque(maxlen=self.size)
        kept.append(c)

    def of(self, model: str) -> list[Candidate]:
        return list(self.by_model.get(model, ()))


def _unit(seed: bytes, request_id: str) -> float:
    digest = hashlib.blake2b(request_id.encode(), key=seed[:64], digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 1) / (2**64 + 2)


LABELLED_KINDS = frozenset({"drift", "concept_drift"})  # incidents that call for raters


def incident_trigger(incident: Incident, slice_key: str | None) -> Trigger | None:
    """The trigger of a drift or concept-drift incident: its model and slice, from its opening on
    (other kinds, schema skew or data quality, are not answered by labels)."""
    if incident.kind not in LABELLED_KINDS:
        return None
    slice_ = incident.slice.get(slice_key) if slice_key else None
    where = f" in slice {slice_key}={slice_}" if slice_ is not None else ""
    reason = f"{incident.kind} incident {incident.id} on {incident.feature}{where}"
    until = math.inf if incident.resolved_at is None else incident.resolved_at
    return Trigger(
        incident.model, reason, incident.opened_at, slice_, incident.opened_window, until
    )


def coverage_triggers(
    model: str,
    predictions: Mapping[str, int],
    labelled: Mapping[str, int],
    min_share: float,
    ts: float,
) -> list[Trigger]:
    """A trigger for each slice whose share of labelled predictions is below ``min_share``.

    >>> [t.reason for t in coverage_triggers("ctr", {"shoes": 100}, {"shoes": 2}, 0.05, 0.0)]
    ['label coverage 2.0% < 5.0% in slice shoes']
    """
    out = []
    for name, n in sorted(predictions.items()):
        share = labelled.get(name, 0) / n if n else 1.0
        if share < min_share:
            reason = f"label coverage {share:.1%} < {min_share:.1%} in slice {name}"
            out.append(Trigger(model, reason, ts, name))
    return out
