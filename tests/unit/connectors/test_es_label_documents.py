"""Label-window documents in the drift-score index: one for the model, one per slice and per
group, every field declared in the strict mapping, ids stable per window and part."""

from __future__ import annotations

from connectors.es_documents import DRIFT_SCORES, LABELS_FEATURE, label_documents
from detectors.anomaly import Anomaly
from detectors.labels.monitor import LabelReport
from tests.unit.connectors.test_es_documents import mapping, undeclared

START = 1_795_860_000.0
METRICS = {"predictions": 100.0, "labelled": 80.0, "label_coverage": 0.8, "accuracy": 0.7}


def fairness_anomaly() -> Anomaly:
    return Anomaly(
        "id", START + 300, "fairness", "error_rate_disparity", "low", "ctr", "3", "gender",
        0.12, 0.1, START, START + 300, 80, "gender=f ...", slice={"gender": "f"},
    )  # fmt: skip


def label_report() -> LabelReport:
    return LabelReport(
        "ctr",
        "3",
        START,
        START + 300,
        {**METRICS, "auc": 0.74, "log_loss": 0.55},
        {"p50": 30.0, "p90": 54.0, "p99": 59.0},
        {"mens_dress_shoes": METRICS, "__other__": METRICS},
        {"gender": {"f": METRICS, "m": METRICS}},
        [fairness_anomaly()],
        "category",
    )


def test_a_label_window_gives_one_document_per_model_slice_and_group() -> None:
    docs = label_documents(label_report())
    slices = [doc["slice"] for _, doc in docs]
    assert slices == [
        {},
        {"category": "__other__"},
        {"category": "mens_dress_shoes"},
        {"gender": "f"},
        {"gender": "m"},
    ]
    assert {doc["feature"]["name"] for _, doc in docs} == {LABELS_FEATURE}
    assert len({doc_id for doc_id, _ in docs}) == 5
    assert [doc_id for doc_id, _ in label_documents(label_report())] == [i for i, _ in docs]
    model_doc, group_f = docs[0][1], docs[3][1]
    assert model_doc["performance"]["latency_p90"] == 54.0 and model_doc["window"]["count"] == 100
    assert group_f["anomalies"] == {"count": 1, "kinds": ["fairness"]}


def test_every_field_of_a_label_document_is_declared_in_the_strict_mapping() -> None:
    for _, doc in label_documents(label_report()):
        assert undeclared(doc, mapping(DRIFT_SCORES)["properties"]) == []
