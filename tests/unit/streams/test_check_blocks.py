"""``logdrift check`` blockwise (columnar blocks, the exact path for a block with a bad line)
against record by record: the same bad lines, anomalies, incidents and windows."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson

from detectors.anomaly import iso
from detectors.engine import EngineOptions
from detectors.records import parse_ts
from streams.offline import CHECK_BATCH, check_logs
from streams.simulation.traffic import Injection, serving_records
from tests.unit.detectors.conftest import traffic_baseline

OPTIONS = EngineOptions(window_seconds=10.0, min_count=200)


def _lines(seed: int) -> list[bytes]:
    injections = [Injection("mean_shift", 2_000), Injection("schema_break", 3_000)]
    rows = list(serving_records(4_500, rate=100.0, start=1.8e9, injections=injections, seed=seed))
    rng = random.Random(seed)
    out: list[bytes] = []
    for i, row in enumerate(rows):
        if rng.random() < 0.02:
            row["ts"] = iso(parse_ts(row["ts"]) - rng.uniform(0, 25))
        if rng.random() < 0.02:
            row["features"][f"extra_{rng.randrange(9)}"] = 1
        if rng.random() < 0.005:
            row["model"] = "fraud"  # no baseline: refused, whichever path
        line = orjson.dumps(row)
        if 1_000 <= i < 2_000 and i % 97 == 0:  # one block with bad lines of every kind
            line = (b'{"ts": ', b"[1, 2]", orjson.dumps({**row, "ts": None}))[i % 3]
        out.append(line)
    return out


def _check(path: Path, columnar: bool) -> tuple[dict[str, Any], list[Any]]:
    report = check_logs(path, [traffic_baseline()], OPTIONS, columnar=columnar)
    windows = [(w.start, w.end, w.count, w.late, w.scores, w.windows) for w in report.windows]
    return report.to_json(), windows


def test_check_blockwise_gives_the_record_by_record_verdicts(tmp_path: Path) -> None:
    path = tmp_path / "serving.jsonl"
    path.write_bytes(b"\n".join(_lines(4)) + b"\n")
    got, got_windows = _check(path, columnar=True)
    want, want_windows = _check(path, columnar=False)
    assert got == want
    assert got_windows == want_windows
    bad = got["bad_lines"]
    assert any("invalid JSON" in b for b in bad) and any("'ts': missing" in b for b in bad)
    assert any("no baseline for model 'fraud'" in b for b in bad)
    assert {a["feature"]["name"] for a in got["anomalies"]} >= {"score"}  # the test can fail
    assert got["records"] > 4 * CHECK_BATCH - len(bad)
