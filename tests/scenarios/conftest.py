"""One baseline per session (calibrating its change detectors takes seconds), one scoreboard
that remembers every run, and the score table at the end of the terminal report."""

from __future__ import annotations

import pytest

from detectors.baseline.infer import BaselineOptions, build_profile
from detectors.baseline.infer_schema import infer_schema
from detectors.baseline.reference import Baseline
from detectors.baseline.schema import Schema
from streams.simulation.traffic import training_rows
from tests.scenarios.labelled import LabelBoard
from tests.scenarios.production_plan import SELF_CHECK_TRAINING, SERVING_TRAINING, TRAINING_1E300
from tests.scenarios.production_report import examples, tables
from tests.scenarios.production_runs import ProductionBoard, make_board
from tests.scenarios.report import score_table
from tests.scenarios.scoring import Scoreboard

TRAINING_ROWS = 30_000
TRAINING_SEED = 7  # serving seeds differ, so no serving stream replays the training rows
SCOREBOARD = pytest.StashKey[Scoreboard]()
LABELBOARD = pytest.StashKey[LabelBoard]()
PRODUCTIONBOARD = pytest.StashKey[ProductionBoard]()


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


@pytest.fixture(scope="session")
def production(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> ProductionBoard:
    """The production-shaped suite's two training files, their baselines (built as `logdrift
    baseline` builds them) and every run made against them."""
    directory = tmp_path_factory.mktemp("production")
    board = make_board(directory, SERVING_TRAINING, SELF_CHECK_TRAINING, TRAINING_1E300)
    request.config.stash[PRODUCTIONBOARD] = board
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
    production = config.stash.get(PRODUCTIONBOARD, None)
    if production is not None and (production.runs or production.self_checks):
        terminalreporter.section("production-shaped scenarios (docs/scenarios.md)")
        for line in [*tables(production), *examples(production)]:
            terminalreporter.write_line(line)
