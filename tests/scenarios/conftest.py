"""One baseline per session (calibrating its change detectors takes seconds), one scoreboard
that remembers every run, and the score table at the end of the terminal report."""

from __future__ import annotations

import pytest

from detectors.baseline import Baseline
from detectors.infer import BaselineOptions, build_profile
from detectors.infer_schema import infer_schema
from detectors.schema import Schema
from streams.traffic import training_rows
from tests.scenarios.labelled import LabelBoard
from tests.scenarios.report import score_table
from tests.scenarios.scoring import Scoreboard

TRAINING_ROWS = 30_000
TRAINING_SEED = 7  # serving seeds differ, so no serving stream replays the training rows
SCOREBOARD = pytest.StashKey[Scoreboard]()
LABELBOARD = pytest.StashKey[LabelBoard]()


@pytest.fixture(scope="session")
def baseline() -> Baseline:
    rows = TRAINING_ROWS, TRAINING_SEED
    profile = build_profile(training_rows(*rows), training_rows(*rows), BaselineOptions(), "ctr")
    doc, _ = infer_schema(profile, model="ctr", tolerance=0.25, sensitive=frozenset())
    return Baseline.of(Schema.model_validate(doc), profile, b"scenario-key")


@pytest.fixture(scope="session")
def scoreboard(request: pytest.FixtureRequest, baseline: Baseline) -> Scoreboard:
    board = Scoreboard(baseline)
    request.config.stash[SCOREBOARD] = board
    return board


@pytest.fixture(scope="session")
def labelboard(request: pytest.FixtureRequest, baseline: Baseline) -> LabelBoard:
    board = LabelBoard(baseline)
    request.config.stash[LABELBOARD] = board
    return board


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    board = config.stash.get(SCOREBOARD, None)
    if board is not None and board.runs:
        terminalreporter.section("scenario scores (delays in events since the change)")
        for line in score_table(board):
            terminalreporter.write_line(line)
    labels = config.stash.get(LABELBOARD, None)
    if labels is not None and labels.runs:
        terminalreporter.section("labelled scenarios (delayed labels, slices, fairness)")
        for line in labels.table():
            terminalreporter.write_line(line)
