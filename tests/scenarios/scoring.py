"""Seeded scenario runs, scored for detection delay and false alarms.

The idea is river's ``river/drift/evaluate.py``: the change point is known, so every alarm is
either a detection (on the feature the scenario changes, at or after the change) or a false
alarm (anything else), and a detection's delay is counted in events since the change.

>>> run = Run("mean_shift", 1, Setup(100, 60, 200), events=2000, at=1000, anomalies=(), windows=0)
>>> run.change_time - START, run.delay, run.caught
(10.0, None, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from detectors.anomaly import Anomaly
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions
from streams.simulation.traffic import SCENARIOS, Injection, serving_records
from tests.scenarios.feeding import feed

START = 1_795_860_000.0  # a whole minute, so windows start on the stream's first record
STATIONARY = "stationary"


@dataclass(frozen=True, slots=True)
class Setup:
    """How fast records arrive and how the engine windows them."""

    rate: float
    window_seconds: float
    min_count: int

    @property
    def label(self) -> str:
        return f"{self.rate:g}/s, {self.window_seconds:g} s windows, min_count {self.min_count}"

    @property
    def id(self) -> str:
        return f"{self.rate:g}per_s-{self.window_seconds:g}s-min{self.min_count}"


DEFAULT_SETUP = Setup(rate=100, window_seconds=60, min_count=200)


@dataclass(frozen=True, slots=True)
class Run:
    """One engine over one seeded stream; ``at`` is the index of the first changed record."""

    scenario: str
    seed: int
    setup: Setup
    events: int
    at: int | None
    anomalies: tuple[Anomaly, ...]
    windows: int

    @property
    def feature(self) -> str:
        return SCENARIOS[self.scenario].feature

    @property
    def change_time(self) -> float | None:
        return None if self.at is None else START + self.at / self.setup.rate

    def is_detection(self, anomaly: Anomaly) -> bool:
        changed = self.change_time
        return (
            changed is not None and anomaly.feature == self.feature and anomaly.timestamp >= changed
        )

    @property
    def detections(self) -> list[Anomaly]:
        return sorted((a for a in self.anomalies if self.is_detection(a)), key=_when)

    @property
    def false_alarms(self) -> list[Anomaly]:
        return [a for a in self.anomalies if not self.is_detection(a)]

    @property
    def caught(self) -> bool:
        return bool(self.detections)

    @property
    def delay(self) -> float | None:
        """Events from the change to the first detection; None when it was never caught."""
        found, changed = self.detections, self.change_time
        if not found or changed is None:
            return None
        return (found[0].timestamp - changed) * self.setup.rate

    def describe(self, anomalies: list[Anomaly]) -> str:
        head = f"{self.scenario}, seed {self.seed}, {self.events:,} events at {self.setup.label}"
        return "\n".join([head, *(a.line() for a in anomalies[:10])])


def _when(anomaly: Anomaly) -> float:
    return anomaly.timestamp


def run_scenario(
    baseline: Baseline, scenario: str, seed: int, events: int, at: int | None, setup: Setup
) -> Run:
    """Feed a seeded stream through a fresh engine, closing every window at the end."""
    options = EngineOptions(window_seconds=setup.window_seconds, min_count=setup.min_count)
    engine = Engine([baseline], options)
    injections = [] if at is None else [Injection(scenario, at)]
    stream = serving_records(events, rate=setup.rate, start=START, injections=injections, seed=seed)
    anomalies: list[Anomaly] = []
    windows = 0
    for result in feed(engine, stream):
        anomalies += result.anomalies
        windows += len(result.reports)
    final = engine.close_all()
    return Run(
        scenario,
        seed,
        setup,
        events,
        at,
        tuple(anomalies + final.anomalies),
        windows + len(final.reports),
    )


@dataclass(slots=True)
class Scoreboard:
    """Every run of the session, each made once however many tests look at it."""

    baseline: Baseline
    runs: dict[tuple[str, int, int, int | None, Setup], Run] = field(default_factory=dict)

    def run(
        self,
        scenario: str,
        seed: int,
        *,
        events: int,
        at: int | None = None,
        setup: Setup = DEFAULT_SETUP,
    ) -> Run:
        if scenario == STATIONARY:
            at = None
        key = (scenario, seed, events, at, setup)
        if key not in self.runs:
            self.runs[key] = run_scenario(self.baseline, scenario, seed, events, at, setup)
        return self.runs[key]

    def by_scenario(self) -> dict[str, list[Run]]:
        grouped: dict[str, list[Run]] = {}
        for run in self.runs.values():
            grouped.setdefault(run.scenario, []).append(run)
        return {name: grouped[name] for name in SCENARIOS if name in grouped}

    def by_setup(self, scenario: str) -> dict[Setup, list[Run]]:
        grouped: dict[Setup, list[Run]] = {}
        for run in self.runs.values():
            if run.scenario == scenario:
                grouped.setdefault(run.setup, []).append(run)
        return grouped
