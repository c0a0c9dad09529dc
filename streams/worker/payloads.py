"""What each topic of the worker carries, as types, and how they go over the wire: a leaf
module (no Faust app), so the agents, stage three's indexing and tests share one declaration.
streams/worker/topics.py names each topic's payload from here.

Values are JSON bytes (orjson), not faust Records: a Record rebuilds every field in Python, and
a message that is not what it claims can still be dead-lettered with its original bytes. Each
``decode`` raises ValueError, TypeError or KeyError on a value of another shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

import orjson

from detectors.anomaly import Anomaly
from detectors.incidents.rollups import RollUp
from detectors.incidents.tracker import Incident
from detectors.labels.slice_windows import Observed

T = TypeVar("T")

FeatureSummary = dict[str, Any]  # feature-summaries: detectors.stages.SummaryBuilder's columns
DriftScore = dict[str, Any]  # drift-scores: connectors.es_documents' drift-score document


@dataclass(frozen=True, slots=True)
class Payload(Generic[T]):
    """How one topic's values are written and read."""

    encode: Callable[[T], bytes]
    decode: Callable[[bytes], T]


def _json_object(raw: bytes) -> dict[str, Any]:
    found = orjson.loads(raw)
    if not isinstance(found, dict):
        raise ValueError(f"a JSON object was expected, not {type(found).__name__}")
    return found


ANOMALY: Payload[Anomaly] = Payload(
    lambda a: orjson.dumps(a.to_dict()), lambda raw: Anomaly.from_dict(_json_object(raw))
)
INCIDENT: Payload[Incident] = Payload(
    lambda i: orjson.dumps(i.to_plain()), lambda raw: Incident.from_plain(_json_object(raw))
)
ROLLUP: Payload[RollUp] = Payload(  # rollups (parts) and window-rollups (whole)
    lambda r: orjson.dumps(r.to_plain()), lambda raw: RollUp.from_plain(_json_object(raw))
)
DRIFT_SCORE: Payload[DriftScore] = Payload(orjson.dumps, _json_object)


# ---- label-outcomes: what the label join sends its judge ------------------------------
class PredictionRow(NamedTuple):
    """A prediction the join counted. ``partition``/``offset``: where it was read in
    serving-logs (the judge's replay guard); ``values``: the features as slice windows count
    them (None: slices off)."""

    partition: int
    offset: int
    ts: float
    slice: str | None
    groups: tuple[str, ...]
    values: Observed | None = None


class LabelRow(NamedTuple):
    """A prediction joined with its label. ``partition``/``offset``: of the feedback record
    (a label read after its prediction) or of the prediction (a label that waited for it).
    ``source``: "human" for raters' resolved labels; on the wire only then (a row of eight
    fields, as messages were before it, is process feedback)."""

    partition: int
    offset: int
    ts: float
    slice: str | None
    groups: tuple[str, ...]
    prediction: float
    label_ts: float
    label: float
    source: str = "process"

    def plain(self) -> list[Any]:
        row = list(self)
        return row if self.source != "process" else row[:-1]


PartitionClocks = dict[int, tuple[float, float]]  # partition -> (predictions, labels) event time


@dataclass(slots=True)
class LabelOutcomes:
    """One model version's share of a join batch, with the join's partition clocks (-inf:
    nothing read there yet) for the judge's watermark. On the wire: JSON, rows as arrays."""

    model: str
    version: str
    predictions: list[PredictionRow] = field(default_factory=list)
    labels: list[LabelRow] = field(default_factory=list)  # labels read after their prediction
    waited: list[LabelRow] = field(default_factory=list)  # labels met by their prediction
    clocks: PartitionClocks = field(default_factory=dict)

    def encode(self) -> bytes:
        clocks = {
            str(p): [t if math.isfinite(t) else None for t in ts] for p, ts in self.clocks.items()
        }
        return orjson.dumps(
            {"v": 1, "model": self.model, "version": self.version}
            | {"predictions": [list(r) for r in self.predictions]}
            | {"labels": [r.plain() for r in self.labels]}
            | {"waited": [r.plain() for r in self.waited]}
            | {"clocks": clocks}
        )

    @classmethod
    def decode(cls, raw: bytes) -> LabelOutcomes:
        """Raises ValueError, TypeError or KeyError on a message of another shape."""
        plain = orjson.loads(raw)
        if plain.get("v") != 1:
            raise ValueError(f"label-outcomes: unknown message version {plain.get('v')!r}")
        return cls(
            str(plain["model"]),
            str(plain["version"]),
            [_prediction_row(*row) for row in plain["predictions"]],
            [_label_row(*row) for row in plain["labels"]],
            [_label_row(*row) for row in plain["waited"]],
            {int(p): (_clock(a), _clock(b)) for p, (a, b) in plain["clocks"].items()},
        )


def _prediction_row(
    partition: int,
    offset: int,
    ts: float,
    slice_: str | None,
    groups: list[str],
    values: Any = None,
) -> PredictionRow:
    return PredictionRow(int(partition), int(offset), float(ts), slice_, tuple(groups), values)


def _label_row(
    partition: int,
    offset: int,
    ts: float,
    slice_: str | None,
    groups: list[str],
    prediction: float,
    label_ts: float,
    label: float,
    source: str = "process",
) -> LabelRow:
    return LabelRow(
        int(partition),
        int(offset),
        float(ts),
        slice_,
        tuple(groups),
        float(prediction),
        float(label_ts),
        float(label),
        "human" if source == "human" else "process",
    )


def _clock(t: float | None) -> float:
    return -math.inf if t is None else float(t)
