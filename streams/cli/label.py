"""``logdrift label ...``: the human-labelling loop (docs/labelling.md).

label queue    incidents + serving logs --> the labelling queue (store)
label export   queue --> Label Studio import JSON / CSV / tasks through its API
label import   Label Studio export (file or API) --> agreement, resolved labels (store)
label dataset  resolved labels + features --> Parquet / CSV training set
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from config.settings import Settings
from connectors import label_store
from connectors.dataset_files import write_rows
from connectors.label_studio import LabelStudio, LabelStudioError
from connectors.label_studio_format import label_config, parse_export, task, tasks_csv, tasks_json
from connectors.store import AnomalyStore
from detectors.labels.agreement import AgreementOptions
from detectors.labels.queue import QueueOptions
from streams.cli.common import field_mapping, load_baselines, settings_for
from streams.labelling import (
    LabellingIndexError,
    dataset_rows,
    fill_queue,
    human_feedback,
    import_answers,
    index_queue,
    json_lines,
    read_feedback,
)

console = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

STORE = click.option("--store", type=click.Path(path_type=Path), help="The store [settings].")
FEEDBACK = click.option(
    "--feedback",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON lines of process feedback (request id, label): coverage and rater checks.",
)


def _store(settings: Settings, path: Path | None) -> AnomalyStore:
    try:
        return AnomalyStore(path or settings.store)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _index(settings: Settings, db: AnomalyStore) -> None:
    """The queue into Elasticsearch when one is configured (elasticsearch.url)."""
    try:
        n = index_queue(settings.elasticsearch, db)
    except LabellingIndexError as exc:
        raise click.ClickException(str(exc)) from None
    if n is not None:
        console.print(
            f"indexed {n} queue items into {settings.elasticsearch.index_prefix}-label-queue"
        )


def _client(settings: Settings, url: str | None, token: str | None) -> LabelStudio | None:
    url = url or settings.labelling.label_studio_url
    if url is None:
        return None
    token = token or settings.labelling.token()
    if not token:
        raise click.UsageError(
            "Label Studio needs a token: --token, LOGDRIFT_LABELLING__LABEL_STUDIO_TOKEN "
            "or labelling.label_studio_token_file"
        )
    try:
        return LabelStudio(url, token)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group()
def label() -> None:
    """Human labelling with Label Studio: queue, export, import, dataset."""


@label.command("queue")
@click.option("--logs", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--baseline", "baselines", multiple=True, type=click.Path(path_type=Path))
@STORE
@FEEDBACK
@click.option("--budget", type=int, help="Records per model per day [labelling.budget_per_day].")
@click.pass_context
def queue_command(
    ctx: click.Context,
    logs: Path,
    baselines: tuple[Path, ...],
    store: Path | None,
    feedback: Path | None,
    budget: int | None,
) -> None:
    """Choose serving records for raters: for each open or past drift and concept-drift incident
    in the store, and each slice whose label coverage is low, a sample stratified by slice and
    distance from training, within the day's budget."""
    settings = settings_for(ctx)
    loaded = load_baselines(list(baselines), settings) if baselines else []
    options = QueueOptions(budget if budget is not None else settings.labelling.budget_per_day)
    mapping = field_mapping(settings)
    with _store(settings, store) as db:
        filled = fill_queue(
            db,
            logs,
            loaded[0] if loaded else None,
            mapping,
            slice_key=settings.labels.slices.key,
            options=options,
            min_coverage=settings.labelling.min_coverage,
            feedback=read_feedback(feedback, mapping),
        )
        _index(settings, db)
    for line in filled.bad_lines:
        err.print(f"[yellow]skipped[/yellow] {escape(line)}", soft_wrap=True)
    for t in filled.triggers:
        console.print(escape(f"trigger {t.model}: {t.reason}"), soft_wrap=True)
    left = ", ".join(f"{m} {n} left today" for m, n in sorted(filled.budget_left.items()))
    console.print(
        f"queued {filled.queued} of {filled.offered:,} candidate records "
        f"({len(filled.triggers)} triggers; {left or 'no trigger'}); {filled.bad} bad lines"
    )


@label.command("export")
@STORE
@click.option("--out", type=click.Path(path_type=Path), help="Label Studio import JSON.")
@click.option("--csv", "csv_out", type=click.Path(path_type=Path), help="The same as CSV.")
@click.option("--label-studio", "url", help="Create the tasks there [labelling.label_studio_url].")
@click.option("--token", help="Label Studio API token [LOGDRIFT_LABELLING__LABEL_STUDIO_TOKEN].")
@click.option("--project", type=int, help="An existing project id (default: a new project).")
@click.option("--overlap", type=int, help="Raters per item [labelling.overlap].")
@click.pass_context
def export_command(
    ctx: click.Context,
    store: Path | None,
    out: Path | None,
    csv_out: Path | None,
    url: str | None,
    token: str | None,
    project: int | None,
    overlap: int | None,
) -> None:
    """Hand the queued items to raters, as files or as tasks in a Label Studio project."""
    settings = settings_for(ctx)
    client = _client(settings, url, token)
    if out is None and csv_out is None and client is None:
        raise click.UsageError("say where: --out FILE, --csv FILE or --label-studio URL")
    with _store(settings, store) as db:
        items = label_store.queue(db, "queued")
        if out is not None:
            out.write_bytes(tasks_json(items))
        if csv_out is not None:
            csv_out.write_text(tasks_csv(items))
        if client is not None and items:
            choices = list(settings.labelling.choices)
            try:
                if project is None:
                    raters = overlap or settings.labelling.overlap
                    project = client.create_project(
                        "logdrift labelling", label_config(choices), raters
                    )
                client.import_tasks(project, [task(i) for i in items])
            except LabelStudioError as exc:
                raise click.ClickException(str(exc)) from None
        label_store.set_state(db, [i.request_id for i in items], "exported")
        _index(settings, db)
    where = f" into Label Studio project {project}" if client is not None else ""
    console.print(f"exported {len(items)} items{where}")


@label.command("import")
@STORE
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--label-studio", "url", help="Pull the export through the API.")
@click.option("--token")
@click.option("--project", type=int)
@FEEDBACK
@click.option("--batch", help="A name for this batch [the time].")
@click.option(
    "--feedback-out",
    type=click.Path(path_type=Path),
    help="Write the resolved labels as feedback JSON lines (label_source: human).",
)
@click.pass_context
def import_command(
    ctx: click.Context,
    store: Path | None,
    path: Path | None,
    url: str | None,
    token: str | None,
    project: int | None,
    feedback: Path | None,
    batch: str | None,
    feedback_out: Path | None,
) -> None:
    """Read the raters' answers back: agreement, majority labels, flagged items and raters.
    Exit 0: imported; 1: imported, with items in error (each named on stderr)."""
    settings = settings_for(ctx)
    s = settings.labelling
    client = _client(settings, url, token) if path is None else None
    if path is None and (client is None or project is None):
        raise click.UsageError("say where: --file EXPORT.json, or --label-studio URL --project ID")
    with _store(settings, store) as db:
        known = {i.request_id: i for i in label_store.queue(db)}
        try:
            if client is not None and project is not None:
                parsed = parse_export(
                    client.export(project), list(s.choices), known, client.users()
                )
            else:
                parsed = parse_export(path.read_bytes() if path else b"", list(s.choices), known)
        except LabelStudioError as exc:
            raise click.ClickException(str(exc)) from None
        name = batch or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        options = AgreementOptions(s.min_share, s.careless_kappa)
        fb = read_feedback(feedback, field_mapping(settings))
        done = import_answers(db, parsed, s.choices, fb, options, name)
        _index(settings, db)
    for problem in done.errors:
        err.print(f"[yellow]error[/yellow] {escape(problem)}", soft_wrap=True)
    for r in done.figures.flagged:
        why = "tie" if r.tie else f"majority {r.votes} of {r.raters}"
        console.print(escape(f"review {r.item}: {why}"), soft_wrap=True)
    console.print(escape(done.figures.line(name)), soft_wrap=True)
    if feedback_out is not None:
        feedback_out.write_bytes(json_lines(human_feedback(done.labels, s.choices)))
    sys.exit(1 if done.errors else 0)


@label.command("dataset")
@STORE
@click.option("--out", required=True, type=click.Path(path_type=Path), help="FILE.parquet|.csv")
@click.pass_context
def dataset_command(ctx: click.Context, store: Path | None, out: Path) -> None:
    """Write the labelled examples (features, label, source, agreement): a training set."""
    settings = settings_for(ctx)
    with _store(settings, store) as db:
        rows = dataset_rows(db, settings.labelling.choices)
    try:
        write_rows(rows, out)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    console.print(f"wrote {len(rows)} labelled examples to {out}")
