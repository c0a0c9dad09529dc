"""detectors.anomaly: one document per anomaly, with a deterministic id (re-delivery overwrites,
never duplicates), a severity from how far the statistic passed, and ECS-style fields."""

from __future__ import annotations

import json
import re

import pytest

from detectors.anomaly import SEVERITIES, Anomaly, anomaly_id, iso, severity_for

T0 = 1_795_860_000.0
KEY = ("ctr", "3", "price", "drift", "jensen_shannon", T0)


def make(**fields: object) -> Anomaly:
    base: dict[str, object] = {
        "id": anomaly_id(*KEY),
        "timestamp": T0 + 60,
        "kind": "drift",
        "detector": "jensen_shannon",
        "severity": "medium",
        "model": "ctr",
        "model_version": "3",
        "feature": "price",
        "statistic": 0.05,
        "threshold": 0.02,
        "window_start": T0,
        "window_end": T0 + 60,
        "window_count": 1_234,
        "message": "price moved",
        "slice": {"category": "shoes"},
        "baseline": {"mean": 12.0},
        "current": {"mean": 15.0},
    }
    base.update(fields)
    return Anomaly(**base)  # type: ignore[arg-type]


def test_the_same_anomaly_gets_the_same_id() -> None:
    assert anomaly_id(*KEY) == anomaly_id(*KEY)
    assert re.fullmatch(r"[0-9a-f]{32}", anomaly_id(*KEY))


@pytest.mark.parametrize("position", range(6))
def test_every_part_of_the_key_changes_the_id(position: int) -> None:
    other = list(KEY)
    other[position] = other[position] + 60 if position == 5 else f"{other[position]}x"  # type: ignore[operator]
    assert anomaly_id(*other) != anomaly_id(*KEY)  # type: ignore[arg-type]


def test_the_slice_is_part_of_the_id_whatever_its_key_order() -> None:
    a = anomaly_id(*KEY, {"country": "DE", "device": "ios"})
    assert a == anomaly_id(*KEY, {"device": "ios", "country": "DE"})
    assert a != anomaly_id(*KEY)
    assert a != anomaly_id(*KEY, {"country": "FR", "device": "ios"})
    assert anomaly_id(*KEY, {}) == anomaly_id(*KEY)


@pytest.mark.parametrize(
    ("ratio", "severity"),
    [
        (1.0, "low"),
        (1.99, "low"),
        (2.0, "medium"),
        (3.99, "medium"),
        (4.0, "high"),
        (7.99, "high"),
        (8.0, "critical"),
        (1e9, "critical"),
        (float("inf"), "critical"),
    ],
)
def test_severity_grows_with_how_far_the_statistic_passed_its_threshold(
    ratio: float, severity: str
) -> None:
    assert severity_for(ratio) == severity
    assert severity in SEVERITIES


def test_iso_is_utc_with_milliseconds_and_a_z() -> None:
    assert iso(T0) == "2026-11-28T10:00:00.000Z"
    assert iso(T0 + 0.1234) == "2026-11-28T10:00:00.123Z"
    assert iso(0) == "1970-01-01T00:00:00.000Z"


def test_the_document_has_ecs_style_fields() -> None:
    doc = make().to_document()
    assert doc["@timestamp"] == "2026-11-28T10:01:00.000Z"
    assert doc["anomaly"] == {
        "id": anomaly_id(*KEY),
        "kind": "drift",
        "detector": "jensen_shannon",
        "severity": "medium",
    }
    assert doc["model"] == {"name": "ctr", "version": "3"}
    assert doc["feature"] == {"name": "price"}
    assert doc["window"] == {
        "start": "2026-11-28T10:00:00.000Z",
        "end": "2026-11-28T10:01:00.000Z",
        "count": 1_234,
    }
    assert (doc["statistic"], doc["threshold"], doc["message"]) == (0.05, 0.02, "price moved")
    assert (doc["slice"], doc["baseline"], doc["current"]) == (
        {"category": "shoes"},
        {"mean": 12.0},
        {"mean": 15.0},
    )
    json.dumps(doc)  # plain JSON, ready to index


def test_plain_data_round_trips() -> None:
    a = make()
    assert Anomaly.from_dict(json.loads(json.dumps(a.to_dict()))) == a


def test_a_line_shows_when_how_bad_what_and_where() -> None:
    line = make(severity="critical").line()
    assert line.startswith("2026-11-28T10:01:00.000Z CRITICAL")
    assert "ctr/price" in line and "[jensen_shannon]" in line and line.endswith("price moved")


def test_info_is_the_least_severe_level_below_low() -> None:
    # An improvement (errors fell) is recorded at "info": below every level a rule pages on.
    assert SEVERITIES == ("info", "low", "medium", "high", "critical")
    assert severity_for(0.0) == "low"  # a statistic never maps to info: only a judgement does
