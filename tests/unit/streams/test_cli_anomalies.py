"""`logdrift anomalies --severity`: every level of the vocabulary, "info" included."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from connectors.store import AnomalyStore
from streams.cli.main import main
from tests.unit.connectors.test_store import make_anomaly


def test_severity_info_lists_improvements_and_low_leaves_them_out(tmp_path: Path) -> None:
    path = tmp_path / "logdrift.db"
    with AnomalyStore(path) as store:
        store.put(
            [
                make_anomaly(ts=1.0, severity="info", message="error rate fell (an improvement)"),
                make_anomaly(ts=2.0, severity="high", message="error rate rose"),
            ]
        )
    runner = CliRunner()
    listed = runner.invoke(main, ["anomalies", "--store", str(path), "--severity", "info"])
    assert listed.exit_code == 0, listed.output
    assert "INFO" in listed.output and "an improvement" in listed.output
    assert "2 anomalies" in listed.output
    paged = runner.invoke(main, ["anomalies", "--store", str(path), "--severity", "low"])
    assert paged.exit_code == 0, paged.output
    assert "an improvement" not in paged.output and "1 anomalies" in paged.output
