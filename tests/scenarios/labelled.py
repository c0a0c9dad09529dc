"""Labelled scenario runs: serving records and their delayed labels, interleaved in event time,
through one engine with label monitoring on (slices by product category, fairness by gender).

A run is made once per session however many tests look at it (``LabelBoard``); its score line
goes into the scenario report at the end of the session.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from detectors.anomaly import Anomaly
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions, Result
from detectors.labels.feedback import PendingStats
from detectors.labels.monitor import LabelOptions, LabelReport, LabelStats
from detectors.records import decode_feedback, decode_record, is_feedback
from streams.simulation.traffic import (
    TEN_MINUTES,
    LabelFlip,
    SliceSurge,
    feedback_records,
    interleave,
    serving_records,
)
from tests.scenarios.scoring import START

RATE = 100.0
LABELS = LabelOptions(
    window_seconds=120, wait_seconds=900, slice_key="category", groups=("gender",)
)


@dataclass(frozen=True, slots=True)
class LabelRun:
    name: str
    seed: int
    events: int
    flip: LabelFlip | None
    anomalies: tuple[Anomaly, ...]
    reports: tuple[LabelReport, ...]
    pending: PendingStats
    stats: LabelStats

    @property
    def change_time(self) -> float | None:
        return None if self.flip is None else START + self.flip.at / RATE

    def of_kind(self, kind: str) -> list[Anomaly]:
        return [a for a in self.anomalies if a.kind == kind]

    def describe(self, anomalies: list[Anomaly] | None = None) -> str:
        shown = list(self.anomalies if anomalies is None else anomalies)
        head = f"{self.name}, seed {self.seed}, {self.events:,} predictions"
        return "\n".join([head, *(a.line() for a in shown[:12])])


def run_labelled(
    baseline: Baseline,
    name: str,
    seed: int,
    events: int,
    flip: LabelFlip | None = None,
    *,
    options: LabelOptions = LABELS,
    delay: Callable[[random.Random], float] = TEN_MINUTES,
    rate: float = RATE,
    surge: SliceSurge | None = None,
) -> LabelRun:
    engine = Engine([baseline], EngineOptions(window_seconds=60, min_count=200), options)
    records = list(
        serving_records(events, rate=rate, start=START, seed=seed, slices=True, slice_surge=surge)
    )
    labels = feedback_records(records, delay=delay, flips=[flip] if flip else [], seed=seed)
    result = Result()
    for raw in interleave(records, labels):
        if is_feedback(raw):
            result.extend(engine.feedback(decode_feedback(raw)))
        else:
            result.extend(engine.process(decode_record(raw)))
    result.extend(engine.close_all())
    assert engine.labels is not None
    return LabelRun(
        name,
        seed,
        events,
        flip,
        tuple(result.anomalies),
        tuple(result.labels),
        engine.labels.pending.stats,
        engine.labels.stats,
    )


@dataclass(slots=True)
class LabelBoard:
    baseline: Baseline
    runs: dict[tuple[str, int, int], LabelRun] = field(default_factory=dict)

    def run(
        self,
        name: str,
        seed: int,
        events: int,
        flip: LabelFlip | None = None,
        surge: SliceSurge | None = None,
    ) -> LabelRun:
        key = (name, seed, events)
        if key not in self.runs:
            self.runs[key] = run_labelled(self.baseline, name, seed, events, flip, surge=surge)
        return self.runs[key]

    def table(self) -> list[str]:
        from tests.scenarios.report import render

        header = ["labelled scenario", "seeds", "predictions", "labels", "anomalies by kind"]
        grouped: dict[str, list[LabelRun]] = {}
        for run in self.runs.values():
            grouped.setdefault(run.name, []).append(run)
        rows = []
        for name, runs in grouped.items():
            kinds: dict[str, int] = {}
            for run in runs:
                for a in run.anomalies:
                    key = f"{a.kind}/{a.detector}"
                    kinds[key] = kinds.get(key, 0) + 1
            rows.append(
                [
                    name,
                    str(len(runs)),
                    f"{sum(r.events for r in runs):,}",
                    f"{sum(r.pending.joined for r in runs):,}",
                    ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())) or "none",
                ]
            )
        return render(header, rows)
