"""detectors/ is pure logic: no I/O, no clock, no environment, nothing from the rooms around it.
Time comes in as an argument; bytes come in and go out through connectors/ and streams/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import detectors

DETECTORS = Path(detectors.__file__).parent
MODULES = sorted(DETECTORS.rglob("*.py"))

FORBIDDEN_MODULES = {
    # I/O, processes, the environment
    "os",
    "sys",
    "io",
    "socket",
    "asyncio",
    "subprocess",
    "pathlib",
    "shutil",
    "tempfile",
    "sqlite3",
    "logging",
    "importlib",
    # the clock
    "time",
    # the other rooms: data flows one way, into detectors/, never out of it
    "connectors",
    "streams",
    "config",
}
CLOCK_CALLS = {"now", "utcnow", "today"}


def impurities(source: str) -> list[str]:
    """Every forbidden import, clock read and open() call in one module's source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            names = []
        found += [
            f"line {node.lineno}: import {n}"  # type: ignore[attr-defined]
            for n in names
            if n.split(".")[0] in FORBIDDEN_MODULES
        ]
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in CLOCK_CALLS:
                found.append(f"line {node.lineno}: .{func.attr}() reads the clock")
            if isinstance(func, ast.Name) and func.id in {"open", "input", "print", "__import__"}:
                found.append(f"line {node.lineno}: {func.id}() does I/O")
    return found


def test_every_detectors_module_is_checked() -> None:
    names = {m.stem for m in MODULES}
    assert {"engine", "validate", "stats", "distances", "change", "calibrate"} <= names


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.stem)
def test_a_detectors_module_does_no_io_and_reads_no_clock(module: Path) -> None:
    assert impurities(module.read_text()) == []


@pytest.mark.parametrize(
    "source",
    [
        "import os",
        "import os.path as p",
        "from time import monotonic",
        "import logging",
        "from pathlib import Path",
        "from streams.simulation.traffic import training_rows",
        "from connectors import files",
        "import config",
        "from datetime import datetime\nx = datetime.now()",
        "import datetime\nx = datetime.datetime.utcnow()",
        "from datetime import date\nx = date.today()",
        "with open('baseline.json') as f:\n    pass",
        "print('hello')",
    ],
)
def test_the_purity_check_catches_each_kind_of_impurity(source: str) -> None:
    assert impurities(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import UTC, datetime\nx = datetime.fromtimestamp(0, UTC).isoformat()",
        "import math\nfrom detectors.stats import Moments",
        "from river.drift import ADWIN",
        "import numpy as np\nrng = np.random.default_rng(0)",
        "from . import stats",
    ],
)
def test_the_purity_check_allows_pure_code(source: str) -> None:
    assert impurities(source) == []
