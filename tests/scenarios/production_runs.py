"""The judge of the production-shaped scenarios: baselines built from training files exactly as
``logdrift baseline`` builds them, engines run over seeded streams, every anomaly scored.

As in ``scoring.py`` (after river's ``drift/evaluate.py``): the change point is known, so an
anomaly is a detection when it names the changed feature at or after the change, and a false
alarm otherwise. A delay is counted in events, from the first changed record to the last record
at or before the first detection's timestamp (a window's anomaly is stamped with its end).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from connectors.baseline_files import load_baseline, privacy_key
from connectors.files import open_rows
from detectors.anomaly import Anomaly
from detectors.baseline.infer import BaselineOptions
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions
from streams.offline import build_baseline
from tests.scenarios.feeding import Counted, feed
from tests.scenarios.production import CHANGES, MODEL, VERSION, Stream, serving_records
from tests.scenarios.production import write_training as write_training_file

TS = "ts"
# What `logdrift baseline training.jsonl --model ranker` does: the ts column (the default
# --time-column) orders the rows and is no feature of the model.
BASELINE_OPTIONS = BaselineOptions()


def make_baseline(
    directory: Path, seed: int, days: float, step: float, huge: bool = True
) -> tuple[Path, Baseline]:
    """Write a training file into ``directory``, build its baseline there as the CLI does, and
    load it back as the runner would; returns (training file, baseline)."""
    training = directory / "training.jsonl"
    write_training_file(training, seed, days, step, huge)
    out = directory / "baseline"
    key = privacy_key(out, None, create=True)
    options = dataclasses.replace(BASELINE_OPTIONS, privacy_key=key)
    build_baseline(training, out, options, MODEL, show_progress=False)
    return training, load_baseline(out)


@dataclass(frozen=True, slots=True)
class Setup:
    """How the engine windows a stream."""

    window_seconds: float = 60.0
    min_count: int = 200

    @property
    def label(self) -> str:
        return f"{self.window_seconds:g} s windows, min_count {self.min_count}"


@dataclass(frozen=True, slots=True)
class Judged:
    """One engine over one stream, scored."""

    stream: Stream
    setup: Setup
    anomalies: tuple[Anomaly, ...]
    windows: int
    change_ts: float | None
    delay: int | None  # events from the change to the first detection; None: never caught
    seconds: float  # wall-clock time of the engine run (generation included)
    error: str | None = None  # the engine raised: the run is a failure, whatever it scored

    @property
    def feature(self) -> str | None:
        return None if self.stream.change is None else CHANGES[self.stream.change].feature

    def is_detection(self, a: Anomaly) -> bool:
        return (
            self.change_ts is not None
            and a.feature == self.feature
            and a.timestamp >= (self.change_ts)
        )

    @property
    def detections(self) -> list[Anomaly]:
        return sorted((a for a in self.anomalies if self.is_detection(a)), key=_when)

    @property
    def false_alarms(self) -> list[Anomaly]:
        return [a for a in self.anomalies if not self.is_detection(a)]

    @property
    def caught(self) -> bool:
        return self.delay is not None

    def describe(self, anomalies: Iterable[Anomaly], limit: int = 10) -> str:
        s = self.stream
        head = (
            f"{s.change or 'stationary'}, seed {s.seed}, {s.events:,} {s.arrival} events at "
            f"{s.rate:g}/s, {self.setup.label}"
        )
        shown = list(anomalies)
        more = [f"... and {len(shown) - limit} more"] if len(shown) > limit else []
        return "\n".join([head, *(a.line() for a in shown[:limit]), *more])


def _when(a: Anomaly) -> float:
    return a.timestamp


def run_engine(
    baseline: Baseline, records: Iterable[dict[str, Any]], setup: Setup
) -> tuple[list[Anomaly], int]:
    """(every anomaly, windows judged) of a fresh engine over ``records``, closing every window
    at the end."""
    engine = Engine([baseline], EngineOptions(setup.window_seconds, setup.min_count))
    anomalies: list[Anomaly] = []
    windows = 0
    for result in feed(engine, records):
        windows += len(result.reports)
        anomalies += result.anomalies
    final = engine.close_all()
    return anomalies + final.anomalies, windows + len(final.reports)


def judge(baseline: Baseline, stream: Stream, setup: Setup) -> Judged:
    began = time.perf_counter()
    t = stream.times()
    try:
        anomalies, windows = run_engine(baseline, serving_records(stream, t), setup)
    except Exception as exc:  # a crash is a measurement too: every test of the run fails on it
        error = f"{type(exc).__name__}: {exc}"
        return Judged(stream, setup, (), 0, None, None, time.perf_counter() - began, error)
    change_ts = None if stream.at is None else float(t[stream.at])
    run = Judged(stream, setup, tuple(anomalies), windows, change_ts, None, 0.0)
    delay = None
    if run.detections and stream.at is not None:
        last = int(np.searchsorted(t, run.detections[0].timestamp, side="right"))
        delay = max(0, last - stream.at)
    return dataclasses.replace(run, delay=delay, seconds=time.perf_counter() - began)


def training_as_records(training: Path) -> Iterator[dict[str, Any]]:
    """The training file's rows as serving records: its ``ts`` the event time, the prediction
    column the prediction, every other column a feature (what `logdrift check` would read had
    the same rows been logged by the serving app)."""
    with open_rows(training) as rows:
        for i, row in enumerate(rows):
            ts, p = row.pop(TS), row.pop("prediction")
            yield {
                "ts": ts,
                "request_id": f"train-{i:x}",
                "model": MODEL,
                "model_version": VERSION,
                "features": row,
                "prediction": p,
            }


@dataclass(slots=True)
class ProductionBoard:
    """Every production-shaped run of the session, each made once however many tests ask."""

    baseline: Baseline  # of the serving streams
    self_training: Path  # the training file checked against its own baseline
    self_baseline: Baseline
    huge: bool = True  # the training files hold their one 1e300
    runs: dict[tuple[Stream, Setup], Judged] = field(default_factory=dict)
    self_checks: dict[float, SelfCheck] = field(default_factory=dict)

    def __repr__(self) -> str:  # pytest shows fixtures in failures: not every run's anomalies
        return f"ProductionBoard({len(self.runs)} runs, {len(self.self_checks)} self-checks)"

    def run(self, stream: Stream, setup: Setup = Setup()) -> Judged:
        key = (stream, setup)
        if key not in self.runs:
            self.runs[key] = judge(self.baseline, stream, setup)
        return self.runs[key]

    def self_check(self, window_seconds: float) -> SelfCheck:
        if window_seconds not in self.self_checks:
            self.self_checks[window_seconds] = check_training(
                self.self_training, self.self_baseline, window_seconds
            )
        return self.self_checks[window_seconds]


def make_board(
    directory: Path,
    serving: tuple[int, float, float],
    self_check: tuple[int, float, float],
    huge: bool = True,
) -> ProductionBoard:
    """Both training files and their baselines under ``directory``; (seed, days, step) each."""
    (directory / "serving").mkdir(parents=True, exist_ok=True)
    (directory / "self").mkdir(parents=True, exist_ok=True)
    _, baseline = make_baseline(directory / "serving", *serving, huge=huge)
    training, own = make_baseline(directory / "self", *self_check, huge=huge)
    return ProductionBoard(baseline, training, own, huge)


@dataclass(frozen=True, slots=True)
class SelfCheck:
    """A training file run through the engine against its own baseline."""

    window_seconds: float
    records: int
    windows: int
    anomalies: tuple[Anomaly, ...]
    seconds: float
    error: str | None = None


def check_training(training: Path, baseline: Baseline, window_seconds: float) -> SelfCheck:
    began = time.perf_counter()
    records = Counted(training_as_records(training))
    try:
        anomalies, windows = run_engine(baseline, records, Setup(window_seconds))
    except Exception as exc:  # measured like a run's crash
        spent = time.perf_counter() - began
        return SelfCheck(window_seconds, records.n, 0, (), spent, f"{type(exc).__name__}: {exc}")
    spent = time.perf_counter() - began
    return SelfCheck(window_seconds, records.n, windows, tuple(anomalies), spent)
