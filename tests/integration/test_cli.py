"""The `logdrift` command line, end to end, as a user types it."""

from __future__ import annotations

import json
import re
import shutil
import stat
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from ruamel.yaml import YAML

from streams.simulation.traffic import Injection, serving_records, training_rows
from tests.integration.conftest import logdrift

START = 1_795_860_000.0


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def test_help_lists_every_command() -> None:
    out = logdrift("--help").stdout
    for command in ("baseline", "schema", "run", "anomalies", "check", "simulate", "demo"):
        assert command in out


def test_baseline_writes_a_commented_schema_a_profile_and_a_private_key(baseline_dir: Path) -> None:
    schema = (baseline_dir / "schema.yaml").read_text()
    assert schema.startswith("# logdrift reference schema")
    assert "# score: float, present in 100.0% of 20,000 training rows" in schema
    profile = json.loads((baseline_dir / "profile.json").read_text())
    assert set(profile["features"]) == {
        "price",
        "age",
        "score",
        "country",
        "device",
        "is_returning",
        "prediction",
    }
    assert profile["features"]["score"]["calibration"]["page_hinkley"]["threshold"] > 10
    assert stat.S_IMODE((baseline_dir / "privacy.key").stat().st_mode) == 0o600
    assert logdrift("schema", "validate", baseline_dir).returncode == 0


def test_baseline_reads_serving_records_as_json_lines_and_parquet(tmp_path: Path) -> None:
    records = list(serving_records(3_000, rate=100, start=START))
    jsonl = _write_jsonl(tmp_path / "logs.jsonl", records)
    rows = list(training_rows(3_000))
    parquet = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    for source in (jsonl, parquet):
        out = tmp_path / source.suffix.strip(".")
        logdrift("baseline", source, "--out", out)
        features = json.loads((out / "profile.json").read_text())["features"]
        assert {"price", "age", "country", "prediction"} <= set(features), source


def test_a_persons_edits_survive_a_rebuild(
    baseline_dir: Path, training_csv: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "edited"
    shutil.copytree(baseline_dir, copy)
    yaml = YAML()
    doc = yaml.load((copy / "schema.yaml").read_text())
    doc["features"]["score"]["range"]["max"] = 5.0
    doc["features"]["device"]["sensitive"] = True
    with (copy / "schema.yaml").open("w") as f:
        yaml.dump(doc, f)
    logdrift("baseline", training_csv, "--out", copy, "--model", "ctr", "--bins", "8")
    rebuilt = YAML(typ="safe").load((copy / "schema.yaml").read_text())
    assert rebuilt["features"]["score"]["range"]["max"] == 5.0
    assert rebuilt["features"]["device"]["sensitive"] is True
    profile = json.loads((copy / "profile.json").read_text())
    # --bins 8: 7 inner quantiles and the support's two ends, so at most 9 edges (16 bins: 17)
    assert len(profile["features"]["score"]["numeric"]["edges"]) <= 9, "inference still updates"


def test_schema_validate_names_the_key_at_fault(baseline_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "broken"
    shutil.copytree(baseline_dir, copy)
    text = (copy / "schema.yaml").read_text().replace("type: float", "type: floot", 1)
    (copy / "schema.yaml").write_text(text)
    proc = logdrift("schema", "validate", copy, check=False)
    assert proc.returncode == 1
    assert "features.price.type" in proc.stderr


def test_check_passes_clean_logs_and_fails_on_a_schema_break(
    baseline_dir: Path, tmp_path: Path
) -> None:
    clean = _write_jsonl(
        tmp_path / "clean.jsonl", list(serving_records(6_000, rate=100, start=START))
    )
    assert logdrift("check", clean, "--baseline", baseline_dir).returncode == 0
    broken = list(
        serving_records(6_000, rate=100, start=START, injections=[Injection("schema_break", 0)])
    )
    path = _write_jsonl(tmp_path / "broken.jsonl", broken)
    with path.open("ab") as f:
        f.write(b"{not json\n")
    proc = logdrift("check", path, "--baseline", baseline_dir, "--format", "json", check=False)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["records"] == 6_000
    assert report["bad_lines"] and "line 6001" in report["bad_lines"][0]
    codes = {a["anomaly"]["detector"] for a in report["anomalies"] if a["feature"]["name"] == "age"}
    assert "int_type_not_int_string" in codes
    age = [i for i in report["incidents"] if i["feature"]["name"] == "age"]
    assert {i["incident"]["kind"] for i in age} >= {"schema_skew"}
    evidence = {a["anomaly"]["id"] for a in report["anomalies"]}
    assert {i["incident"]["first_anomaly"] for i in report["incidents"]} <= evidence
    assert all(r["rollup"]["features"] for r in report["rollups"])


def test_demo_catches_every_injected_change_and_nothing_else(tmp_path: Path) -> None:
    # As the README has it: no options, so the files go to ./logdrift-demo and stay there.
    proc = logdrift("demo", check=False, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Files go to {tmp_path / 'logdrift-demo'}/ and stay there" in proc.stdout
    for scenario in (
        "mean_shift",
        "category_surge",
        "new_category",
        "schema_break",
        "missing_surge",
    ):
        assert scenario in proc.stdout
    assert "MISSED" not in proc.stdout
    assert proc.stdout.count("  caught  ") == 5
    counted = re.search(r"(\d+) anomalies \(evidence\) in (\d+) incidents \(pages\)", proc.stdout)
    assert counted and int(counted[2]) < int(counted[1]), proc.stdout
    assert "No anomaly on the unchanged features: is_returning, prediction." in proc.stdout
    _the_demos_printed_commands_work(proc.stdout, int(counted[1]))


def _the_demos_printed_commands_work(out: str, anomalies: int) -> None:
    """Every command the demo prints points at files it kept: run each one as printed."""
    printed = re.findall(r"`(logdrift (?:incidents|anomalies|report) [^`]+)`", out)
    assert {p.split()[1] for p in printed} == {"incidents", "anomalies", "report"}, out
    for command in printed:
        ran = logdrift(*command.split()[1:]).stdout
        if " anomalies " in command:
            assert f"{anomalies} anomalies" in ran
    report = re.search(r"--out (\S+)`", out)
    assert report and Path(report[1]).stat().st_size > 10_000


def test_a_sensitive_feature_never_shows_a_raw_value(training_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "private"
    logdrift("baseline", training_csv, "--out", out, "--model", "ctr", "--sensitive", "country")
    stored = (out / "profile.json").read_text() + (out / "schema.yaml").read_text()
    assert '"US"' not in stored and "- US" not in stored
    records = list(
        serving_records(6_000, rate=100, start=START, injections=[Injection("new_category", 0)])
    )
    logs = _write_jsonl(tmp_path / "logs.jsonl", records)
    proc = logdrift("check", logs, "--baseline", out, "--format", "json", check=False)
    assert proc.returncode == 1, "the new country is still caught"
    report = json.loads(proc.stdout)
    assert any(a["feature"]["name"] == "country" for a in report["anomalies"])
    for raw in ('"BR"', "'BR'", '"US"', "'US'", '"DE"', "'DE'"):
        assert raw not in proc.stdout
