"""The score table printed at the end of a scenario session.

>>> render(["a", "bb"], [["1", "22"], ["333", "4"]])
['a    bb', '---  --', '1    22', '333  4']
"""

from __future__ import annotations

import statistics
from collections import Counter

from tests.scenarios.scoring import STATIONARY, Run, Scoreboard

SCENARIO_COLUMNS = [
    "scenario",
    "feature",
    "seeds",
    "events",
    "caught",
    "median delay",
    "max delay",
    "first caught by",
    "false alarms",
]
SETUP_COLUMNS = ["stationary setup", "records/window", "seeds", "events", "windows", "false alarms"]


def render(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *map(line, rows)]


def _delays(runs: list[Run]) -> tuple[str, str]:
    delays = [r.delay for r in runs if r.delay is not None]
    if not delays:
        return "-", "-"
    return f"{statistics.median(delays):,.0f}", f"{max(delays):,.0f}"


def _first_detectors(runs: list[Run]) -> str:
    firsts = Counter(r.detections[0].detector for r in runs if r.caught)
    return ", ".join(f"{name} x{n}" for name, n in firsts.most_common()) or "-"


def scenario_row(name: str, runs: list[Run]) -> list[str]:
    changed = name != STATIONARY
    median, worst = _delays(runs) if changed else ("-", "-")
    return [
        name,
        runs[0].feature or "-",
        str(len(runs)),
        f"{sum(r.events for r in runs):,}",
        f"{sum(r.caught for r in runs)}/{len(runs)}" if changed else "-",
        median,
        worst,
        _first_detectors(runs) if changed else "-",
        str(sum(len(r.false_alarms) for r in runs)),
    ]


def setup_row(runs: list[Run]) -> list[str]:
    setup = runs[0].setup
    return [
        setup.label,
        f"{setup.rate * setup.window_seconds:,.0f}",
        str(len(runs)),
        f"{sum(r.events for r in runs):,}",
        f"{sum(r.windows for r in runs):,}",
        str(sum(len(r.false_alarms) for r in runs)),
    ]


def score_table(board: Scoreboard) -> list[str]:
    """Per scenario, then per stationary setup; delays in events since the change."""
    scenarios = [scenario_row(name, runs) for name, runs in board.by_scenario().items()]
    lines = render(SCENARIO_COLUMNS, scenarios)
    setups = [setup_row(runs) for runs in board.by_setup(STATIONARY).values()]
    if setups:
        lines += ["", *render(SETUP_COLUMNS, setups)]
    return lines
