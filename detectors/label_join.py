"""The Kafka worker's label join: a stream-stream join of serving-logs and feedback by request id,
its state in a keyed store (a changelog-backed table partitioned like both topics).

A prediction waits for its label; a label read before its prediction (the two topics are read
side by side, and after an outage one runs ahead of the other) waits for its prediction. Each
side's clock expires the other side's waiting entries, per partition:

- a prediction expires once the partition's labels are ``horizon`` past it in event time
  (its label can no longer come), or when ``cap`` predictions wait (evicted, oldest first);
- a label expires (``unmatched``) once the partition's predictions are ``LABEL_WAIT`` past it:
  its prediction, never later than the label, would have been read by then.

Beside the store this class keeps only arrival-ordered indexes of (ts, partition, key), rebuilt
from the store after every rebalance. The oldest entry of a lagging partition holds back the
expiry of younger entries until that partition catches up; the cap still bounds what is held.

>>> store = MemoryStore()
>>> join = LabelJoin(store, horizon=3600.0, cap=2)
>>> join.hold("a", Pending(0.0, 0, 0.9, "ctr", "3", None, ())) is None
True
>>> join.label("a", Label(60.0, 0, 1.0)).prediction  # the label finds its prediction
0.9
>>> join.label("b", Label(70.0, 0, 0.0)) is None  # read before its prediction: it waits
True
>>> join.hold("b", Pending(65.0, 0, 0.2, "ctr", "3", None, ())).label  # and is found
0.0
>>> join.stats.joined, len(store)
(2, 0)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from detectors.feedback import PendingStats

LABEL_WAIT = 60.0  # event-time seconds a label waits past its partition's prediction clock
LABEL_KEY = "\x1flabel\x1f"  # prefix of a waiting label's key: apart from predictions' keys


@dataclass(frozen=True, slots=True)
class Pending:
    """One logged prediction waiting for its label: what the judge needs once it arrives."""

    ts: float
    partition: int  # of serving-logs (and so of the store's changelog)
    prediction: float
    model: str
    version: str
    slice: str | None
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Label:
    """One label (feedback) waiting for its prediction."""

    ts: float
    partition: int
    label: float
    offset: int = -1  # in the feedback partition: where it was read


class PendingStore(Protocol):
    def get(self, key: str) -> Pending | Label | None: ...
    def put(self, key: str, entry: Pending | Label) -> None: ...
    def delete(self, partition: int, key: str) -> None: ...


class MemoryStore(dict[str, Pending | Label]):
    """A store in a dict: for tests."""

    def put(self, key: str, entry: Pending | Label) -> None:
        self[key] = entry

    def delete(self, partition: int, key: str) -> None:
        self.pop(key, None)


class Waiting:
    """One side's entries in the store, in arrival order: what is due to leave first."""

    def __init__(self, store: PendingStore) -> None:
        self.store = store
        self.live = 0
        self.order: deque[tuple[float, int, str]] = deque()

    def add(self, key: str, entry: Pending | Label) -> None:
        if self.store.get(key) is None:
            self.live += 1
        self.store.put(key, entry)
        self.order.append((entry.ts, entry.partition, key))

    def remove(self, key: str, partition: int) -> None:
        self.store.delete(partition, key)
        self.live -= 1

    def pop_due(self, due: Callable[[float, int], bool]) -> int:
        """Remove entries from the oldest on while ``due(ts, partition)``; how many were live."""
        removed = 0
        while self.order:
            ts, partition, key = self.order[0]
            if not due(ts, partition) and self._live(ts, partition, key):
                break  # the oldest waits: so do younger ones
            removed += self._pop()
        return removed

    def pop_over(self, cap: int) -> int:
        removed = 0
        while self.live > cap and self.order:
            removed += self._pop()
        return removed

    def rebuild(self, entries: Iterable[tuple[str, Pending | Label]]) -> None:
        self.order = deque(sorted((e.ts, e.partition, k) for k, e in entries))
        self.live = len(self.order)

    def _pop(self) -> int:
        ts, partition, key = self.order.popleft()
        if not self._live(ts, partition, key):
            return 0  # joined, or written again later: a newer index entry stands for it
        self.remove(key, partition)
        return 1

    def _live(self, ts: float, partition: int, key: str) -> bool:
        entry = self.store.get(key)
        return entry is not None and entry.ts == ts and entry.partition == partition


class LabelJoin:
    def __init__(self, store: PendingStore, horizon: float, cap: int) -> None:
        if not horizon > 0:
            raise ValueError(f"horizon must be positive (event-time seconds), got {horizon}")
        if cap < 1:
            raise ValueError(f"cap must be at least 1 entry, got {cap}")
        self.store, self.horizon, self.cap = store, horizon, cap
        self.stats = PendingStats()
        self.predictions = Waiting(store)
        self.labels = Waiting(store)
        self._prediction_clock: dict[int, float] = {}
        self._label_clock: dict[int, float] = {}

    @property
    def live(self) -> int:
        return self.predictions.live

    def hold(self, request_id: str, entry: Pending) -> Label | None:
        """Keep a prediction for its label; the label, when it was already waiting."""
        _advance(self._prediction_clock, entry.partition, entry.ts)
        label = self.store.get(LABEL_KEY + request_id)
        if isinstance(label, Label):
            self.labels.remove(LABEL_KEY + request_id, label.partition)
            return label if self._joins(entry, label) else None
        previous = self.store.get(request_id)
        if previous is not None and previous != entry:  # the same record again is not news
            self.stats.replaced += 1
        self.predictions.add(request_id, entry)
        self.stats.added += 1
        self.stats.evicted += self.predictions.pop_over(self.cap)
        self._expire()
        return None

    def label(self, request_id: str, label: Label) -> Pending | None:
        """The prediction this label belongs to, removed from the store; None when it is not
        there (yet: the label waits for it)."""
        _advance(self._label_clock, label.partition, label.ts)
        entry = self.store.get(request_id)
        if isinstance(entry, Pending):
            self.predictions.remove(request_id, entry.partition)
            found = entry if self._joins(entry, label) else None
        else:
            self.labels.add(LABEL_KEY + request_id, label)
            self.stats.unmatched += self.labels.pop_over(self.cap)
            found = None
        self._expire()
        return found

    def clocks(self) -> dict[int, tuple[float, float]]:
        """Per partition, the newest prediction and label read (event time; -inf: none yet)."""
        parts = self._prediction_clock.keys() | self._label_clock.keys()
        return {
            p: (self._prediction_clock.get(p, -math.inf), self._label_clock.get(p, -math.inf))
            for p in sorted(parts)
        }

    def rebuild(self, entries: Iterable[tuple[str, Pending | Label]], partitions: set[int]) -> None:
        """Index the store's entries of the partitions this worker now owns (after recovery)."""
        owned = [(k, e) for k, e in entries if e.partition in partitions]
        self.predictions.rebuild((k, e) for k, e in owned if isinstance(e, Pending))
        self.labels.rebuild((k, e) for k, e in owned if isinstance(e, Label))
        for clock in (self._prediction_clock, self._label_clock):
            for p in [p for p in clock if p not in partitions]:
                del clock[p]

    def _joins(self, entry: Pending, label: Label) -> bool:
        if label.ts - entry.ts > self.horizon:
            self.stats.expired += 1  # the label came too late for it
            self.stats.unmatched += 1
            return False
        self.stats.joined += 1
        self.stats.latency.update(max(0.0, label.ts - entry.ts))
        return True

    def _expire(self) -> None:
        labels, predictions = self._label_clock, self._prediction_clock
        self.stats.expired += self.predictions.pop_due(
            lambda ts, p: ts < labels.get(p, -math.inf) - self.horizon
        )
        self.stats.unmatched += self.labels.pop_due(
            lambda ts, p: ts + LABEL_WAIT < predictions.get(p, -math.inf)
        )


def watermark(clocks: dict[int, tuple[float, float]]) -> float:
    """What every partition has passed, predictions and labels alike: the label judge may close
    windows up to here. A side never seen in a partition (no labels there yet) does not count.

    >>> watermark({0: (100.0, 90.0), 1: (80.0, -math.inf)})
    80.0
    """
    seen = [ts for pair in clocks.values() for ts in pair if ts > -math.inf]
    return min(seen, default=-math.inf)


def _advance(clock: dict[int, float], partition: int, ts: float) -> None:
    if ts > clock.get(partition, -math.inf):
        clock[partition] = ts
