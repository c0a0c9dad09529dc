"""`logdrift report LOGS --pipeline FILE`: the pipeline's feature records beside the serving
log, in event-time order as `logdrift check --pipeline` feeds them; a unit change in one path
is feature skew on the report's page, named per feature; a pipeline that agrees shows none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from detectors.baseline.reference import Baseline
from detectors.engine import EngineOptions
from detectors.records import FieldMapping
from detectors.report.data import build_report
from detectors.skew.monitor import SkewOptions
from streams.cli.main import main
from streams.report.charts import render_html
from streams.report.inputs import from_logs
from streams.simulation.traffic import serving_records, training_rows
from tests.unit.detectors.conftest import traffic_baseline

T0 = 1_795_860_000.0
OPTIONS = EngineOptions(window_seconds=60, min_count=200)
SKEW = SkewOptions(window_seconds=60, wait_seconds=0)


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    return traffic_baseline()


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def computed(rows: list[dict[str, Any]], cents_every: int = 0) -> list[dict[str, Any]]:
    """The pipeline's features of the same requests; every ``cents_every``-th price in cents."""
    out = []
    for i, r in enumerate(rows):
        features = dict(r["features"])
        if cents_every and i % cents_every == 0 and features["price"] is not None:
            features["price"] *= 100
        out.append(
            {"ts": r["ts"], "request_id": r["request_id"], "model": "ctr", "features": features}
        )
    return out


def test_a_unit_change_in_the_pipeline_is_feature_skew_on_the_page(
    baseline: Baseline, tmp_path: Path
) -> None:
    rows = list(serving_records(3_000, rate=20, start=T0))  # 150 s: two full windows and a part
    logs = write(tmp_path / "serving.jsonl", rows)
    skewed = computed(rows, cents_every=20)
    skewed.append({"ts": T0 + 10, "model": "ctr", "features": {}})  # no request id: a bad line
    pipeline = write(tmp_path / "pipeline.jsonl", skewed)
    data = from_logs([logs], baseline, OPTIONS, FieldMapping(), pipeline, SKEW)
    assert data.pipeline_records == 3_000 and data.records == 3_000
    assert any(
        reason.startswith("pipeline: field 'request_id': missing") for reason in data.dead_letters
    ), data.dead_letters
    found = [a for a in data.anomalies if a.kind == "feature_skew"]
    assert {a.feature for a in found} == {"price"}, [a.line() for a in data.anomalies]
    assert all("a unit change?" in a.message for a in found)
    page = build_report(baseline, data, "ctr")
    price = page.skew[0]
    assert price.feature == "price" and price.anomalies == len(found)
    assert price.joined == 3_000 and price.share == pytest.approx(0.05, abs=0.01)
    assert price.worst > price.worst_threshold
    assert all(r.anomalies == 0 and r.differ == 0 for r in page.skew[1:])
    assert page.skew_windows == 3
    html = render_html(page, T0)
    assert "Feature skew: serving against the pipeline" in html
    assert "3,000 pipeline records" in html
    (row,) = [c for c in page.features if c.feature == "price"]
    assert "feature_skew" in row.summary.kinds


def test_an_agreeing_pipeline_shows_joined_requests_and_no_skew(
    baseline: Baseline, tmp_path: Path
) -> None:
    rows = list(serving_records(3_000, rate=20, start=T0))
    logs = write(tmp_path / "serving.jsonl", rows)
    pipeline = write(tmp_path / "pipeline.jsonl", computed(rows))
    data = from_logs([logs], baseline, OPTIONS, FieldMapping(), pipeline, SKEW)
    page = build_report(baseline, data, "ctr")
    assert not [a for a in data.anomalies if a.kind == "feature_skew"]
    assert page.skew and all(r.differ == 0 and r.joined == 3_000 for r in page.skew)
    without = build_report(baseline, from_logs([logs], baseline, OPTIONS, FieldMapping()), "ctr")
    assert without.skew == [] and "Feature skew" not in render_html(without, T0)


def test_the_command_reports_feature_skew_from_log_files(tmp_path: Path) -> None:
    runner = CliRunner()
    train = tmp_path / "train.jsonl"
    write(train, list(training_rows(4_000, seed=7)))
    base = tmp_path / "ctr"
    made = runner.invoke(main, ["baseline", str(train), "--out", str(base), "--model", "ctr"])
    assert made.exit_code == 0, made.output
    rows = list(serving_records(3_000, rate=20, start=T0))
    logs = write(tmp_path / "serving.jsonl", rows)
    pipeline = write(tmp_path / "pipeline.jsonl", computed(rows, cents_every=20))
    out = tmp_path / "report.html"
    args = ["report", str(logs), "--baseline", str(base), "--pipeline", str(pipeline)]
    done = runner.invoke(main, [*args, "--out", str(out)])
    assert done.exit_code == 0, done.output
    html = out.read_text()
    assert "Feature skew: serving against the pipeline" in html and "a unit change?" in html
    wrong = runner.invoke(
        main, ["report", "--baseline", str(base), "--store", "x.db", "--pipeline", str(pipeline)]
    )
    assert wrong.exit_code == 2 and "--pipeline goes with serving-log files" in wrong.output
