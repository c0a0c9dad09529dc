"""``logdrift incidents``: the open and recent incidents of the embedded runner's store."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import orjson
from rich.console import Console

from connectors.es_incidents import incident_document
from connectors.store import AnomalyStore
from detectors.anomaly import iso
from detectors.incidents.tracker import Incident
from streams.cli.common import parse_since, settings_for

console = Console(highlight=False, soft_wrap=True)
RECENT_SECONDS = 24 * 3600.0


@click.command(short_help="List open and recent incidents (what pages, not every anomaly).")
@click.option("--store", type=click.Path(path_type=Path), help="SQLite anomaly store.")
@click.option("--model", help="Only this model's incidents.")
@click.option(
    "--status",
    type=click.Choice(["open", "resolved", "all"]),
    default="all",
    show_default=True,
    help="open: still alarming; resolved: quiet for incidents.quiet_windows windows.",
)
@click.option(
    "--since",
    help="ISO-8601 time: resolved incidents last seen since then [the last 24 hours; "
    "open incidents are always listed].",
)
@click.option("--limit", type=int, help="At most this many, open ones first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document per line (as indexed).")
@click.pass_context
def incidents(
    ctx: click.Context,
    store: Path | None,
    model: str | None,
    status: str,
    since: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """List incidents: open ones first, then the most recently seen.

    Anomalies are evidence; an incident is what pages a person. There is one per model,
    version, feature, kind of change (schema_skew, distribution_skew, drift, concept_drift,
    data_quality, fairness) and slice. It opens at the first alarm, every later alarm updates
    it (count, detectors, peak severity and effect, the latest value and message), and it
    resolves after `incidents.quiet_windows` closed windows (default 3) of its model version
    without an alarm of its key. A change that lasts a day is one incident.

    \b
    Examples:
      logdrift incidents                       open ones, and those resolved in the last day
      logdrift incidents --status open --model ctr
      logdrift incidents --status all --since 2026-11-01T00:00:00Z --json | jq .incident.id
      logdrift anomalies --model ctr --feature price     the evidence behind an incident
    """
    path = store or settings_for(ctx).store
    if not path.exists():
        raise click.ClickException(f"{path}: no anomaly store here (run `logdrift run` first)")
    cutoff = parse_since(since) if since is not None else time.time() - RECENT_SECONDS
    with AnomalyStore(path) as s:
        found = s.incidents(
            model=model,
            status=None if status == "all" else status,
            since=cutoff,
            limit=limit,
        )
    for inc in found:
        if as_json:
            sys.stdout.write(orjson.dumps(incident_document(inc)).decode() + "\n")
        else:
            console.print(describe(inc), soft_wrap=True)
    if not as_json:
        opened = sum(i.status == "open" for i in found)
        console.print(f"{len(found)} incidents ({opened} open)")


def describe(inc: Incident) -> str:
    """Two lines: what changed and how badly; since when, how often, by which detectors."""
    span = f"opened {iso(inc.opened_at)}"
    if inc.resolved_at is not None:
        span += f", resolved {iso(inc.resolved_at)}"
    else:
        span += f", last alarm {iso(inc.last_seen)}"
    detail = (
        f"    {span}; {inc.count} alarms by {', '.join(inc.detectors)}; peak "
        f"{inc.peak_effect:.1f}x threshold; id {inc.id}"
    )
    return f"{inc.line()}\n{detail}"
