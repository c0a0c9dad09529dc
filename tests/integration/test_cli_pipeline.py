"""`logdrift check --pipeline FILE`: the pipeline's feature records of the same requests are
joined to the serving log by request id and compared; a unit change in one path fails the
check naming the feature, an agreeing pipeline passes, and a bad pipeline line is reported
with its file and line number."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from streams.simulation.traffic import serving_records
from tests.integration.conftest import logdrift

START = 1_795_860_000.0


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def _pipeline(rows: list[dict[str, Any]], cents_every: int = 0) -> list[dict[str, Any]]:
    out = []
    for i, r in enumerate(rows):
        features = dict(r["features"])
        if cents_every and i % cents_every == 0 and features["price"] is not None:
            features["price"] *= 100
        out.append(
            {"ts": r["ts"], "request_id": r["request_id"], "model": "ctr"} | {"features": features}
        )
    return out


def test_check_with_a_pipeline_file_names_feature_skew_and_passes_when_both_agree(
    baseline_dir: Path, tmp_path: Path
) -> None:
    rows = list(serving_records(6_000, rate=100, start=START))
    logs = _write(tmp_path / "serving.jsonl", rows)
    agreeing = _write(tmp_path / "agreeing.jsonl", _pipeline(rows))
    assert (
        logdrift("check", logs, "--baseline", baseline_dir, "--pipeline", agreeing).returncode == 0
    )
    skewed = _write(tmp_path / "skewed.jsonl", _pipeline(rows, cents_every=20))
    with skewed.open("ab") as f:
        f.write(b'{"ts": 1795860100, "model": "ctr", "features": {}}\n')
    proc = logdrift(
        "check",
        logs,
        "--baseline",
        baseline_dir,
        "--pipeline",
        skewed,
        "--format",
        "json",
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    skew = [a for a in report["anomalies"] if a["anomaly"]["kind"] == "feature_skew"]
    assert {a["feature"]["name"] for a in skew} == {"price"}
    assert all("a unit change?" in a["message"] for a in skew)
    assert any("skewed.jsonl line 6001" in b and "request_id" in b for b in report["bad_lines"])
    assert {i["incident"]["kind"] for i in report["incidents"]} >= {"feature_skew"}
