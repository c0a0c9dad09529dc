"""The Faust app, built from settings: the one composition root of the Kafka worker.

``logdrift worker`` and ``faust -A streams.worker.app worker -l info`` both start it; settings come
from ``config/logdrift.yaml``, ``LOGDRIFT_CONFIG`` and ``LOGDRIFT_*`` variables (the CLI turns
its options into those). Table state is plain JSON in a memory store rebuilt from the changelog
at start: no pickle, and no RocksDB needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import faust

from config.settings import Settings, load_settings
from connectors.baseline_files import load_baseline
from connectors.kafka import bootstrap_servers, ssl_context
from detectors.engine import Engine, EngineOptions
from detectors.feature_state import CompareStep, MergeOptions
from detectors.records import FieldMapping

settings: Settings = load_settings()
kafka = settings.kafka


def _credentials() -> faust.types.auth.CredentialsT | None:
    context = ssl_context(kafka)
    if kafka.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password_value(),
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    return faust.SSLCredentials(context) if context is not None else None


app = faust.App(
    kafka.app_id,
    broker=[f"kafka://{server}" for server in bootstrap_servers(kafka)],
    broker_credentials=_credentials(),
    store="memory://",
    autodiscover=[
        "streams.worker.agents",
        "streams.worker.label_agents",
        "streams.worker.rollup_agents",
        "streams.worker.skew_agents",
    ],
    origin="streams",
    datadir=str(kafka.data_dir) if kafka.data_dir else None,
    web_enabled=False,  # no HTTP port to collide when several workers share a host
    topic_partitions=kafka.partitions,
    topic_replication_factor=kafka.replication_factor,
    consumer_auto_offset_reset="earliest",
    # At-least-once with little replay after kill -9; offsets are committed only after the
    # producer has flushed what the acked events caused.
    broker_commit_interval=kafka.commit_interval,
    broker_commit_every=kafka.commit_every,
    broker_session_timeout=kafka.session_timeout,
    broker_heartbeat_interval=kafka.heartbeat_interval,
    broker_max_poll_records=kafka.max_poll_records,
    consumer_max_fetch_size=kafka.max_fetch_bytes,
    stream_buffer_maxsize=max(4 * kafka.batch_max_records, 4_096),
    producer_linger=0.005,
)


@dataclass(frozen=True, slots=True)
class Detection:
    """What the agents need from the baselines, built once per process."""

    engine: Engine  # for its baseline lookup: the same rule (and error) as the embedded path
    steps: dict[str | None, CompareStep]
    mapping: FieldMapping

    def step_for(self, model: str) -> CompareStep:
        return self.steps.get(model) or self.steps[None]


@cache
def detection() -> Detection:
    """Baselines from ``settings.baselines``; raises on an unusable one (at start, not later)."""
    if not settings.baselines:
        raise ValueError("no baseline: set baselines (or pass --baseline to `logdrift worker`)")
    key = settings.privacy.key_bytes()
    baselines = [load_baseline(d, key) for d in settings.baselines]
    options = EngineOptions(settings.window.seconds, settings.window.min_count)
    merge = MergeOptions(kafka.max_lateness, kafka.max_buffer)
    engine = Engine(baselines, options)
    steps: dict[str | None, CompareStep] = {
        b.model: CompareStep(b, options, merge) for b in baselines
    }
    return Detection(engine, steps, FieldMapping(**settings.fields.model_dump()))


def main() -> None:
    app.main()
