"""The offline paths: build a baseline from a training file, and check a file of serving logs
against a baseline (a CI gate before a model deploy)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
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
from connectors.files import BadRows, FileFormatError, iter_json_lines, open_rows
from detectors.anomaly import Anomaly
from detectors.baseline.infer import BaselineBuilder, BaselineOptions
from detectors.baseline.infer_schema import infer_schema, merge_edits
from detectors.baseline.reference import Baseline
from detectors.baseline.schema import Schema, schema_errors
from detectors.blocks import decode_block
from detectors.engine import Engine, EngineOptions, Result
from detectors.incidents.feed import track
from detectors.incidents.rollups import RollUp
from detectors.incidents.tracker import Incident, IncidentOptions, IncidentTracker
from detectors.records import DecodeError, FieldMapping, ServingRecord, decode_record
from detectors.skew.monitor import SkewOptions
from detectors.window_report import WindowReport
from streams.offline_skew import PipelineFeed


def _rows_with_progress(
    path: Path, label: str, progress: Progress | None, features_key: str, bad_rows: BadRows
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, row) for every good row; the bad ones are noted in ``bad_rows`` and skipped."""
    source = open_rows(path, features_key=features_key, bad_rows=bad_rows)
    task = progress.add_task(label, total=source.size_bytes) if progress else None
    with source:
        for i, row in enumerate(source):
            if progress is not None and task is not None and i % 4096 == 0:
                progress.update(task, completed=source.position)
            yield source.line, row
    if progress is not None and task is not None:
        progress.update(task, completed=source.size_bytes)


def _bad_rows(training: Path, malformed: BadRows, not_numbers: BadRows, skip: bool) -> list[str]:
    """Without ``skip`` the build stops here, naming the file and the lines at fault; with it,
    the lines to report."""
    found = [
        (bad.summary(), what)
        for bad, what in (
            (malformed, "left out"),
            (not_numbers, "kept, the text counted as an invalid value"),
        )
        if bad.count
    ]
    if found and not skip:
        problem = "; ".join(summary for summary, _ in found)
        raise FileFormatError(training, f"{problem}; fix them, or pass --skip-bad-rows")
    return [f"{training}: {summary}: {what}" for summary, what in found]


def build_baseline(
    training: Path,
    out: Path,
    options: BaselineOptions,
    model: str | None,
    *,
    show_progress: bool = True,
    features_key: str = "features",
    skip_bad_rows: bool = False,
    on_bad_rows: Callable[[str], None] | None = None,
) -> Schema:
    """Two streaming passes over ``training``; writes schema.yaml and profile.json into ``out``,
    keeping every value a person changed in an existing schema.yaml.

    Malformed rows (ragged, short, empty, not an object) and text in a number column stop the
    build with the file and lines at fault; with ``skip_bad_rows`` the malformed rows are left
    out (so presence is inferred from the good rows only), the text counts as an invalid value,
    and ``on_bad_rows`` hears of both."""
    builder = BaselineBuilder(options)
    malformed, not_numbers = BadRows(), BadRows()
    columns = [TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn()]
    with Progress(*columns, disable=not show_progress, transient=True) as progress:
        first = _rows_with_progress(
            training, "pass 1/2 (types, quantiles)", progress, features_key, malformed
        )
        for _, row in first:
            builder.first_pass(row)
        builder.fix_bins()
        second = _rows_with_progress(
            training, "pass 2/2 (bin counts)", progress, features_key, BadRows()
        )
        for line, row in second:
            wrong = builder.second_pass(row)
            if wrong:
                not_numbers.add(line, f"text in number column {', '.join(wrong)}")
    reports = _bad_rows(training, malformed, not_numbers, skip_bad_rows)
    if builder.rows == 0:
        raise FileFormatError(training, "no rows" if not malformed.count else "no good rows")
    for report in reports:
        if on_bad_rows is not None:
            on_bad_rows(report)
    profile = builder.finish(str(training.name))
    inferred, notes = infer_schema(
        profile,
        model=model,
        tolerance=options.range_tolerance,
        sensitive=options.sensitive,
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
    pipeline: Path | None = None,
    skew: SkewOptions | None = None,
    source: Iterable[tuple[int, dict[str, Any] | FileFormatError]] | None = None,
    *,
    columnar: bool = True,
) -> CheckReport:
    """Run the engine over a JSON-lines file of serving records (or ``source``'s numbered
    records read from it); bad lines are reported with their line number and reason, and the
    walk goes on. Blocks of CHECK_BATCH lines that all decode cleanly go column by column
    (``columnar``; the verdicts are the same), any other block record by record. Anomalies are
    gathered into incidents
    as the embedded runner gathers them (the file's end judges the open windows, and an
    incident still alarming then is reported open)."""
    engine = Engine(baselines, options, skew=(skew or SkewOptions()) if pipeline else None)
    tracker = IncidentTracker(incidents or IncidentOptions())
    report = CheckReport()
    batch: list[tuple[int, ServingRecord]] = []  # records go to the Engine CHECK_BATCH at once
    # --pipeline: the pipeline's feature records, fed in event-time order (feature skew)
    feed = PipelineFeed(pipeline, engine, mapping or FieldMapping()) if pipeline else None

    def flush() -> None:  # before a bad line, so bad lines are reported in the file's order
        result, refused = engine.process_batch([record for _, record in batch])
        report.bad_lines += [f"{logs} line {batch[i][0]}: {exc}" for i, exc in refused]
        report.records += len(batch) - len(refused)
        report.add(result, tracker)
        batch.clear()

    fields = mapping or FieldMapping()
    columnar = columnar and feed is None  # the pipeline's records go between serving records

    def exact(items: list[tuple[int, dict[str, Any] | FileFormatError]]) -> None:
        """Record by record: each bad line reported alone, in the file's order."""
        for number, item in items:
            bad = str(item) if isinstance(item, FileFormatError) else None
            if bad is None:
                try:
                    record = decode_record(item, fields)
                    if feed is not None and feed.due(record.ts):
                        flush()  # the pipeline's records up to this one join what came before
                        report.add(feed.until(record.ts), tracker)
                    batch.append((number, record))
                except DecodeError as exc:
                    bad = f"{logs} line {number}: {exc}"
            if bad is not None:
                flush()
                report.bad_lines.append(bad)
            elif len(batch) >= CHECK_BATCH:
                flush()

    def block(items: list[tuple[int, dict[str, Any] | FileFormatError]]) -> None:
        """A block whose every line decodes cleanly goes columnwise (detectors/blocks.py);
        any other takes the exact path, with the same verdicts."""
        groups = decode_block([item for _, item in items], fields) if columnar else None
        if groups is None:
            exact(items)
            return
        if batch:
            flush()  # what the exact path left over comes first
        result, refused = engine.process_blocks(groups)
        report.bad_lines += [f"{logs} line {items[i][0]}: {exc}" for i, exc in refused]
        report.records += len(items) - len(refused)
        report.add(result, tracker)

    items: list[tuple[int, dict[str, Any] | FileFormatError]] = []
    for entry in iter_json_lines(logs) if source is None else source:
        items.append(entry)
        if len(items) >= CHECK_BATCH:
            block(items)
            items = []
    block(items)
    flush()
    if feed is not None:
        report.add(feed.rest(), tracker)
        report.bad_lines += feed.bad_lines
    report.add(engine.close_all(), tracker)
    if on_bad is not None:
        for line in report.bad_lines:
            on_bad(line)
    return report
