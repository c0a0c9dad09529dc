"""connectors.es_documents: what is indexed where. The mapping is strict, so a field the
documents carry but the template does not declare would be refused by Elasticsearch: these
tests catch that before a node does."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
import pytest

from connectors.es_documents import (
    ANOMALIES,
    DRIFT_SCORES,
    IndexNames,
    expired_indices,
    load_templates,
    score_documents,
    score_id,
    window_start_of,
)
from detectors.anomaly import iso
from tests.elastic_samples import START, anomaly, report

TEMPLATES = load_templates(IndexNames())


def mapping(target: str) -> dict[str, Any]:
    mappings: dict[str, Any] = TEMPLATES[IndexNames().template_name(target)]["template"]["mappings"]
    return mappings


def undeclared(doc: dict[str, Any], properties: dict[str, Any], path: str = "") -> list[str]:
    """Dotted paths in ``doc`` that the mapping does not declare (and would refuse)."""
    missing = []
    for key, value in doc.items():
        field = properties.get(key)
        if field is None:
            missing.append(path + key)
        elif "properties" in field and isinstance(value, dict):
            missing += undeclared(value, field["properties"], f"{path}{key}.")
    return missing


def test_every_field_of_an_anomaly_document_is_declared_in_the_strict_mapping() -> None:
    doc = anomaly(slice_={"category": "shoes"}).to_document()
    assert mapping(ANOMALIES)["dynamic"] == "strict"
    assert undeclared(doc, mapping(ANOMALIES)["properties"]) == []


def test_every_field_of_a_drift_score_document_is_declared_in_the_strict_mapping() -> None:
    ((_, doc), *_) = score_documents(report())
    assert mapping(DRIFT_SCORES)["dynamic"] == "strict"
    assert undeclared(doc, mapping(DRIFT_SCORES)["properties"]) == []


def test_the_fields_people_filter_and_group_by_are_keywords_and_times_are_dates() -> None:
    props = mapping(ANOMALIES)["properties"]
    for group, field in [("anomaly", "kind"), ("anomaly", "severity"), ("model", "name")]:
        assert props[group]["properties"][field]["type"] == "keyword"
    assert props["message"]["type"] == "text"
    assert props["@timestamp"]["type"] == props["window"]["properties"]["start"]["type"] == "date"
    assert props["statistic"]["type"] == "double"
    # Summaries have free-form shapes: kept in _source, never mapped field by field.
    assert props["baseline"] == {"type": "object", "enabled": False}


def test_templates_follow_the_prefix_for_patterns_and_aliases() -> None:
    names = IndexNames("team-a")
    templates = load_templates(names)
    body = templates["team-a-anomalies"]
    assert body["index_patterns"] == ["team-a-anomalies-*"]
    assert body["template"]["aliases"] == {"team-a-anomalies": {}}
    assert set(templates) == {
        "team-a-anomalies",
        "team-a-drift-scores",
        "team-a-incidents",
        "team-a-rollups",
    }


def test_daily_index_is_named_by_the_window_start_in_utc() -> None:
    names = IndexNames()
    assert names.daily(ANOMALIES, START) == "logdrift-anomalies-2026.11.28"
    # A window that starts a second before midnight UTC belongs to that day, whatever its end.
    assert names.daily(DRIFT_SCORES, 1_795_910_399.0) == "logdrift-drift-scores-2026.11.28"
    assert names.daily(DRIFT_SCORES, 1_795_910_400.0) == "logdrift-drift-scores-2026.11.29"


def test_window_start_of_a_document_gives_back_the_anomaly_window_start() -> None:
    a = anomaly(window_start=START + 120)
    assert window_start_of(a.to_document()) == a.window_start


def test_retention_deletes_whole_days_past_the_limit_and_nothing_else() -> None:
    names = [
        "logdrift-anomalies-2026.11.20",  # 8 days old: past 7
        "logdrift-drift-scores-2026.11.21",  # exactly 7 days: kept
        "logdrift-anomalies-2026.11.28",
        "logdrift-anomalies-2026.13.01",  # not a date
        "logdrift-anomalies",  # the alias
        "other-anomalies-2020.01.01",  # not ours
    ]
    assert expired_indices(names, IndexNames(), date(2026, 11, 28), days=7) == [
        "logdrift-anomalies-2026.11.20"
    ]


def test_score_documents_give_one_document_per_feature_with_ratios() -> None:
    flagged = anomaly(feature="price", kind="distribution_skew")
    docs = dict(score_documents(report(anomalies=[flagged])))
    by_feature = {d["feature"]["name"]: d for d in docs.values()}
    assert set(by_feature) == {"price", "device", "age"}
    price = by_feature["price"]
    assert price["score"]["skew_ratio"] == pytest.approx(3.0)
    assert price["score"]["drift_ratio"] == pytest.approx(0.5)
    assert price["anomalies"] == {"count": 1, "kinds": ["distribution_skew"]}
    assert price["@timestamp"] == iso(START + 60)
    assert price["window"] == {
        "start": iso(START),
        "end": iso(START + 60),
        "count": 500,
        "late": 2,
        "partial": False,
    }
    assert by_feature["device"]["anomalies"] == {"count": 0, "kinds": []}


def test_values_json_cannot_carry_become_null_not_an_invalid_document() -> None:
    docs = {d["feature"]["name"]: d for _, d in score_documents(report())}
    age = docs["age"]["score"]
    assert age["skew"] is None  # NaN
    assert age["psi"] is None  # infinity
    assert age["skew_ratio"] is None  # threshold 0: no ratio
    orjson.dumps(docs)  # and the whole thing serialises


def test_score_ids_are_stable_per_window_and_feature() -> None:
    assert score_id("ctr", "3", "price", START) == score_id("ctr", "3", "price", START)
    others = {
        score_id("ctr", "3", "price", START + 60),
        score_id("ctr", "3", "device", START),
        score_id("ctr", "4", "price", START),
        score_id("cvr", "3", "price", START),
    }
    assert score_id("ctr", "3", "price", START) not in others
    assert len(others) == 4
