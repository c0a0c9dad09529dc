"""`logdrift report --from-es` on a real node: what `logdrift run` indexed reads back into the
same report as its local store gives, current distributions included."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from elasticsearch import Elasticsearch

from config.settings import ElasticsearchSettings
from connectors.baseline_files import load_baseline
from detectors.report.data import ReportData, build_report
from streams.report.inputs import from_es, from_store
from streams.simulation.demo import send
from streams.simulation.traffic import Injection, serving_records
from tests.integration.conftest import LOGDRIFT
from tests.integration.elasticsearch.conftest import Node
from tests.integration.test_report import assert_self_contained

RATE = 100.0
START = 1_795_860_000.0


def _summary(data: ReportData) -> list[tuple[str, float, list[float]]]:
    return [
        (c.feature, round(c.summary.latest_ratio, 9), c.distribution.current) for c in data.features
    ]


def test_report_from_elasticsearch_matches_the_store_and_draws_current_distributions(
    start_es_runner,
    es: Elasticsearch,
    es_node: Node,
    prefix: str,
    baseline_dir: Path,
    tmp_path: Path,
) -> None:
    runner = start_es_runner(prefix, "--window-seconds", "10", "--min-count", "200")
    injections = [Injection("category_surge", 3_000)]
    records = list(serving_records(6_000, rate=RATE, start=START, injections=injections))
    send(records, "127.0.0.1", runner.port, realtime=False, rate=RATE)
    runner.stop()
    es.indices.refresh(index=f"{prefix}-*")  # searchable now, not at the next refresh interval

    baseline = load_baseline(baseline_dir)
    settings = ElasticsearchSettings(url=es_node.url, index_prefix=prefix)
    indexed = asyncio.run(from_es(settings, "ctr", len(baseline.references), 1440))
    stored = from_store(runner.store, "ctr", len(baseline.references), 1440)
    from_node, from_file = build_report(baseline, indexed), build_report(baseline, stored)
    assert from_node.windows == from_file.windows == 6
    assert _summary(from_node) == _summary(from_file)
    assert sorted(a.id for a in from_node.anomalies) == sorted(a.id for a in from_file.anomalies)
    device = next(c for c in from_node.features if c.feature == "device")
    assert device.summary.latest_ratio > 1
    assert device.distribution.current[device.distribution.labels.index("web")] > 0.3

    html = tmp_path / "report.html"
    env = {**os.environ, "LOGDRIFT_ELASTICSEARCH__INDEX_PREFIX": prefix, "COLUMNS": "200"}
    cmd = [*LOGDRIFT, "report", "--baseline", str(baseline_dir), "--from-es", es_node.url]
    proc = subprocess.run(
        [*cmd, "--out", str(html)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "moved past threshold: device" in proc.stdout
    text = assert_self_contained(html)
    assert f"{es_node.url} ({prefix}-drift-scores, {prefix}-anomalies)" in text


def test_report_from_an_unreachable_node_says_so(baseline_dir: Path, tmp_path: Path) -> None:
    url = "http://127.0.0.1:9"  # discard port: nothing listens
    cmd = [*LOGDRIFT, "report", "--baseline", str(baseline_dir), "--from-es", url]
    proc = subprocess.run(
        [*cmd, "--out", str(tmp_path / "r.html")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert url in proc.stderr
    assert not (tmp_path / "r.html").exists()
