"""Feature-skew documents in the drift-score index: one per feature and judged window of joined
requests, every field declared in the strict mapping, ids stable and apart from the feature's
own drift-score document."""

from __future__ import annotations

from connectors.es_documents import DRIFT_SCORES, score_id, skew_documents
from detectors.anomaly import Anomaly
from detectors.skew.monitor import SkewReport
from tests.unit.connectors.test_es_documents import mapping, undeclared

START = 1_795_860_000.0


def skew_report() -> SkewReport:
    price = {"joined": 4_210, "differ": 130, "serving_only": 0, "pipeline_only": 0}
    price |= {"share": 130 / 4_210, "one_side_share": 0.0, "threshold": 0.0033}
    price |= {"median_ratio": 100.0, "median_difference": 1237.5}
    country = price | {"differ": 0, "share": 0.0, "median_ratio": None, "median_difference": None}
    anomaly = Anomaly(
        "id", START + 300, "feature_skew", "request_join", "high", "ctr", "3", "price",
        0.031, 0.0033, START, START + 300, 4_210, "price (ctr v3): 3.1% ...",
    )  # fmt: skip
    return SkewReport(
        "ctr", "3", START, START + 300, 4_210, {"price": price, "country": country}, [anomaly]
    )


def test_a_skew_window_gives_one_document_per_feature_with_its_counts_and_shares() -> None:
    docs = dict(skew_documents(skew_report()))
    assert len(docs) == 2
    by_feature = {doc["feature"]["name"]: doc for doc in docs.values()}
    price = by_feature["price"]
    assert price["feature_skew"]["differ"] == 130 and price["feature_skew"]["median_ratio"] == 100
    assert price["window"]["count"] == 4_210
    assert price["anomalies"] == {"count": 1, "kinds": ["feature_skew"]}
    assert by_feature["country"]["anomalies"] == {"count": 0, "kinds": []}
    assert score_id("ctr", "3", "price", START) not in docs  # not the drift score's id
    assert list(dict(skew_documents(skew_report()))) == list(docs)


def test_every_field_of_a_skew_document_is_declared_in_the_strict_mapping() -> None:
    for _, doc in skew_documents(skew_report()):
        assert undeclared(doc, mapping(DRIFT_SCORES)["properties"]) == []
