"""Pending predictions waiting for their label (process feedback), with bounded memory.

A prediction is held by request id until its label arrives, until it is older than the horizon
in event time (expired unlabelled), or until the hard cap on entries pushes it out (evicted).
Entries live in flat typed arrays used as a ring in arrival order, plus one dict from a 64-bit
hash of the request id to the entry's slot: about 150 bytes per pending prediction in all
(``tests/unit/detectors/labels/test_feedback.py`` measures it; RSS grows ~177), not a dict of
objects. The hash is Python's, salted per process: this state lives in one process (the Kafka
worker's table will key by the request id itself).

>>> p = PendingPredictions(horizon=3600.0, cap=2)
>>> p.add("a", ts=0.0, prediction=0.9, model=0, slice_=0, groups=0)
>>> p.add("b", ts=10.0, prediction=0.2, model=0, slice_=0, groups=0)
>>> p.join("a", ts=60.0).latency
60.0
>>> p.join("a", ts=61.0) is None  # joined once; a repeated label finds nothing
True
>>> p.add("c", ts=20.0, prediction=0.5, model=0, slice_=0, groups=0)
>>> p.expire(watermark=3615.0), p.stats.expired
(1, 1)
>>> p.add("d", ts=30.0, prediction=0.5, model=0, slice_=0, groups=0)
>>> p.add("e", ts=40.0, prediction=0.5, model=0, slice_=0, groups=0)
>>> p.stats.evicted, len(p)
(1, 2)
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

import datasketches as ds

LATENCY_K = 200  # KLL accuracy parameter: rank error about 1.3%, a few KB whatever the count


@dataclass(frozen=True, slots=True)
class Joined:
    """A prediction whose label arrived: what it predicted and where it belongs."""

    ts: float
    prediction: float
    model: int
    slice_: int
    groups: int
    latency: float  # event-time seconds from prediction to label


@dataclass(slots=True)
class PendingStats:
    added: int = 0
    joined: int = 0
    expired: int = 0  # older than the horizon, never labelled
    evicted: int = 0  # pushed out by the cap before the horizon: the cap is too small
    unmatched: int = 0  # labels with no pending prediction (never seen, expired, or repeated)
    replaced: int = 0  # a request id logged again while its first prediction was pending
    latency: ds.kll_floats_sketch = field(default_factory=lambda: ds.kll_floats_sketch(LATENCY_K))

    def latency_quantiles(self, qs: tuple[float, ...] = (0.5, 0.9, 0.99)) -> dict[str, float]:
        if self.latency.is_empty():
            return {}
        return {f"p{round(q * 100)}": float(self.latency.get_quantile(q)) for q in qs}


class PendingPredictions:
    """request id -> (ts, prediction, model id, slice id, groups id), bounded by ``cap``.

    Ids of models, slices and groups are small ints interned by the caller. Expiry follows
    arrival order, so a prediction logged out of event-time order leaves with its neighbours.
    """

    def __init__(self, horizon: float, cap: int) -> None:
        if not horizon > 0:
            raise ValueError(f"horizon must be positive (event-time seconds), got {horizon}")
        if cap < 1:
            raise ValueError(f"cap must be at least 1 entry, got {cap}")
        self.horizon = horizon
        self.cap = cap
        self.stats = PendingStats()
        self._index: dict[int, int] = {}
        self._key = array("q")
        self._ts = array("d")
        self._prediction = array("d")
        self._ids = array("i")  # model, slice, groups: three per slot
        self._head = 0  # oldest occupied slot
        self._used = 0  # occupied slots from head on, live or already joined

    def __len__(self) -> int:
        return len(self._index)

    def add(
        self, request_id: str, ts: float, prediction: float, model: int, slice_: int, groups: int
    ) -> None:
        key = hash(request_id)
        if key in self._index:
            self.stats.replaced += 1
        if self._used == self.cap:
            self._pop_head(evicting=True)
        slot = (self._head + self._used) % self.cap
        self._used += 1
        if slot == len(self._key):
            self._key.append(key)
            self._ts.append(ts)
            self._prediction.append(prediction)
            self._ids.extend((model, slice_, groups))
        else:
            self._key[slot], self._ts[slot], self._prediction[slot] = key, ts, prediction
            self._ids[3 * slot : 3 * slot + 3] = array("i", (model, slice_, groups))
        self._index[key] = slot
        self.stats.added += 1

    def join(self, request_id: str, ts: float) -> Joined | None:
        """The pending prediction for this label, removed; None when there is none."""
        slot = self._index.pop(hash(request_id), None)
        if slot is not None and ts - self._ts[slot] > self.horizon:
            self.stats.expired += 1  # nothing newer had expired it yet: the label is too late
            slot = None
        if slot is None:
            self.stats.unmatched += 1
            return None
        self.stats.joined += 1
        latency = max(0.0, ts - self._ts[slot])
        self.stats.latency.update(latency)
        model, slice_, groups = self._ids[3 * slot : 3 * slot + 3]
        return Joined(self._ts[slot], self._prediction[slot], model, slice_, groups, latency)

    def expire(self, watermark: float) -> int:
        """Drop predictions older than the horizon at event time ``watermark``; how many."""
        cutoff = watermark - self.horizon
        before = self.stats.expired
        while self._used and (not self._live(self._head) or self._ts[self._head] < cutoff):
            self._pop_head(evicting=False)
        return self.stats.expired - before

    def _live(self, slot: int) -> bool:
        return self._index.get(self._key[slot]) == slot

    def _pop_head(self, evicting: bool) -> None:
        slot = self._head
        if self._live(slot):
            del self._index[self._key[slot]]
            if evicting:
                self.stats.evicted += 1
            else:
                self.stats.expired += 1
        self._head = (slot + 1) % self.cap
        self._used -= 1
