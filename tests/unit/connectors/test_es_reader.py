"""Reading indexed documents back for `logdrift report`: the inverse of what the sink writes,
and the window counts a drift-score document now carries (declared, not indexed)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import orjson

from connectors.es_documents import DRIFT_SCORES, IndexNames, load_templates, score_documents
from connectors.es_reader import anomaly_from_document, score_from_document
from detectors.report.data import window_summary
from detectors.stats import BinCounts, FeatureWindow
from tests.elastic_samples import START, anomaly, report


def _json(doc: dict[str, Any]) -> Any:
    return orjson.loads(orjson.dumps(doc))  # what comes back from the node


def test_an_anomaly_document_reads_back_as_the_anomaly() -> None:
    a = anomaly(slice_={"category": "shoes"})
    assert anomaly_from_document(_json(a.to_document())) == a


def test_a_drift_score_document_reads_back_with_its_window_counts() -> None:
    sample = report()
    win = FeatureWindow(seen=3, bins=BinCounts.zero((0.0, 10.0)))
    for x in (-1.0, 5.0, 5.5):
        win.bins.update(x)  # type: ignore[union-attr]
    with_windows = replace(sample, windows={"price": win})
    docs = {d["feature"]["name"]: d for _, d in score_documents(with_windows)}
    price = score_from_document(_json(docs["price"]))
    assert (price.start, price.end) == (START, START + 60)
    assert price.score == sample.scores[0]
    assert price.distribution == window_summary(win) == _json(docs["price"])["distribution"]
    sent = sample.scores[2]
    assert sent.skew is not None and math.isnan(sent.skew) and sent.psi == math.inf
    age = score_from_document(_json(docs["age"]))
    assert age.score.skew is None and age.score.psi is None  # JSON has neither: not computed
    assert score_from_document(_json(docs["device"])).distribution == {}  # no window given


def test_the_window_counts_are_kept_in_source_and_not_mapped() -> None:
    names = IndexNames()
    props = load_templates(names)[names.template_name(DRIFT_SCORES)]["template"]["mappings"]
    assert props["properties"]["distribution"] == {"type": "object", "enabled": False}


def test_a_partial_window_reads_back_partial_and_an_older_document_as_full() -> None:
    docs = {d["feature"]["name"]: d for _, d in score_documents(replace(report(), partial=True))}
    price = _json(docs["price"])
    assert price["window"]["partial"] is True
    assert score_from_document(price).partial
    del price["window"]["partial"]  # indexed before the field existed
    assert not score_from_document(price).partial
    names = IndexNames()
    mappings = load_templates(names)[names.template_name(DRIFT_SCORES)]["template"]["mappings"]
    assert mappings["properties"]["window"]["properties"]["partial"] == {"type": "boolean"}
