"""``logdrift es`` and ``logdrift kibana``: the Elasticsearch and Kibana side of the CLI.

logdrift es setup                       # index templates + retention, on the configured node
logdrift es status                      # the runner's outbox: pending, shipped, rejected
logdrift kibana install --url URL       # data views, dashboard, alert rules
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console

from config.settings import ElasticsearchSettings, Settings
from connectors.elasticsearch import ElasticError, ElasticSink
from connectors.es_documents import IndexNames
from connectors.kibana import (
    KIBANA_DIR,
    InstallReport,
    KibanaAuth,
    KibanaError,
    KibanaInstaller,
    load_rules,
    load_saved_objects,
    render_rule,
    render_saved_objects,
)
from connectors.outbox import Outbox
from connectors.store import AnomalyStore
from streams.cli.common import settings_for

console = Console(highlight=False, soft_wrap=True)


def _settings(ctx: click.Context) -> Settings:
    return settings_for(ctx)


def _elasticsearch(ctx: click.Context) -> ElasticsearchSettings:
    settings = _settings(ctx).elasticsearch
    if settings.url is None:
        raise click.ClickException(
            "elasticsearch.url is not set (LOGDRIFT_ELASTICSEARCH__URL or your --config file)"
        )
    return settings


@click.group(short_help="Elasticsearch: index templates, retention, the outbox.")
def es() -> None:
    """Elasticsearch: index templates, retention, and the embedded runner's outbox."""


@es.command("setup", short_help="Install index templates; apply retention.")
@click.pass_context
def es_setup(ctx: click.Context) -> None:
    """Install (or update) the index templates and delete daily indices past retention.
    `logdrift run` does the same at start; this is for a node set up ahead of time."""
    settings = _elasticsearch(ctx)
    try:
        templates, expired = asyncio.run(_setup(settings))
    except ElasticError as exc:
        raise click.ClickException(f"{settings.url}: {exc}") from None
    names = IndexNames(settings.index_prefix)
    console.print(f"index templates {', '.join(templates)} installed on {settings.url}")
    console.print(
        f"indices {names.pattern('anomalies')} and {names.pattern('drift-scores')}, one a day; "
        f"retention {settings.retention_days} days: "
        + (f"deleted {', '.join(expired)}" if expired else "nothing to delete")
    )


async def _setup(settings: ElasticsearchSettings) -> tuple[list[str], list[str]]:
    sink = ElasticSink.from_settings(settings)
    try:
        templates = await sink.setup()
        expired = await sink.enforce_retention(datetime.now(UTC).date())
    finally:
        await sink.close()
    return templates, expired


@es.command("status", short_help="The outbox: pending, shipped, rejected.")
@click.option("--store", type=click.Path(path_type=Path), help="SQLite anomaly store.")
@click.pass_context
def es_status(ctx: click.Context, store: Path | None) -> None:
    """How many documents wait in the runner's outbox, were shipped, or were rejected (with
    why). Reads the store; works while the runner runs."""
    path = store or _settings(ctx).store
    if not path.exists():
        raise click.ClickException(f"{path}: no anomaly store here (run `logdrift run` first)")
    with AnomalyStore(path) as s:
        outbox = Outbox(s)
        counts = outbox.counts()
        rejected = outbox.rejected(limit=10)
    console.print(
        f"outbox: {counts.pending:,} pending, {counts.shipped:,} shipped (kept a day), "
        f"{counts.rejected:,} rejected"
    )
    for row in rejected:
        console.print(f"rejected {row.item.target} {row.item.doc_id}: {row.error}", soft_wrap=True)


@click.group(short_help="Kibana: data views, dashboard and alert rules.")
def kibana() -> None:
    """Kibana: data views, dashboard and alert rules for logdrift's indices."""


@kibana.command("install", short_help="Import saved objects; create or update rules.")
@click.option("--url", required=True, help="Kibana base URL, e.g. https://kibana.example:5601")
@click.option("--space", help="Kibana space id [default space].")
@click.option(
    "--assets",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=KIBANA_DIR,
    show_default=True,
    help="Folder with saved_objects.ndjson and rules/*.json.",
)
@click.pass_context
def kibana_install(ctx: click.Context, url: str, space: str | None, assets: Path) -> None:
    """Import the saved objects (overwriting earlier copies) and create or update the alert
    rules. Credentials and CA file: the elasticsearch settings (one security realm)."""
    settings = _settings(ctx).elasticsearch
    names = IndexNames(settings.index_prefix)
    objects = render_saved_objects(load_saved_objects(assets / "saved_objects.ndjson"), names)
    rules = [render_rule(r, names) for r in load_rules(assets / "rules")]
    auth = KibanaAuth(settings.api_key_value(), settings.username, settings.password_value())
    installer = KibanaInstaller(url, auth, settings.ca_file, space)
    try:
        report: InstallReport = asyncio.run(installer.install(objects, rules))
    except (KibanaError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"imported {report.imported} saved objects into {installer.base}")
    console.print(
        f"alert rules: {len(report.created_rules)} created, {len(report.updated_rules)} updated"
    )
