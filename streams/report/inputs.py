"""Where ``logdrift report`` gets its windows, scores and anomalies: serving-log files run
through the Engine, the embedded runner's SQLite store, or the Elasticsearch indices."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from config.settings import ElasticsearchSettings
from connectors.elasticsearch import client_from_settings
from connectors.es_documents import ANOMALIES, DRIFT_SCORES, IndexNames
from connectors.es_reader import anomaly_from_document, score_from_document, search_newest
from connectors.files import FileFormatError, iter_json_lines
from connectors.store import AnomalyStore
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions, Result
from detectors.records import DecodeError, FieldMapping, decode_record
from detectors.report.data import ReportInput
from detectors.skew.monitor import SkewOptions
from streams.offline_skew import PipelineFeed


def _account(data: ReportInput, result: Result) -> None:
    data.anomalies += result.anomalies
    data.skew += result.skew
    for r in result.reports:
        data.add_window(r.start, r.end, r.scores, r.windows, r.partial)


def from_logs(
    paths: Iterable[Path],
    baseline: Baseline,
    options: EngineOptions,
    mapping: FieldMapping,
    pipeline: Path | None = None,
    skew: SkewOptions | None = None,
) -> ReportInput:
    """Run JSON-lines serving logs through the Engine (as `logdrift check` does). Only each
    feature's last full window is kept beside the scores, so memory grows with windows, not
    records; undecodable lines are counted by reason. With ``pipeline`` (a JSON-lines file of
    the pipeline's feature records, as `logdrift check --pipeline` reads it), its records are
    fed in event-time order beside the serving records: feature skew per window."""
    engine = Engine([baseline], options, skew=(skew or SkewOptions()) if pipeline else None)
    feed = PipelineFeed(pipeline, engine, mapping) if pipeline else None
    paths = list(paths)
    data = ReportInput(
        source=", ".join(str(p) for p in [*paths, *([pipeline] if pipeline else [])])
    )
    for path in paths:
        for _number, item in iter_json_lines(path):
            if isinstance(item, FileFormatError):
                _dead(data, "not JSON")
                continue
            try:
                record = decode_record(item, mapping)
                if feed is not None and feed.due(record.ts):
                    _account(data, feed.until(record.ts))
                result = engine.process(record)
            except DecodeError as exc:
                _dead(data, f"{exc.field}: {exc.problem.split(' (')[0]}")
                continue
            data.records += 1
            _account(data, result)
    if feed is not None:
        _account(data, feed.rest())
        data.pipeline_records = feed.records
        for line in feed.bad_lines:  # "FILE line N: field: problem (detail)"
            _dead(data, f"pipeline: {line.split(': ', 1)[-1].split(' (')[0]}")
    _account(data, engine.close_all())
    return data


def _dead(data: ReportInput, reason: str) -> None:
    data.dead_letters[reason] = data.dead_letters.get(reason, 0) + 1


def from_store(path: Path, model: str | None, features: int, max_windows: int) -> ReportInput:
    """The store's newest ``max_windows`` windows of scores (``features`` rows each), the
    anomalies raised in them, and the dead letters."""
    data = ReportInput(source=str(path))
    with AnomalyStore(path) as store:
        rows = store.scores(model=model, limit=max_windows * features)
        for row in rows:
            window = {row.score.feature: row.window}
            data.add_window(row.start, row.end, [row.score], window, row.partial)
        since = min((r.start for r in rows), default=None)
        data.anomalies = (
            store.query(model=model)
            if since is None
            else [a for a in store.query(model=model, since=since) if a.window_start >= since]
        )
        data.incidents = store.incidents(model=model, since=since)
        data.dead_letters = store.dead_letter_counts()
    data.records = _records(data)
    return data


def _records(data: ReportInput) -> int:
    """Records in the windows: each window's count once (every feature's score repeats it)."""
    per_window: dict[tuple[float, float], int] = {}
    for p in data.scores:
        key = (p.start, p.end)
        per_window[key] = max(per_window.get(key, 0), p.score.seen)
    return sum(per_window.values())


async def from_es(
    settings: ElasticsearchSettings, model: str | None, features: int, max_windows: int
) -> ReportInput:
    """The newest ``max_windows`` windows of drift scores (``features`` documents each) and the
    anomalies raised in them, from the configured node's aliases."""
    names = IndexNames(settings.index_prefix)
    data = ReportInput(
        source=f"{settings.url} ({names.alias(DRIFT_SCORES)}, {names.alias(ANOMALIES)})"
    )
    client = client_from_settings(settings)
    try:
        docs = await search_newest(client, names, DRIFT_SCORES, model, max_windows * features)
        scores = [score_from_document(d) for d in docs]
        for s in scores:
            data.add_window(s.start, s.end, [s.score], {s.score.feature: s.distribution}, s.partial)
        since = min((s.start for s in scores), default=None)
        found = await search_newest(client, names, ANOMALIES, model, 10_000, since)
        data.anomalies = [anomaly_from_document(d) for d in found]
    finally:
        await client.close()
    data.records = _records(data)
    return data
