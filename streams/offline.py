"""The offline paths: build a baseline from a training file, and check a file of serving logs
against a baseline (a CI gate before a model deploy)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from connectors.baseline_files import (
    SCHEMA_FILE,
    read_previous_inference,
    read_schema_document,
    render_schema,
    write_baseline,
)
from connectors.es_incidents import incident_document, rollup_document
from connectors.files import FileFormatError, iter_json_lines, open_rows
from detectors.anomaly import Anomaly
from detectors.baseline import Baseline
from detectors.engine import Engine, EngineOptions, Result, WindowReport
from detectors.incident_feed import track
from detectors.incidents import Incident, IncidentOptions, IncidentTracker
from detectors.infer import BaselineBuilder, BaselineOptions
from detectors.infer_schema import infer_schema, merge_edits
from detectors.records import DecodeError, FieldMapping, ServingRecord, decode_record
from detectors.rollups import RollUp
from detectors.schema import Schema, schema_errors


def _rows_with_progress(
    path: Path, label: str, progress: Progress | None, features_key: str
) -> Iterator[dict[str, Any]]:
    source = open_rows(path, features_key=features_key)
    task = progress.add_task(label, total=source.size_bytes) if progress else None
    with source:
        for i, row in enumerate(source):
            if progress is not None and task is not None and i % 4096 == 0:
                progress.update(task, completed=source.position)
            yield row
    if progress is not None and task is not None:
        progress.update(task, completed=source.size_bytes)


def build_baseline(
    training: Path,
    out: Path,
    options: BaselineOptions,
    model: str | None,
    *,
    show_progress: bool = True,
    features_key: str = "features",
) -> Schema:
    """Two streaming passes over ``training``; writes schema.yaml and profile.json into ``out``,
    keeping every value a person changed in an existing schema.yaml."""
    builder = BaselineBuilder(options)
    columns = [TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn()]
    with Progress(*columns, disable=not show_progress, transient=True) as progress:
        for row in _rows_with_progress(
            training, "pass 1/2 (types, quantiles)", progress, features_key
        ):
            builder.first_pass(row)
        builder.fix_bins()
        for row in _rows_with_progress(training, "pass 2/2 (bin counts)", progress, features_key):
            builder.second_pass(row)
    if builder.rows == 0:
        raise FileFormatError(training, "no rows")
    profile = builder.finish(str(training.name))
    inferred, notes = infer_schema(
        profile,
        model=model,
        tolerance=options.range_tolerance,
        sensitive=options.sensitive,
        prediction_column=options.prediction_column,
    )
    current = read_schema_document(out / SCHEMA_FILE)
    previous = read_previous_inference(out)
    doc = merge_edits(inferred, previous, current) if current is not None else inferred
    problems = schema_errors(doc)
    if problems:
        raise ValueError(f"{out / SCHEMA_FILE}: your edits no longer fit: " + "; ".join(problems))
    write_baseline(out, render_schema(doc, notes, profile.source, profile.rows), profile, inferred)
    return Schema.model_validate(doc)


@dataclass(slots=True)
class CheckReport:
    records: int = 0
    bad_lines: list[str] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    windows: list[WindowReport] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)  # each one's last state
    rollups: list[RollUp] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "bad_lines": self.bad_lines,
            "anomalies": [a.to_document() for a in self.anomalies],
            "incidents": [incident_document(i) for i in self.incidents],
            "rollups": [rollup_document(r) for r in self.rollups if r.features_alarmed],
            "windows": len(self.windows),
        }

    def add(self, result: Result, tracker: IncidentTracker) -> None:
        self.anomalies += result.anomalies
        self.windows += result.reports
        step = track(tracker, result)
        found = {i.id: i for i in self.incidents} | {i.id: i for i in step.incidents()}
        self.incidents = list(found.values())
        self.rollups += step.rollups


CHECK_BATCH = 1_000  # records per Engine batch: columns long enough for numpy, memory bounded


def check_logs(
    logs: Path,
    baselines: list[Baseline],
    options: EngineOptions,
    mapping: FieldMapping | None = None,
    on_bad: Callable[[str], None] | None = None,
    incidents: IncidentOptions | None = None,
) -> CheckReport:
    """Run the engine over a JSON-lines file of serving records; bad lines are reported with
    their line number and reason, and the walk goes on. Anomalies are gathered into incidents
    as the embedded runner gathers them (the file's end judges the open windows, and an
    incident still alarming then is reported open)."""
    engine = Engine(baselines, options)
    tracker = IncidentTracker(incidents or IncidentOptions())
    report = CheckReport()
    batch: list[tuple[int, ServingRecord]] = []  # records go to the Engine CHECK_BATCH at once

    def flush() -> None:  # before a bad line, so bad lines are reported in the file's order
        result, refused = engine.process_batch([record for _, record in batch])
        report.bad_lines += [f"{logs} line {batch[i][0]}: {exc}" for i, exc in refused]
        report.records += len(batch) - len(refused)
        report.add(result, tracker)
        batch.clear()

    for number, item in iter_json_lines(logs):
        bad = str(item) if isinstance(item, FileFormatError) else None
        if bad is None:
            try:
                batch.append((number, decode_record(item, mapping or FieldMapping())))
            except DecodeError as exc:
                bad = f"{logs} line {number}: {exc}"
        if bad is not None:
            flush()
            report.bad_lines.append(bad)
        elif len(batch) >= CHECK_BATCH:
            flush()
    flush()
    report.add(engine.close_all(), tracker)
    if on_bad is not None:
        for line in report.bad_lines:
            on_bad(line)
    return report
