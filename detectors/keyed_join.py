"""A stream-stream join by request id with expiry and a bounded pending store, written once
for every join logdrift makes: the worker's label join (a prediction meets its feedback) and the
feature-skew join (a serving record meets the training pipeline's features for it).

The *left* side is what is logged first as a rule (the prediction, the serving record); the
*right* side is what comes to meet it (a label, the pipeline's features). Either may be read
first: the two topics are read side by side, and after an outage one runs ahead of the other.
Each side's clock expires the other side's waiting entries, per partition:

- a left entry expires once the partition's right side is ``horizon`` past it in event time
  (its match can no longer come), or when ``cap`` of them wait (evicted, oldest first);
- a right entry expires (``unmatched``) once the partition's left side is ``RIGHT_WAIT`` past
  it: its left entry, never later than it, would have been read by then.

Beside the store this class keeps only arrival-ordered indexes of (ts, partition, key), rebuilt
from the store after every rebalance. The oldest entry of a lagging partition holds back the
expiry of younger entries until that partition catches up; the cap still bounds what is held.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Side:
...     ts: float
...     partition: int
...     value: str
>>> join = KeyedJoin(MemoryStore(), horizon=60.0, cap=10, left=Side, right=Side)
>>> join.hold("a", Side(0.0, 0, "serving")) is None
True
>>> join.match("a", Side(5.0, 0, "pipeline")).value
'serving'
>>> join.stats.joined, join.live
(1, 0)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

from detectors.labels.feedback import PendingStats

RIGHT_WAIT = 60.0  # event-time seconds a right entry waits past its partition's left clock
RIGHT_KEY = "\x1flabel\x1f"  # prefix of a waiting right entry's key: apart from left keys


class Timed(Protocol):
    @property
    def ts(self) -> float: ...
    @property
    def partition(self) -> int: ...


L = TypeVar("L", bound=Timed)
R = TypeVar("R", bound=Timed)


class PendingStore(Protocol):
    def get(self, key: str) -> Any: ...
    def put(self, key: str, entry: Any) -> None: ...
    def delete(self, partition: int, key: str) -> None: ...


class MemoryStore(dict[str, Any]):
    """A store in a dict: for tests and the embedded runner (bounded by the join's cap)."""

    def put(self, key: str, entry: Any) -> None:
        self[key] = entry

    def delete(self, partition: int, key: str) -> None:
        self.pop(key, None)


class Waiting:
    """One side's entries in the store, in arrival order: what is due to leave first."""

    def __init__(self, store: PendingStore) -> None:
        self.store = store
        self.live = 0
        self.order: deque[tuple[float, int, str]] = deque()

    def add(self, key: str, entry: Timed) -> None:
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

    def rebuild(self, entries: Iterable[tuple[str, Timed]]) -> None:
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


class KeyedJoin(Generic[L, R]):
    """Left entries of type ``left`` wait for right entries of type ``right`` (and back)."""

    def __init__(
        self, store: PendingStore, horizon: float, cap: int, left: type[L], right: type[R]
    ) -> None:
        if not horizon > 0:
            raise ValueError(f"horizon must be positive (event-time seconds), got {horizon}")
        if cap < 1:
            raise ValueError(f"cap must be at least 1 entry, got {cap}")
        self.store, self.horizon, self.cap = store, horizon, cap
        self._left_type, self._right_type = left, right
        self.stats = PendingStats()
        self.lefts = Waiting(store)
        self.rights = Waiting(store)
        self._left_clock: dict[int, float] = {}
        self._right_clock: dict[int, float] = {}

    @property
    def live(self) -> int:
        return self.lefts.live

    def hold(self, request_id: str, entry: L) -> R | None:
        """Keep a left entry for its match; the right entry, when it was already waiting."""
        _advance(self._left_clock, entry.partition, entry.ts)
        right = self.store.get(RIGHT_KEY + request_id)
        if isinstance(right, self._right_type):
            self.rights.remove(RIGHT_KEY + request_id, right.partition)
            return right if self._joins(entry, right) else None
        previous = self.store.get(request_id)
        if previous is not None and previous != entry:  # the same record again is not news
            self.stats.replaced += 1
        self.lefts.add(request_id, entry)
        self.stats.added += 1
        self.stats.evicted += self.lefts.pop_over(self.cap)
        self._expire()
        return None

    def match(self, request_id: str, right: R) -> L | None:
        """The left entry this right one belongs to, removed from the store; None when it is
        not there (yet: the right entry waits for it)."""
        _advance(self._right_clock, right.partition, right.ts)
        entry = self.store.get(request_id)
        if isinstance(entry, self._left_type):
            self.lefts.remove(request_id, entry.partition)
            found = entry if self._joins(entry, right) else None
        else:
            self.rights.add(RIGHT_KEY + request_id, right)
            self.stats.unmatched += self.rights.pop_over(self.cap)
            found = None
        self._expire()
        return found

    def clocks(self) -> dict[int, tuple[float, float]]:
        """Per partition, the newest left and right entry read (event time; -inf: none yet)."""
        parts = self._left_clock.keys() | self._right_clock.keys()
        return {
            p: (self._left_clock.get(p, -math.inf), self._right_clock.get(p, -math.inf))
            for p in sorted(parts)
        }

    def rebuild(self, entries: Iterable[tuple[str, Any]], partitions: set[int]) -> None:
        """Index the store's entries of the partitions this worker now owns (after recovery)."""
        owned = [(k, e) for k, e in entries if e.partition in partitions]
        self.lefts.rebuild((k, e) for k, e in owned if isinstance(e, self._left_type))
        self.rights.rebuild((k, e) for k, e in owned if isinstance(e, self._right_type))
        for clock in (self._left_clock, self._right_clock):
            for p in [p for p in clock if p not in partitions]:
                del clock[p]

    def _joins(self, entry: L, right: R) -> bool:
        if right.ts - entry.ts > self.horizon:
            self.stats.expired += 1  # the match came too late for it
            self.stats.unmatched += 1
            return False
        self.stats.joined += 1
        self.stats.latency.update(max(0.0, right.ts - entry.ts))
        return True

    def _expire(self) -> None:
        rights, lefts = self._right_clock, self._left_clock
        self.stats.expired += self.lefts.pop_due(
            lambda ts, p: ts < rights.get(p, -math.inf) - self.horizon
        )
        self.stats.unmatched += self.rights.pop_due(
            lambda ts, p: ts + RIGHT_WAIT < lefts.get(p, -math.inf)
        )


def watermark(clocks: dict[int, tuple[float, float]]) -> float:
    """What every partition has passed, both sides alike: a judge may close windows up to
    here. A side never seen in a partition (no labels there yet) does not count.

    >>> watermark({0: (100.0, 90.0), 1: (80.0, -math.inf)})
    80.0
    """
    seen = [ts for pair in clocks.values() for ts in pair if ts > -math.inf]
    return min(seen, default=-math.inf)


def complete_watermark(
    clocks: dict[int, tuple[float, float]], partitions: int, lateness: float
) -> float:
    """What every one of ``partitions`` partitions has passed on both sides, so no pair of an
    earlier window can still be joined: a partition or side not read yet holds it back (the
    first batches read some partitions only). Bounded: never more than ``lateness`` behind the
    newest record read, so a partition one side never reaches cannot hold windows forever.

    >>> complete_watermark({0: (100.0, 95.0), 1: (80.0, 70.0)}, 2, 600.0)
    70.0
    >>> complete_watermark({0: (1000.0, 995.0)}, 2, 600.0)  # partition 1 not read: held back
    400.0
    """
    low = min((min(pair) for pair in clocks.values()), default=-math.inf)
    if len(clocks) < partitions:
        low = -math.inf
    newest = max((t for pair in clocks.values() for t in pair), default=-math.inf)
    return max(low, newest - lateness)


def _advance(clock: dict[int, float], partition: int, ts: float) -> None:
    if ts > clock.get(partition, -math.inf):
        clock[partition] = ts
