"""One batch of a per-model judge (the label judge, the feature-skew judge): every message
applied to its model's state, the anomalies, drift-score documents and incidents published
once for the batch, and each touched state written back once. Each judge brings what differs:
how a message is read and applied, its documents, and how its state is stored."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from faust.types import EventT

from detectors.anomaly import Anomaly
from detectors.incidents.tracker import Step
from streams.worker import incidents as worker_incidents
from streams.worker import metrics as measured
from streams.worker.agents import INDEXING, dead_letter, publish

logger = logging.getLogger(__name__)


class Report(Protocol):
    model: str

    def line(self) -> str: ...


J = TypeVar("J")
R = TypeVar("R", bound=Report)


@dataclass(frozen=True, slots=True)
class Judge(Generic[J, R]):
    name: str  # "the label judge": how the logs name it
    topic: str
    load: Callable[[str], J]
    # one message's bytes into a model's state: the incidents its anomalies and windows changed
    apply: Callable[[J, bytes, list[Anomaly], list[R]], Step]
    documents: Callable[[R], list[tuple[str, dict[str, Any]]]]  # (id, drift-score document)
    save: Callable[[str, J], None]


async def judge_batch(judge: Judge[J, R], events: Sequence[EventT[Any]]) -> None:
    measured.consumed(judge.topic, len(events))
    raised: list[Anomaly] = []
    reports: list[R] = []
    touched: dict[str, J] = {}
    changed = Step()
    for event in events:
        key = str(event.key)
        value = event.value if isinstance(event.value, bytes) else b""
        try:
            state = touched[key] if key in touched else judge.load(key)
            touched[key] = state
            changed.extend(judge.apply(state, value, raised, reports))
        except Exception as exc:
            logger.exception("%s failed on a message of %s", judge.name, key)
            await dead_letter(key.encode(), value, repr(exc), "internal_error", key)
    scores = [doc for r in reports for doc in judge.documents(r)] if INDEXING else []
    found_incidents = worker_incidents.messages(changed.incidents())
    if raised or scores or found_incidents:
        await publish(raised, scores, found_incidents)
        measured.raised(raised)
        for a in raised:
            logger.info("anomaly %s %s", a.id, a.line(), extra=measured.keys_of(a))
        worker_incidents.log_changes(changed)
    for report in reports:
        logger.info("%s", report.line(), extra={"model": report.model})
    for key, state in touched.items():
        judge.save(key, state)
