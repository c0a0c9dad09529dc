"""The Kafka worker's label join: a stream-stream join of serving-logs and feedback by request id,
its state in a keyed store (a changelog-backed table partitioned like both topics). The join
itself is ``detectors.keyed_join.KeyedJoin`` (the feature-skew join is the same one); this
module names its two sides.

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

from dataclasses import dataclass

from detectors.keyed_join import (
    RIGHT_KEY,
    RIGHT_WAIT,
    KeyedJoin,
    MemoryStore,
    PendingStore,
    Waiting,
)
from detectors.keyed_join import watermark as watermark

LABEL_WAIT = RIGHT_WAIT  # event-time seconds a label waits past its partition's prediction clock
LABEL_KEY = RIGHT_KEY  # prefix of a waiting label's key: apart from predictions' keys
__all__ = ["LABEL_KEY", "LABEL_WAIT", "Label", "LabelJoin", "MemoryStore", "Pending"]
__all__ += ["PendingStore", "watermark"]


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
    source: str = "process"  # "human": resolved from raters' answers (FeedbackRecord.source)


class LabelJoin(KeyedJoin[Pending, Label]):
    def __init__(self, store: PendingStore, horizon: float, cap: int) -> None:
        super().__init__(store, horizon, cap, Pending, Label)

    @property
    def predictions(self) -> Waiting:
        return self.lefts

    @property
    def labels(self) -> Waiting:
        return self.rights

    def label(self, request_id: str, label: Label) -> Pending | None:
        """The prediction this label belongs to, removed from the store; None when it is not
        there (yet: the label waits for it)."""
        return self.match(request_id, label)
