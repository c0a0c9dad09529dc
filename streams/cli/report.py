"""``logdrift report``: one self-contained HTML page of charts from log files, the embedded
runner's store, or Elasticsearch.

logdrift report --baseline base/ serving.jsonl --out report.html
logdrift report --baseline base/ serving.jsonl --pipeline pipeline.jsonl --out report.html
logdrift report --baseline base/ --store logdrift.db --out report.html
logdrift report --baseline base/ --from-es https://es.internal:9200 --out report.html
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import click
from rich.console import Console

from config.settings import Settings
from detectors.engine import EngineOptions
from detectors.report.data import ReportInput, build_report
from streams.cli.common import field_mapping, load_baselines, settings_for

console = Console(highlight=False, soft_wrap=True)


@click.command(short_help="Write an HTML drift report with charts (opens offline).")
@click.argument("logs", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--baseline",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Baseline directory (made by `logdrift baseline`).",
)
@click.option(
    "--store", type=click.Path(path_type=Path), help="The embedded runner's SQLite store."
)
@click.option("--from-es", "es_url", help="Elasticsearch URL (credentials as for `logdrift run`).")
@click.option("--out", default="report.html", show_default=True, type=click.Path(path_type=Path))
@click.option("--model", help="Model to report on [the baseline's].")
@click.option(
    "--windows",
    "max_windows",
    default=1440,
    show_default=True,
    help="Newest windows read from a store or Elasticsearch.",
)
@click.option("--window-seconds", type=float, help="LOGS: event-time window length [60].")
@click.option("--min-count", type=int, help="LOGS: fewest records a window is judged on [200].")
@click.option(
    "--pipeline",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="LOGS: JSON lines of the pipeline's features for logged requests: feature skew.",
)
@click.pass_context
def report(
    ctx: click.Context,
    logs: tuple[Path, ...],
    baseline: Path,
    store: Path | None,
    es_url: str | None,
    out: Path,
    model: str | None,
    max_windows: int,
    window_seconds: float | None,
    min_count: int | None,
    pipeline: Path | None,
) -> None:
    """Write one HTML file, readable offline, showing per feature the training vs the last full
    window's distribution, the drift score per window with its threshold and the anomalies on
    that timeline (windows judged at shutdown on too few records marked partial); a summary
    sorted by how far each feature moved in the last full window, with how many windows it was
    past its threshold; the schema violations.
    Read from serving-log files (JSON lines, run through the detectors as `logdrift check`
    does; with `--pipeline FILE` the pipeline's feature records beside them, feature skew per
    feature as `logdrift check --pipeline` finds it), from `--store` (what `logdrift run`
    wrote) or from `--from-es`."""
    from streams.report.charts import write_report
    from streams.report.inputs import from_logs, from_store
    from streams.skew_options import skew_options_for_check

    sources = [bool(logs), store is not None, es_url is not None]
    if sum(sources) != 1:
        raise click.UsageError("give exactly one source: LOGS..., --store FILE or --from-es URL")
    if pipeline is not None and not logs:
        raise click.UsageError("--pipeline goes with serving-log files (LOGS...)")
    settings = settings_for(ctx)
    base = load_baselines([baseline], settings)[0]
    name = model or base.model
    data: ReportInput
    if logs:
        _json_lines_only(logs)
        options = EngineOptions(
            window_seconds or settings.window.seconds, min_count or settings.window.min_count
        )
        data = from_logs(
            logs,
            base,
            options,
            field_mapping(settings),
            pipeline,
            skew_options_for_check(settings.feature_skew),
        )
    elif store is not None:
        if not store.exists():
            raise click.ClickException(f"{store}: no anomaly store here")
        data = from_store(store, name, len(base.references), max_windows)
    else:
        data = _from_es(settings, es_url or "", name, len(base.references), max_windows)
    page = build_report(base, data, name)
    size = write_report(page, out, time.time())
    console.print(
        f"wrote {out} ({size / 1024:,.0f} KiB): {len(data.scores)} feature-windows, "
        f"{len(data.anomalies)} anomalies; {page.headline}"
    )


def _json_lines_only(logs: tuple[Path, ...]) -> None:
    """Serving logs are JSON lines, as `logdrift check` reads them (other suffixes are tried
    as JSON lines too)."""
    from connectors.files import FileFormatError, infer_format

    for path in logs:
        try:
            fmt, _ = infer_format(path)
        except FileFormatError:
            continue
        if fmt != "jsonl":
            raise click.UsageError(f"{path}: serving logs are read as JSON lines, not {fmt}")


def _from_es(
    settings: Settings, url: str, model: str | None, features: int, max_windows: int
) -> ReportInput:
    from connectors.elasticsearch import ElasticError
    from streams.report.inputs import from_es

    es = settings.elasticsearch.model_copy(update={"url": url})
    try:
        return asyncio.run(from_es(es, model, features, max_windows))
    except ElasticError as exc:
        raise click.ClickException(f"{url}: {exc}") from None
    except ValueError as exc:  # a CA file that does not load, a malformed url
        raise click.ClickException(str(exc)) from None
