"""Reading back what the sink indexed, for ``logdrift report``: the anomalies and drift scores
of one model from the aliases ``<prefix>-anomalies`` and ``<prefix>-drift-scores``, newest first,
paged with ``search_after`` and bounded by the caller.

Only search is used, so it works on the integ-test distribution as on a full one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch

from connectors.elasticsearch import ElasticError, describe
from connectors.es_documents import ANOMALIES, DRIFT_SCORES, LABELS_FEATURE, IndexNames
from detectors.anomaly import Anomaly
from detectors.records import parse_ts
from detectors.window_report import FeatureScore

PAGE = 1_000
# Newest first, with a unique tie-break so search_after never skips or repeats a document.
_SORTS = {
    ANOMALIES: [{"@timestamp": "desc"}, {"anomaly.id": "asc"}],
    DRIFT_SCORES: [
        {"window.start": "desc"},
        {"model.name": "asc"},
        {"model.version": "asc"},
        {"feature.name": "asc"},
    ],
}


@dataclass(frozen=True, slots=True)
class IndexedScore:
    start: float
    end: float
    score: FeatureScore
    distribution: dict[str, Any] = field(default_factory=dict)
    partial: bool = False  # documents indexed before the field existed read as full windows


def anomaly_from_document(doc: dict[str, Any]) -> Anomaly:
    """The inverse of ``Anomaly.to_document`` (times to the millisecond)."""
    window = doc["window"]
    return Anomaly(
        id=doc["anomaly"]["id"],
        timestamp=parse_ts(doc["@timestamp"]),
        kind=doc["anomaly"]["kind"],
        detector=doc["anomaly"]["detector"],
        severity=doc["anomaly"]["severity"],
        model=doc["model"]["name"],
        model_version=doc["model"]["version"],
        feature=doc["feature"]["name"],
        statistic=doc["statistic"],
        threshold=doc["threshold"],
        window_start=parse_ts(window["start"]),
        window_end=parse_ts(window["end"]),
        window_count=window["count"],
        message=doc["message"],
        slice=dict(doc.get("slice") or {}),
        baseline=dict(doc.get("baseline") or {}),
        current=dict(doc.get("current") or {}),
    )


def score_from_document(doc: dict[str, Any]) -> IndexedScore:
    """A drift-score document as the report reads it; a value JSON could not carry (NaN,
    infinity) comes back as None, 'not computed'."""
    s = doc["score"]
    score = FeatureScore(
        feature=doc["feature"]["name"],
        seen=s["seen"],
        valid=s["valid"],
        missing_rate=s.get("missing_rate") or 0.0,
        skew=s.get("skew"),
        skew_threshold=s.get("skew_threshold"),
        drift=s.get("drift"),
        drift_threshold=s.get("drift_threshold"),
        psi=s.get("psi"),
        violation_rate=s.get("violation_rate") or 0.0,
    )
    window = doc["window"]
    return IndexedScore(
        parse_ts(window["start"]),
        parse_ts(window["end"]),
        score,
        dict(doc.get("distribution") or {}),
        bool(window.get("partial", False)),
    )


async def search_newest(
    client: AsyncElasticsearch,
    names: IndexNames,
    target: str,
    model: str | None,
    limit: int,
    since: float | None = None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` documents of one target for ``model`` (all models when None), newest
    first; ``since``: only windows starting at or after it (epoch seconds). Raises
    ElasticError when the node refuses or cannot be reached."""
    filters: list[dict[str, Any]] = []
    if model is not None:
        filters.append({"term": {"model.name": model}})
    if since is not None:
        filters.append(
            {"range": {"window.start": {"gte": int(since * 1000), "format": "epoch_millis"}}}
        )
    query: dict[str, Any] = {"bool": {"filter": filters}}
    if target == DRIFT_SCORES:  # label windows share the alias but carry no feature score
        query["bool"]["must_not"] = [{"term": {"feature.name": LABELS_FEATURE}}]
    found: list[dict[str, Any]] = []
    after: list[Any] | None = None
    while len(found) < limit:
        try:
            page = await client.search(
                index=names.alias(target),
                query=query,
                sort=_SORTS[target],
                size=min(PAGE, limit - len(found)),
                search_after=after,
                ignore_unavailable=True,
                allow_no_indices=True,
            )
        except (ApiError, TransportError) as exc:
            raise ElasticError(describe(exc)) from exc
        hits = page["hits"]["hits"]
        found += [h["_source"] for h in hits]
        if len(hits) < PAGE:
            break
        after = hits[-1]["sort"]
    return found
