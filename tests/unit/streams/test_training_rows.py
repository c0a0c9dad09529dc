"""streams.training_rows: `logdrift check` holds a training file (rows of columns, not serving
records) against a baseline; the file the baseline was built from raises nothing, the same
file with a shifted feature does, and bad rows are reported by line."""

from __future__ import annotations

import csv
import dataclasses
import random
from pathlib import Path

import orjson
import pytest

from connectors.baseline_files import load_baseline, privacy_key
from detectors.baseline.infer import BaselineOptions
from detectors.engine import EngineOptions
from detectors.records import FieldMapping
from streams.offline import CheckReport, build_baseline, check_logs
from streams.training_rows import RowsAsRecords, baseline_time_column, holds_rows

ROWS = 6_000
T0 = 1_790_000_000


def write_training(path: Path, shift: float = 0.0, bad_line: int | None = None) -> Path:
    rng = random.Random(7)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["ts", "row_id", "price", "device", "prediction"])
        for i in range(ROWS):
            if bad_line is not None and i + 2 == bad_line:
                out.writerow(["only", "two"])
                continue
            price = rng.gauss(50 + shift * 10, 10)
            device = rng.choice(["ios", "ios", "android", "web"])
            out.writerow([T0 + i * 10, f"r{i}", f"{price:.3f}", device, f"{rng.random():.4f}"])
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("rows")
    training = write_training(root / "training.csv")
    out = root / "baseline"
    options = dataclasses.replace(
        BaselineOptions(ignore=frozenset({"row_id"})),
        privacy_key=privacy_key(out, None, create=True),
    )
    build_baseline(training, out, options, "ctr", show_progress=False)
    return training, out


def check(path: Path, baseline_dir: Path) -> tuple[RowsAsRecords, CheckReport]:
    baseline = load_baseline(baseline_dir)
    rows = RowsAsRecords(path, baseline, baseline_time_column(baseline))
    options = EngineOptions(window_seconds=3_600, min_count=200)
    return rows, check_logs(path, [baseline], options, FieldMapping(), source=rows)


def test_csv_and_json_lines_without_features_hold_rows_and_serving_records_do_not(
    tmp_path: Path, built: tuple[Path, Path]
) -> None:
    assert holds_rows(built[0], FieldMapping())
    rows = tmp_path / "rows.jsonl"
    rows.write_bytes(orjson.dumps({"ts": T0, "price": 1.0}) + b"\n")
    serving = tmp_path / "serving.jsonl"
    serving.write_bytes(orjson.dumps({"ts": T0, "model": "ctr", "features": {}}) + b"\n")
    assert holds_rows(rows, FieldMapping()) and not holds_rows(serving, FieldMapping())


def test_the_training_file_raises_nothing_against_its_own_baseline(
    built: tuple[Path, Path],
) -> None:
    rows, report = check(*built)
    assert report.records == ROWS
    assert [a.line() for a in report.anomalies] == []
    # Ten seconds a row, hour windows: the time column, not file order, made the windows.
    assert len(report.windows) == pytest.approx(ROWS * 10 / 3_600, abs=1)
    assert rows.left_out == {"ts", "row_id"}


def test_a_shifted_training_file_is_caught_and_a_bad_row_named_by_its_line(
    tmp_path: Path, built: tuple[Path, Path]
) -> None:
    shifted = write_training(tmp_path / "next-month.csv", shift=1.0, bad_line=101)
    _, report = check(shifted, built[1])
    assert {a.feature for a in report.anomalies} >= {"price"}
    assert report.records == ROWS - 1
    (bad,) = report.bad_lines
    assert "next-month.csv line 101" in bad
