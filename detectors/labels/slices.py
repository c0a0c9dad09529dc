"""Bounded slice cardinality: the top-K values of a slice key, everything else is "other".

A space-saving summary (Metwally et al.) keeps ``2 * top_k`` counters whatever the number of
distinct values; the monitored set is refreshed every ``refresh_every`` updates from the
counters' guaranteed counts, so a slice's label does not flicker event by event.

>>> s = SliceKeys(top_k=2, refresh_every=10)
>>> for v in ["shoes"] * 6 + ["hats"] * 3 + ["socks"]:
...     _ = s.label(v)
>>> s.label("shoes"), s.label("hats"), s.label("socks"), s.label(None)
('shoes', 'hats', '__other__', '__other__')
"""

from __future__ import annotations

from detectors.stats import OTHER


class SpaceSaving:
    """Approximate heavy hitters in ``capacity`` counters: every value more frequent than
    n / capacity is kept, and a kept count overestimates by at most its recorded error."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.counts: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.n = 0

    def update(self, value: str) -> None:
        self.n += 1
        if value in self.counts:
            self.counts[value] += 1
            return
        if len(self.counts) < self.capacity:
            self.counts[value], self.errors[value] = 1, 0
            return
        smallest = min(self.counts, key=self.counts.__getitem__)
        floor = self.counts.pop(smallest)
        del self.errors[smallest]
        self.counts[value], self.errors[value] = floor + 1, floor

    def top(self, k: int) -> list[str]:
        """The k values with the largest guaranteed counts (count minus error)."""
        ranked = sorted(self.counts, key=lambda v: (-(self.counts[v] - self.errors[v]), v))
        return [v for v in ranked[:k] if self.counts[v] > self.errors[v]]


class SliceKeys:
    """Slice value -> the label statistics are kept under: itself while it is a top-K value."""

    def __init__(self, top_k: int, refresh_every: int = 1_000) -> None:
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        if refresh_every < 1:
            raise ValueError(f"refresh_every must be at least 1, got {refresh_every}")
        self.top_k = top_k
        self.refresh_every = refresh_every
        self.summary = SpaceSaving(2 * top_k)
        self.monitored: frozenset[str] = frozenset()

    def label(self, value: str | None) -> str:
        if value is None:
            return OTHER
        self.summary.update(value)
        if self.summary.n % self.refresh_every == 0:
            self.monitored = frozenset(self.summary.top(self.top_k))
        return value if value in self.monitored else OTHER

    def peek(self, value: str | None) -> str:
        """The label of ``value`` now, without counting it."""
        return value if value is not None and value in self.monitored else OTHER
