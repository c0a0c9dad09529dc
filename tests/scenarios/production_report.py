"""Tables of the production-shaped suite: delays per change, false alarms per stationary kind,
anomalies of the self-check per window length. Printed at the end of every pytest session that
ran them (tests/scenarios/conftest.py) and written to docs/scenarios.md by

    python -m tests.scenarios.production --table
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from detectors.anomaly import Anomaly
from tests.scenarios.production import CHANGES
from tests.scenarios.production_plan import (
    CHANGE_AT,
    CHANGE_RUNS,
    SELF_CHECK_TRAINING,
    SELF_CHECK_WINDOWS,
    SERVING_TRAINING,
    STATIONARY,
    change_stream,
)
from tests.scenarios.production_runs import Judged, ProductionBoard, make_board
from tests.scenarios.report import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "scenarios.md"


def by_detector(anomalies: Iterable[Anomaly], top: int = 4) -> str:
    counts = Counter(f"{a.feature}/{a.detector}" for a in anomalies)
    shown = ", ".join(f"{k} x{n:,}" for k, n in counts.most_common(top))
    rest = len(counts) - top
    return (shown + (f", {rest} more" if rest > 0 else "")) or "none"


def _errors(runs: Iterable[Judged]) -> str:
    errors = {r.error for r in runs if r.error}
    return "; ".join(sorted(e[:90] for e in errors))


def delay_rows(board: ProductionBoard) -> list[list[str]]:
    rows = []
    for name, change in CHANGES.items():
        runs = sorted(
            (r for (stream, _), r in board.runs.items() if stream.change == name),
            key=lambda r: r.stream.seed,
        )
        if not runs:
            continue
        delays = [r.delay for r in runs]
        ordered = [float("inf") if d is None else d for d in delays]
        median = statistics.median(ordered) if ordered else float("inf")
        firsts = Counter(r.detections[0].detector for r in runs if r.detections)
        rows.append(
            [
                name,
                change.feature,
                change.what,
                f"{sum(r.caught for r in runs)}/{len(runs)}",
                "missed" if median == float("inf") else f"{median:,.0f}",
                " ".join("-" if d is None else f"{d:,}" for d in delays),
                ", ".join(f"{k} x{n}" for k, n in firsts.most_common()) or "-",
                f"{sum(len(r.false_alarms) for r in runs):,}",
                _errors(runs) or "-",
            ]
        )
    return rows


def stationary_rows(board: ProductionBoard) -> list[list[str]]:
    rows = []
    for kind in STATIONARY:
        keys = [(s, kind.setup) for s in kind.streams()]
        runs = [board.runs[k] for k in keys if k in board.runs]
        if not runs:
            continue
        alarms = [a for r in runs for a in r.false_alarms]
        rows.append(
            [
                kind.name,
                str(len(runs)),
                f"{sum(r.stream.events for r in runs):,}",
                f"{sum(r.windows for r in runs):,}",
                f"{len(alarms):,}",
                by_detector(alarms),
                _errors(runs) or "-",
            ]
        )
    return rows


def self_check_rows(board: ProductionBoard) -> list[list[str]]:
    rows = []
    for label, seconds in SELF_CHECK_WINDOWS.items():
        check = board.self_checks.get(seconds)
        if check is None:
            continue
        rows.append(
            [
                label,
                f"{check.records:,}",
                f"{check.windows:,}",
                f"{len(check.anomalies):,}",
                by_detector(check.anomalies),
                (check.error or "-")[:90],
            ]
        )
    return rows


def examples(board: ProductionBoard, per_kind: int = 3) -> list[str]:
    """A few false-alarm messages per stationary kind, one per feature and detector."""
    lines = []
    for kind in STATIONARY:
        seen: set[tuple[str, str]] = set()
        for s in kind.streams():
            run = board.runs.get((s, kind.setup))
            for a in run.false_alarms if run else ():
                if (a.feature, a.detector) not in seen and len(seen) < per_kind:
                    seen.add((a.feature, a.detector))
                    lines.append(f"[{kind.name}] {a.line()}")
    return lines


def tables(board: ProductionBoard) -> list[str]:
    lines = []
    delays = delay_rows(board)
    if delays:
        header = ["change", "feature", "what", "caught", "median delay", "delays per seed"]
        header += ["first caught by", "false alarms", "engine error"]
        lines += [f"Delays in events since the change (record {CHANGE_AT:,}, 500/s, 60 s windows)"]
        lines += [*render(header, delays), ""]
    stationary = stationary_rows(board)
    if stationary:
        header = ["stationary kind", "seeds", "events", "windows", "false alarms"]
        header += ["by feature/detector", "engine error"]
        lines += ["Stationary production-shaped streams", *render(header, stationary), ""]
    checks = self_check_rows(board)
    if checks:
        header = ["self-check window", "records", "windows", "anomalies", "by feature/detector"]
        lines += ["The training file checked against its own baseline"]
        lines += [*render([*header, "engine error"], checks), ""]
    return lines


def run_all(board: ProductionBoard) -> ProductionBoard:
    """Everything the suite runs, in the suite's plan."""
    for change, seed in CHANGE_RUNS:
        board.run(change_stream(change, seed))
    for kind in STATIONARY:
        for stream in kind.streams():
            board.run(stream, kind.setup)
    for seconds in SELF_CHECK_WINDOWS.values():
        board.self_check(seconds)
    return board


def _section(title: str, board: ProductionBoard) -> list[str]:
    lines = ["", f"## {title}", "", "```", *tables(board)]
    found = examples(board)
    if found:
        lines += ["Examples of false alarms", *found]
    return [*lines, "```"]


def main() -> None:
    began = time.perf_counter()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        spec = run_all(make_board(Path(tmp) / "spec", SERVING_TRAINING, SELF_CHECK_TRAINING))
        body = _section("As specified (training files with their one 1e300)", spec)
        crashed = any(r.error for r in spec.runs.values())
        if crashed:
            diag = make_board(Path(tmp) / "diag", SERVING_TRAINING, SELF_CHECK_TRAINING, False)
            title = "Diagnostic: the same without the training files' 1e300"
            body += _section(title, run_all(diag))
    head = DOC.read_text().split("<!-- table -->")[0] if DOC.exists() else "# Scenarios\n\n"
    spent = time.perf_counter() - began
    note = f"Measured at commit {commit or '?'} in {spent:,.0f} s (one core)."
    DOC.write_text(head + "<!-- table -->\n\n" + note + "\n" + "\n".join(body) + "\n")
    print(note)
    print("\n".join(body))
