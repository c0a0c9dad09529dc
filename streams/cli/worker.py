"""``logdrift worker`` (the Faust worker on Kafka) and ``logdrift forward-to-kafka``.

Both read the ``kafka:`` settings; command-line options become ``LOGDRIFT_*`` variables before
``streams.worker.app`` (the composition root) is imported, so
``faust -A streams.worker.app worker`` with the same variables runs exactly the same worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from config.settings import SettingsError, load_settings

if TYPE_CHECKING:
    from connectors.forward_server import ForwardServer
    from connectors.kafka import ServingLogPublisher

logger = logging.getLogger(__name__)


def _export(name: str, value: object) -> None:
    if value is not None:
        os.environ[f"LOGDRIFT_{name}"] = str(value)


@click.command(short_help="Run the Kafka worker (Faust agents, two stages).")
@click.option(
    "--baseline",
    "baselines",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Baseline directory (repeat for several models).",
)
@click.option("--brokers", help="Kafka bootstrap servers, host:port[,host:port].")
@click.option("--app-id", help="Consumer group and changelog prefix (one per deployment).")
@click.option("--topic-prefix", help="Prepended to every topic name.")
@click.option("--loglevel", default="info", show_default=True)
@click.pass_context
def worker(
    ctx: click.Context,
    baselines: tuple[Path, ...],
    brokers: str | None,
    app_id: str | None,
    topic_prefix: str | None,
    loglevel: str,
) -> None:
    """Consume serving-logs, detect per feature across every partition, publish anomalies to the
    anomalies topic and bad records to dead-letters. Scale out by starting more workers with the
    same --app-id; SIGTERM stops cleanly, and a killed worker resumes from the changelog."""
    if ctx.obj and ctx.obj.get("config"):
        os.environ["LOGDRIFT_CONFIG"] = str(ctx.obj["config"])
    if baselines:
        os.environ["LOGDRIFT_BASELINES"] = json.dumps([str(b.resolve()) for b in baselines])
    _export("KAFKA__BROKERS", brokers)
    _export("KAFKA__APP_ID", app_id)
    _export("KAFKA__TOPIC_PREFIX", topic_prefix)
    try:
        load_settings()
        from streams.worker.app import app, detection

        detection()  # an unusable baseline fails here, before joining the group
    except (SettingsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    _ensure_own_topics()
    from faust import Worker

    import streams.worker.agents  # noqa: F401  (registers the agents)
    from streams import logs

    fmt = (ctx.obj or {}).get("log_format") or load_settings().observability.log_format
    logs.protect_settings(load_settings())
    logs.protect_baselines(detection().engine.baselines.values())
    config = logs.dict_config(fmt, loglevel)
    Worker(app, loglevel=loglevel, logging_config=config).execute_from_commandline()


def _ensure_own_topics() -> None:
    from connectors.kafka import ensure_topics
    from streams.worker.app import kafka

    names = [kafka.topic(n) for n in ("feature_summaries", "anomalies", "dead_letters")]
    if load_settings().feature_skew.enabled:  # before the group joins: a topic missing at the
        names.append(kafka.topic("skew_outcomes"))  # first assignment leaves its agent idle
    created = asyncio.run(ensure_topics(kafka, names, kafka.partitions))
    if created:
        logger.info("created topics %s", ", ".join(created))


@click.command("forward-to-kafka", short_help="Forward protocol in, serving-logs out.")
@click.option("--host", help="Listen address (default: forward.host).")
@click.option("--port", type=int, help="Listen port (default: forward.port).")
@click.option("--brokers", help="Kafka bootstrap servers, host:port[,host:port].")
@click.option("--topic-prefix", help="Prepended to every topic name.")
@click.pass_context
def forward_to_kafka(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    brokers: str | None,
    topic_prefix: str | None,
) -> None:
    """Receive fluent-logger / Fluentd out_forward traffic and publish each record to
    serving-logs keyed by request id. A forward chunk is acknowledged only after Kafka
    acknowledged its records."""
    _export("KAFKA__BROKERS", brokers)
    _export("KAFKA__TOPIC_PREFIX", topic_prefix)
    try:
        settings = load_settings(ctx.obj.get("config") if ctx.obj else None)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    from connectors.forward_listener import forward_listener
    from connectors.kafka import ServingLogPublisher

    fwd = settings.forward.model_copy(
        update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    )
    publisher = ServingLogPublisher(settings.kafka, settings.fields.request_id, settings.fields.ts)
    try:
        # Bad entries are counted (logdrift_forward_bad_entries) and logged by reason here.
        server = forward_listener(fwd, publisher.publish)
    except (OSError, ValueError) as exc:  # a TLS or shared-key file that does not load
        raise click.ClickException(str(exc)) from None
    asyncio.run(_serve(server, publisher))
    click.echo(f"published {publisher.published:,} records")


async def _serve(server: ForwardServer, publisher: ServingLogPublisher) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await publisher.start()
    try:
        await server.start()
        logger.info("forwarding %s:%d to %s", server.host, server.port, publisher.topic)
        await stop.wait()
        await server.stop()
    finally:
        await publisher.stop()
