"""The ``logdrift`` command line.

fluent-logger / Fluentd --forward--> logdrift run --> anomalies (stdout + SQLite)
training file --> logdrift baseline --> schema.yaml + profile.json
serving log file --> logdrift check --> table or JSON, exit 1 on anomalies
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson
from rich.console import Console

from connectors.baseline_files import BaselineError, validate_schema_file
from connectors.files import FileFormatError
from connectors.store import AnomalyStore
from detectors.anomaly import SEVERITIES, iso
from detectors.baseline.calibrate import CalibrationOptions
from detectors.baseline.infer import BaselineOptions
from detectors.engine import Engine, EngineOptions
from streams import logs
from streams.cli.common import field_mapping as _mapping
from streams.cli.common import load_baselines as _load_baselines
from streams.cli.common import parse_since as _since
from streams.cli.common import settings_for as _settings
from streams.simulation.traffic import SCENARIOS, Injection, serving_records

if TYPE_CHECKING:
    from detectors.baseline.reference import Baseline
    from detectors.records import FieldMapping
    from streams.training_rows import RowsAsRecords

console = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

DEMO_DIR = Path("logdrift-demo")
SCENARIO_HELP = "; ".join(f"{s.name}: {s.what}" for s in SCENARIOS.values())


def _names(value: str) -> frozenset[str]:
    return frozenset(v.strip() for v in value.split(",") if v.strip())


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    type=click.Path(path_type=Path),
    help="Settings YAML (overrides the "
    "defaults in config/logdrift.yaml; LOGDRIFT_* variables override both).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "text"]),
    help="Log lines as JSON or text [auto: JSON unless stderr is a terminal].",
)
@click.pass_context
def main(ctx: click.Context, config: Path | None, verbose: bool, log_format: str | None) -> None:
    """logdrift watches ML prediction logs and says when serving data stops looking like
    training data.

    \b
    Start here:
      logdrift demo                              # everything, from nothing, in ~a minute
    Then, with your own model:
      logdrift baseline train.csv --out base/    # profile training data, infer a schema
      $EDITOR base/schema.yaml                   # adjust; `logdrift schema validate base/`
      logdrift run --baseline base/              # listen for fluent-logger / Fluentd
      logdrift anomalies                         # what was caught
      logdrift check serving.jsonl --baseline base/   # offline gate, exit 1 on anomalies
      logdrift report --baseline base/ --store logdrift.db   # charts in one HTML file
    """
    logs.configure(log_format or "auto", logging.DEBUG if verbose else logging.INFO)
    ctx.obj = {"config": config, "log_format": log_format, "verbose": verbose}


@main.command(short_help="Profile training data into a baseline directory.")
@click.argument("training", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Baseline directory to write (schema.yaml, profile.json, privacy.key).",
)
@click.option("--model", help="Model name the baseline watches (records' `model` field).")
@click.option("--bins", default=16, show_default=True, help="Quantile bins per numeric feature.")
@click.option(
    "--max-vocabulary",
    default=50,
    show_default=True,
    help="Most categories tracked; more distinct values make the domain open.",
)
@click.option(
    "--range-tolerance",
    default=0.25,
    show_default=True,
    help="Widen the training p0.1..p99.9 range by this fraction of its width.",
)
@click.option(
    "--prediction-column",
    default="prediction",
    show_default=True,
    help="Training column holding the model's output. The baseline calls it `prediction`, "
    "as serving records do (their field is set by `fields.prediction` in the settings).",
)
@click.option("--ignore", default="", help="Comma-separated columns to leave out (ids, labels).")
@click.option(
    "--time-column",
    default="ts",
    show_default=True,
    help="Column holding each row's time (ISO-8601 or epoch seconds): not profiled; it orders "
    "the rows so the baseline learns how the data varies over time (autocorrelation, cycles) "
    "and sets every chance level from that. Rows without it are taken in file order.",
)
@click.option(
    "--sensitive",
    default="",
    help="Comma-separated features whose raw values must never leave the worker.",
)
@click.option(
    "--false-alarm-budget",
    default=1e-9,
    show_default=True,
    help="Change-detector false alarms per event per feature, for calibration.",
)
@click.option(
    "--min-shift",
    default=0.5,
    show_default=True,
    help="Smallest mean shift (standard deviations) the change detectors target.",
)
@click.option(
    "--skip-bad-rows",
    is_flag=True,
    help="Leave out malformed rows (ragged, short, empty) and count text in a number column "
    "as an invalid value, reporting both; without it such rows stop the build (exit 2).",
)
@click.pass_context
def baseline(
    ctx: click.Context,
    training: Path,
    out: Path,
    model: str | None,
    bins: int,
    max_vocabulary: int,
    range_tolerance: float,
    prediction_column: str,
    ignore: str,
    time_column: str,
    sensitive: str,
    false_alarm_budget: float,
    min_shift: float,
    skip_bad_rows: bool,
) -> None:
    """Profile TRAINING (CSV, JSON lines or Parquet) into a baseline directory.

    Streams the file twice in memory bounded by features x bins, infers the schema (types,
    presence, domains, ranges, NaN policy), calibrates the change detectors to the false-alarm
    budget, and writes a commented schema.yaml. Re-running keeps every edit you made to it.
    """
    from connectors.baseline_files import privacy_key
    from streams.offline import build_baseline

    settings = _settings(ctx)
    try:
        key = privacy_key(out, settings.privacy.key_bytes(), create=True)
        options = BaselineOptions(
            bins=bins,
            max_vocabulary=max_vocabulary,
            range_tolerance=range_tolerance,
            prediction_column=prediction_column,
            ignore=_names(ignore),
            sensitive=_names(sensitive),
            privacy_key=key,
            calibration=CalibrationOptions(budget=false_alarm_budget, min_shift=min_shift),
            time_column=time_column or None,
        )
        schema = build_baseline(
            training,
            out,
            options,
            model,
            skip_bad_rows=skip_bad_rows,
            on_bad_rows=lambda line: err.print(f"[yellow]warning[/yellow] {line}"),
        )
    except (FileFormatError, BaselineError, ValueError) as exc:
        raise InputError(str(exc)) from None
    console.print(
        f"baseline written to {out}/: {len(schema.features)} features"
        + (", prediction" if schema.prediction else "")
        + f". Review {out}/schema.yaml, then `logdrift schema validate {out}`."
    )


@main.group()
def schema() -> None:
    """Work with a baseline's schema.yaml."""


@schema.command("validate")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def schema_validate(directory: Path) -> None:
    """Check an edited schema.yaml; every problem names the key at fault. Exit 1 on problems."""
    problems = validate_schema_file(directory)
    for p in problems:
        err.print(f"[red]error[/red] {p}")
    if problems:
        sys.exit(1)
    console.print(f"{directory / 'schema.yaml'}: ok")


@main.command(short_help="Run the embedded detector on the forward protocol.")
@click.option(
    "--baseline",
    "baselines",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Baseline directory; repeat for several models.",
)
@click.option("--host", help="Forward-protocol listen address [127.0.0.1].")
@click.option("--port", type=int, help="Forward-protocol port [24224].")
@click.option("--store", type=click.Path(path_type=Path), help="SQLite anomaly store.")
@click.option("--window-seconds", type=float, help="Event-time window length [60].")
@click.option("--min-count", type=int, help="Fewest records a window is judged on [200].")
@click.pass_context
def run(
    ctx: click.Context,
    baselines: tuple[Path, ...],
    host: str | None,
    port: int | None,
    store: Path | None,
    window_seconds: float | None,
    min_count: int | None,
) -> None:
    """Run the embedded detector: a Fluentd forward-protocol listener (what fluent-logger and
    Fluentd's out_forward speak) feeding the engine; anomalies go to stdout and the store.
    SIGTERM or Ctrl-C judges the open windows and exits without losing acknowledged records.

    With `labels.enabled`, feedback records ({"ts", "request_id", "label"}, no features) join
    the prediction logged with the same request id: performance per window, concept drift per
    model and per slice (`labels.slices.key`), and group fairness (`labels.fairness.groups`)."""
    from connectors.forward_listener import forward_listener
    from streams.embedded.durable import (
        dead_letter_bounds,
        durable_from_settings,
        event_time_limits,
    )
    from streams.embedded.forward_letters import ForwardDeadLetters
    from streams.embedded.label_queue import runner_queue
    from streams.embedded.runner import EmbeddedRunner, Pipeline
    from streams.embedded.shipper import shipper_from_settings
    from streams.incident_options import incident_options
    from streams.label_options import label_options
    from streams.metrics import runner_endpoint
    from streams.skew_options import skew_options

    settings = _settings(ctx)
    fwd = settings.forward.model_copy(
        update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    )
    window = settings.window.model_copy(
        update={
            k: v
            for k, v in {"seconds": window_seconds, "min_count": min_count}.items()
            if v is not None
        }
    )
    engine = Engine(
        _load_baselines(list(baselines) or settings.baselines, settings),
        EngineOptions(window.seconds, window.min_count),
        label_options(settings.labels),
        skew_options(settings.feature_skew),
    )
    anomaly_store = AnomalyStore(store or settings.store)
    try:
        shipper = shipper_from_settings(settings.elasticsearch, anomaly_store)  # None: no ES url
    except ValueError as exc:  # a CA file that does not load, a malformed url
        raise click.ClickException(str(exc)) from None
    pipeline = Pipeline(
        engine,
        anomaly_store,
        _mapping(settings),
        emit=lambda line: console.print(line, soft_wrap=True),
        documents=shipper.documents if shipper else None,
        incidents=incident_options(settings.incidents),
        every_anomaly=not settings.incidents.quiet_terminal,
        event_time=event_time_limits(settings),
        pipeline_tag=settings.feature_skew.forward_tag if settings.feature_skew.enabled else None,
        labelling=runner_queue(
            settings.labelling,
            anomaly_store,
            engine.baselines,
            settings.labels.slices.key,
            index=shipper is not None,
        ),
    )
    anomaly_store.bound_dead_letters(dead_letter_bounds(settings))
    endpoint = runner_endpoint(settings.observability, shipper.outbox.backlog if shipper else None)
    try:
        runner = EmbeddedRunner(
            pipeline,
            # Bad entries of a frame are dead letters of the runner; the frame is acked.
            lambda handler: forward_listener(
                fwd, handler, on_bad_entries=ForwardDeadLetters(pipeline)
            ),
            window.idle_close_seconds,
            background=shipper,
            endpoint=endpoint,
            durable=durable_from_settings(settings, pipeline, store or settings.store),
        )
    except (OSError, ValueError) as exc:  # a TLS or shared-key file that does not load
        raise click.ClickException(str(exc)) from None
    try:
        stats = asyncio.run(
            runner.run(
                ready=lambda p: console.print(
                    f"listening on {fwd.host}:{p} (forward protocol)"
                    + (f"; metrics on {endpoint.url}/metrics" if endpoint.url else "")
                )
            )
        )
    finally:
        anomaly_store.close()
    console.print(
        f"stopped: {stats.records:,} records, {stats.anomalies:,} anomalies, "
        f"{stats.incidents_opened:,} incidents opened ({stats.incidents_resolved:,} resolved), "
        f"{stats.windows:,} windows, {stats.dead_letters:,} dead letters"
    )
    if pipeline.labelling is not None:
        console.print(f"labelling queue: {stats.queued_for_raters:,} records queued for raters")
    if engine.skew is not None:  # feature skew: what became of the records joined by request id
        j = engine.skew.join.stats
        console.print(
            f"feature skew join: {stats.pipeline:,} pipeline records, {j.joined:,} joined, "
            f"{j.expired:,} expired, {j.evicted:,} evicted, {j.unmatched:,} unmatched, "
            f"{engine.skew.join.live:,} waiting"
        )


@main.command(short_help="List stored anomalies (or dead letters).")
@click.option("--store", type=click.Path(path_type=Path), help="SQLite anomaly store.")
@click.option("--model")
@click.option("--feature")
@click.option(
    "--kind",
    type=click.Choice(
        [
            "schema_skew",
            "distribution_skew",
            "drift",
            "concept_drift",
            "data_quality",
            "fairness",
            "feature_skew",
        ]
    ),
)
@click.option(
    "--severity",
    type=click.Choice(SEVERITIES),
    help="At least this severe (info: improvements, recorded but never paged).",
)
@click.option("--since", help="ISO-8601 time.")
@click.option("--limit", type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON document per line.")
@click.option("--dead-letters", is_flag=True, help="Show dead-lettered records instead.")
@click.pass_context
def anomalies(
    ctx: click.Context,
    store: Path | None,
    model: str | None,
    feature: str | None,
    kind: str | None,
    severity: str | None,
    since: str | None,
    limit: int | None,
    as_json: bool,
    dead_letters: bool,
) -> None:
    """List stored anomalies (or dead letters), oldest first, with filters."""
    path = store or _settings(ctx).store
    if not path.exists():
        raise click.ClickException(f"{path}: no anomaly store here (run `logdrift run` first)")
    with AnomalyStore(path) as s:
        if dead_letters:
            for d in s.iter_dead_letters(limit):  # a page at a time: bounded memory
                console.print(f"{iso(d.ts)} {d.source} {d.reason}", soft_wrap=True)
            return
        found = s.query(
            model=model,
            feature=feature,
            kind=kind,
            min_severity=severity,
            since=_since(since),
            limit=limit,
        )
    for a in found:
        if as_json:
            sys.stdout.write(orjson.dumps(a.to_document()).decode() + "\n")
        else:
            console.print(a.line(), soft_wrap=True)
    if not as_json:
        console.print(f"{len(found)} anomalies")


@main.command(short_help="Check a serving-log file offline; exit 1 on anomalies.")
@click.argument("logs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--baseline", "baselines", multiple=True, required=True, type=click.Path(path_type=Path)
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--window-seconds", type=float, help="Event-time window length [60].")
@click.option("--min-count", type=int, help="Fewest records a window is judged on [200].")
@click.option(
    "--pipeline",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON lines of the pipeline's features for logged requests: check feature skew.",
)
@click.option(
    "--time-column",
    help="Training rows only: the column of each row's time [the one the baseline was "
    "ordered by; without one, rows 1 s apart in file order].",
)
@click.option(
    "--prediction-column",
    default="prediction",
    show_default=True,
    help="Training rows only: the column holding the model's output, as given to `baseline`.",
)
@click.pass_context
def check(
    ctx: click.Context,
    logs: Path,
    baselines: tuple[Path, ...],
    fmt: str,
    window_seconds: float | None,
    min_count: int | None,
    pipeline: Path | None,
    time_column: str | None,
    prediction_column: str,
) -> None:
    """Validate a JSON-lines file of serving records against a baseline, offline (a CI gate
    before a deploy).

    LOGS may also be training rows (CSV, Parquet, or JSON lines without a features field), as
    `logdrift baseline` reads them: each row is checked as a record of the baseline's model,
    at the time in its time column. The file a baseline was built from raises nothing
    against it; next month's training file can be held against this month's baseline.

    \b
    Exit codes:
      0  clean: records were checked and nothing was found
      1  anomalies found
      2  nothing usable was checked (an empty file, every line bad or for no known model),
         or the input, a baseline or the settings are unusable; or a usage error"""
    from streams.incident_options import incident_options
    from streams.offline import check_logs
    from streams.skew_options import skew_options_for_check

    with _input_errors():
        settings = _settings(ctx)
        loaded = _load_baselines(list(baselines), settings)
        try:
            options = EngineOptions(
                window_seconds or settings.window.seconds, min_count or settings.window.min_count
            )
        except ValueError as exc:  # names the option at fault
            raise click.BadParameter(str(exc)) from None
        rows = _training_rows(logs, loaded, _mapping(settings), time_column, prediction_column)
        report = check_logs(
            logs,
            loaded,
            options,
            _mapping(settings),
            incidents=incident_options(settings.incidents),
            pipeline=pipeline,
            skew=skew_options_for_check(settings.feature_skew),
            source=rows,
        )
        if rows is not None and rows.left_out:
            err.print(f"left out (not in the baseline): {', '.join(sorted(rows.left_out))}")
    if fmt == "json":
        sys.stdout.write(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for line in report.bad_lines[:20]:
            err.print(f"[yellow]skipped[/yellow] {line}")
        for a in report.anomalies:
            console.print(a.line(), soft_wrap=True)
        for inc in report.incidents:
            console.print(inc.line(), soft_wrap=True)
        console.print(
            f"{logs}: {report.records:,} records in {len(report.windows)} windows, "
            f"{len(report.anomalies)} anomalies in {len(report.incidents)} incidents, "
            f"{len(report.bad_lines)} bad lines"
        )
    if report.records == 0:
        raise InputError(f"{logs}: nothing checked: " + _nothing_checked(report.bad_lines))
    sys.exit(1 if report.anomalies else 0)


def _training_rows(
    logs: Path,
    loaded: list[Baseline],
    mapping: FieldMapping,
    time_column: str | None,
    prediction_column: str,
) -> RowsAsRecords | None:
    """LOGS as records of the baseline's model when it holds training rows; None: serving
    records. Says on stderr how the rows are read."""
    from streams.training_rows import RowsAsRecords, baseline_time_column, holds_rows

    if not holds_rows(logs, mapping):
        if time_column is not None:
            raise click.BadParameter("only for training rows", param_hint="--time-column")
        return None
    if len(loaded) != 1 or loaded[0].model is None:
        raise InputError(f"{logs} holds training rows: give exactly one --baseline with a model")
    baseline = loaded[0]
    column = time_column or baseline_time_column(baseline)
    when = f"time from column {column!r}" if column else "no time column: rows 1 s apart"
    err.print(f"{logs}: training rows, checked as records of model {baseline.model} ({when})")
    return RowsAsRecords(logs, baseline, column, prediction_column)


class InputError(click.ClickException):
    """An input the command cannot use (a file, a baseline, the settings): exit 2, so a CI gate
    tells a broken export from a clean one (1 means anomalies)."""

    exit_code = 2


@contextlib.contextmanager
def _input_errors() -> Iterator[None]:
    """Errors reading the inputs exit 2 instead of click's 1."""
    try:
        yield
    except click.UsageError:
        raise
    except click.ClickException as exc:
        raise InputError(exc.message) from None
    except (FileFormatError, BaselineError) as exc:
        raise InputError(str(exc)) from None


def _nothing_checked(bad_lines: list[str]) -> str:
    if not bad_lines:
        return "no records in the file"
    return f"all {len(bad_lines):,} lines are bad (first: {bad_lines[0]})"


@main.command(short_help="Send sample serving traffic through fluent-logger.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=24224, show_default=True)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    default=["stationary"],
    show_default=True,
    help=f"Repeatable. {SCENARIO_HELP}.",
)
@click.option(
    "--at",
    "at_fraction",
    default=0.5,
    show_default=True,
    help="Where in the run the changes start (fraction of the records).",
)
@click.option("--rate", default=100.0, show_default=True, help="Records per second.")
@click.option("--count", default=6000, show_default=True, help="Records to send.")
@click.option("--start", help="Event time of the first record (ISO-8601) [now].")
@click.option("--fast", is_flag=True, help="Send as fast as possible (event times unchanged).")
@click.option("--seed", default=1, show_default=True)
def simulate(
    host: str,
    port: int,
    scenarios: tuple[str, ...],
    at_fraction: float,
    rate: float,
    count: int,
    start: str | None,
    fast: bool,
    seed: int,
) -> None:
    """Send realistic serving traffic for a click-through model through fluent-logger, with
    named changes injected partway."""
    from streams.simulation.demo import send

    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        raise click.BadParameter(f"unknown scenario {unknown[0]!r}; one of {', '.join(SCENARIOS)}")
    began = _since(start) if start else datetime.now().timestamp()
    injections = [Injection(s, int(count * at_fraction)) for s in scenarios if s != "stationary"]
    records = serving_records(
        count, rate=rate, start=began or 0.0, injections=injections, seed=seed
    )
    try:
        sent = send(records, host, port, realtime=not fast, rate=rate)
    except ConnectionError as exc:
        raise click.ClickException(f"{exc} (is `logdrift run` listening?)") from None
    console.print(f"sent {sent:,} records to {host}:{port}")


@main.command(short_help="Everything from nothing, in under a minute.")
@click.option(
    "--dir",
    "--workdir",
    "workdir",
    default=DEMO_DIR,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the demo writes its training data, baseline and store, and leaves them for "
    "the commands it prints (a rerun replaces its own files there).",
)
@click.option("--events", default=60_000, show_default=True)
def demo(workdir: Path, events: int) -> None:
    """Everything from nothing: make training data, build the baseline, start the embedded
    runner, send traffic through fluent-logger with five changes injected partway, and say
    what was caught. Exit 0 when every change was caught and nothing else raised. The files
    stay in --dir, so the `logdrift anomalies` and `logdrift report` commands it prints work."""
    from streams.simulation.demo import run_demo

    logging.getLogger().setLevel(logging.WARNING)
    sys.exit(0 if run_demo(workdir, events) else 1)


from streams.cli.elastic import es, kibana  # noqa: E402  (each group in its own module)

main.add_command(es)
main.add_command(kibana)

from streams.cli.worker import forward_to_kafka, worker  # noqa: E402

main.add_command(worker)
main.add_command(forward_to_kafka)

from streams.cli.report import report  # noqa: E402

main.add_command(report)

from streams.cli.incidents import incidents  # noqa: E402

main.add_command(incidents)

from streams.cli.label import label  # noqa: E402

main.add_command(label)
