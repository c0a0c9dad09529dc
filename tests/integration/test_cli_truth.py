"""Every command tells the truth about failure (issue 14, rows 10, 11, 13 and 14), through the
real command line: exit codes a CI gate can rely on, one-line errors naming the file and place,
bad training rows reported instead of silently turning presence off, and a baseline whose
prediction column has its own name working in every command."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from ruamel.yaml import YAML

from connectors.files import write_csv
from streams.simulation.demo import send
from streams.simulation.traffic import serving_records, training_rows
from tests.integration.conftest import logdrift

START = 1_795_860_000.0
ROWS = 6_000


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def _scored_rows(n: int) -> Iterator[dict[str, Any]]:
    """Training rows whose model output is in a column named as scikit-learn users name it."""
    for row in training_rows(n, seed=7):
        row["y_pred_proba"] = row.pop("prediction")
        yield row


@pytest.fixture(scope="module")
def baseline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A --prediction-column baseline (this module's runners use it too: start_runner)."""
    folder = tmp_path_factory.mktemp("scored")
    write_csv(folder / "train.csv", _scored_rows(ROWS))
    out = folder / "base"
    logdrift(
        "baseline", folder / "train.csv", "--out", out, "--model", "ctr",
        "--prediction-column", "y_pred_proba",
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def clean_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("logs") / "clean.jsonl"
    return _write_jsonl(path, list(serving_records(3_000, rate=100, start=START)))


# --- row 11: --prediction-column ------------------------------------------------------------


def test_a_prediction_column_is_called_prediction_in_the_profile_and_the_schema(
    baseline_dir: Path,
) -> None:
    profile = json.loads((baseline_dir / "profile.json").read_text())
    assert "prediction" in profile["features"] and "y_pred_proba" not in profile["features"]
    schema = YAML(typ="safe").load((baseline_dir / "schema.yaml").read_text())
    assert schema["prediction"]["type"] == "float"
    assert "y_pred_proba" not in schema["features"]
    assert logdrift("schema", "validate", baseline_dir).returncode == 0


def test_a_prediction_column_baseline_checks_and_reports(
    baseline_dir: Path, clean_logs: Path, tmp_path: Path
) -> None:
    proc = logdrift("check", clean_logs, "--baseline", baseline_dir, "--format", "json")
    assert json.loads(proc.stdout)["records"] == 3_000
    html = tmp_path / "report.html"
    logdrift("report", "--baseline", baseline_dir, clean_logs, "--out", html)
    assert 'data-feature="prediction"' in html.read_text()


def test_the_training_file_checked_against_its_own_baseline_raises_nothing(
    baseline_dir: Path,
) -> None:
    train = baseline_dir.parent / "train.csv"
    proc = logdrift(
        "check", train, "--baseline", baseline_dir, "--prediction-column", "y_pred_proba",
        "--format", "json",
    )  # fmt: skip
    report = json.loads(proc.stdout)
    assert (report["records"], report["anomalies"]) == (ROWS, [])
    assert "training rows, checked as records of model ctr" in proc.stderr


def test_a_prediction_column_baseline_runs(start_runner: Any, tmp_path: Path) -> None:
    runner = start_runner(tmp_path / "run.db")
    records = list(serving_records(1_000, rate=100, start=START))
    send(records, "127.0.0.1", runner.port, realtime=False, rate=100)
    out = runner.stop()
    assert re.search(r"stopped: 1,000 records, .* 0 dead letters", out), out


def test_a_prediction_column_beside_a_prediction_column_is_refused(tmp_path: Path) -> None:
    rows = [{**row, "prediction": 1} for row in _scored_rows(50)]
    write_csv(tmp_path / "both.csv", rows)
    proc = logdrift(
        "baseline", tmp_path / "both.csv", "--out", tmp_path / "b",
        "--prediction-column", "y_pred_proba", check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "both a 'prediction' column and the prediction column 'y_pred_proba'" in proc.stderr


# --- row 10: check's exit codes ---------------------------------------------------------


def test_check_on_a_file_of_garbage_exits_2(baseline_dir: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"garbage\n{{{\n\x00\xff\n")
    proc = logdrift("check", garbage, "--baseline", baseline_dir, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "nothing checked: all 3 lines are bad" in proc.stderr


def test_check_on_records_for_no_known_model_exits_2(baseline_dir: Path, tmp_path: Path) -> None:
    records = list(serving_records(300, rate=100, start=START, model="other"))
    proc = logdrift(
        "check", _write_jsonl(tmp_path / "o.jsonl", records), "--baseline", baseline_dir,
        "--format", "json", check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["records"] == 0
    assert "no baseline for model 'other'" in proc.stderr


def test_check_on_an_empty_file_exits_2(baseline_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    proc = logdrift("check", empty, "--baseline", baseline_dir, check=False)
    assert proc.returncode == 2
    assert "nothing checked: no records in the file" in proc.stderr


def test_check_with_a_missing_baseline_directory_exits_2(clean_logs: Path, tmp_path: Path) -> None:
    proc = logdrift("check", clean_logs, "--baseline", tmp_path / "nowhere", check=False)
    assert proc.returncode == 2
    assert "nowhere/schema.yaml: not found" in proc.stderr


def test_check_with_unusable_settings_exits_2(
    baseline_dir: Path, clean_logs: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("window:\n  seconds: -1\n")
    proc = logdrift("--config", bad, "check", clean_logs, "--baseline", baseline_dir, check=False)
    assert proc.returncode == 2
    assert "window.seconds" in proc.stderr


def test_check_help_states_the_exit_codes() -> None:
    out = logdrift("check", "--help").stdout
    assert re.search(r"0\s+clean", out) and re.search(r"1\s+anomalies found", out)
    assert re.search(r"2\s+nothing usable was checked", out)


# --- row 13: YAML syntax errors ---------------------------------------------------------


def test_a_yaml_syntax_error_in_the_config_is_one_line(
    baseline_dir: Path, clean_logs: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("window:\n  seconds: 60\n min_count: 3\n")
    proc = logdrift("--config", bad, "check", clean_logs, "--baseline", baseline_dir, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"Error: {bad}:3:2: not valid YAML: "), line


def test_a_yaml_syntax_error_in_schema_yaml_is_one_line(baseline_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "broken"
    shutil.copytree(baseline_dir, copy)
    (copy / "schema.yaml").write_text("version: 1\nfeatures: [price,\n")
    proc = logdrift("schema", "validate", copy, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert re.fullmatch(
        rf"error {re.escape(str(copy))}/schema\.yaml:3:1: not valid YAML: [^\n]+\n", proc.stderr
    ), proc.stderr


# --- row 14: bad training rows ----------------------------------------------------------


@pytest.fixture(scope="module")
def ragged_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean export with a ragged, a short, an empty and a text-in-number row in it."""
    path = tmp_path_factory.mktemp("ragged") / "train.csv"
    write_csv(path, training_rows(3_000, seed=7))
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    width = len(header)
    price = header.index("price")
    text_row = lines[100].split(",")
    text_row[price] = "n/a"
    bad = [
        lines[50] + ",surplus",  # line 1502 once inserted below
        ",".join(lines[60].split(",")[: width - 2]),  # short
        "," * (width - 1),  # every cell empty
        ",".join(text_row),  # text in a number column
    ]
    path.write_text("\n".join([*lines[:1501], *bad, *lines[1501:]]) + "\n")
    return path


def test_bad_training_rows_stop_the_baseline_naming_file_and_lines(
    ragged_csv: Path, tmp_path: Path
) -> None:
    proc = logdrift("baseline", ragged_csv, "--out", tmp_path / "b", check=False)
    assert proc.returncode == 2
    message = " ".join(proc.stderr.split())
    assert message.startswith(f"Error: {ragged_csv}: 3 bad rows (line 1502: "), message
    assert "line 1503: " in message and "line 1504: every cell is empty" in message
    assert "1 bad row (line 1505: text in number column price)" in message
    assert "--skip-bad-rows" in message
    assert not (tmp_path / "b" / "schema.yaml").exists()


def test_skipped_bad_rows_are_reported_and_leave_presence_alone(
    ragged_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "b"
    proc = logdrift("baseline", ragged_csv, "--out", out, "--skip-bad-rows")
    message = " ".join(proc.stderr.split())
    assert "3 bad rows (line 1502: " in message and "left out" in message
    assert "1 bad row (line 1505: text in number column price): kept" in message
    schema = YAML(typ="safe").load((out / "schema.yaml").read_text())
    assert all(spec["required"] for spec in schema["features"].values()), schema["features"]
    assert schema["prediction"]["required"] is True
    assert "present in 100.0% of 3,001 training rows" in (out / "schema.yaml").read_text()
