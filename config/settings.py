"""Settings: one frozen, typed object built once at start.

Layers, lowest first: defaults in ``config/logdrift.yaml``, a YAML file named by
``LOGDRIFT_CONFIG`` (or ``--config``), environment variables ``LOGDRIFT_<SECTION>__<KEY>``, then
command-line options. Errors name the key at fault.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from config.yaml_errors import yaml_error_line

DEFAULT_FILE = Path(__file__).with_name("logdrift.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WindowSettings(_Section):
    seconds: float = Field(60.0, gt=0)
    min_count: int = Field(200, ge=1)
    idle_close_seconds: float = Field(30.0, gt=0)


class ForwardSettings(_Section):
    """The forward-protocol listener: limits, deadlines and opt-in security (docs/forward.md).
    The shared key and the TLS key's password only from the environment or their files."""

    host: str = "127.0.0.1"
    port: int = Field(24224, ge=0, le=65535)
    max_frame_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    max_connections: int = Field(256, ge=1)
    idle_timeout_seconds: float = Field(300.0, gt=0)
    read_timeout_seconds: float = Field(30.0, gt=0)
    frame_deadline_seconds: float = Field(60.0, gt=0)
    max_buffered_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    batch_events: int = Field(250, ge=1, le=100_000)
    shared_key: SecretStr | None = None
    shared_key_file: Path | None = None
    self_hostname: str | None = None  # what PONG names the server; default: the host name
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_key_password: SecretStr | None = None
    tls_key_password_file: Path | None = None

    @model_validator(mode="after")
    def _tls_needs_both_files(self) -> ForwardSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("TLS needs both tls_cert_file and tls_key_file")
        return self

    def shared_key_value(self) -> str | None:
        return _secret(self.shared_key, self.shared_key_file)

    def tls_key_password_value(self) -> str | None:
        return _secret(self.tls_key_password, self.tls_key_password_file)


class FieldSettings(_Section):
    ts: str = "ts"
    request_id: str = "request_id"
    model: str = "model"
    model_version: str = "model_version"
    features: str = "features"
    prediction: str = "prediction"
    slice: str = "slice"
    label: str = "label"  # feedback: a record with a label and no features


class PrivacySettings(_Section):
    key: SecretStr | None = None
    key_file: Path | None = None

    def key_bytes(self) -> bytes | None:
        """The configured key; a file wins over nothing, the environment over the file."""
        if self.key is not None:
            return self.key.get_secret_value().encode()
        if self.key_file is not None:
            return self.key_file.read_bytes().strip()
        return None


def _secret(value: SecretStr | None, path: Path | None) -> str | None:
    """A secret from the environment (or a settings value), else from its file, else None."""
    if value is not None:
        return value.get_secret_value()
    if path is not None:
        return path.read_text().strip()
    return None


class ElasticsearchSettings(_Section):
    """Where anomalies and drift scores are indexed; ``url: null`` keeps Elasticsearch off."""

    url: str | None = None
    api_key: SecretStr | None = None  # base64 "id:key" as Elasticsearch hands it out
    api_key_file: Path | None = None
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    # Lowercase: Elasticsearch refuses index names with capitals.
    index_prefix: str = Field("logdrift", pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=80)
    retention_days: int = Field(30, ge=1)
    bulk_size: int = Field(500, ge=1, le=10_000)
    request_timeout: float = Field(30.0, gt=0)
    max_retries: int = Field(5, ge=0)
    backoff_initial: float = Field(0.5, gt=0)
    backoff_max: float = Field(30.0, gt=0)
    backlog_log_seconds: float = Field(5.0, gt=0)
    shutdown_drain_seconds: float = Field(10.0, ge=0)

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> ElasticsearchSettings:
        has_key = self.api_key is not None or self.api_key_file is not None
        has_password = self.password is not None or self.password_file is not None
        if has_key and (self.username is not None or has_password):
            raise ValueError("use either api_key or username/password, not both")
        if has_password and self.username is None:
            raise ValueError("a password needs a username")
        if self.url is not None and "@" in urlsplit(self.url).netloc:
            raise ValueError("put credentials in username/password or api_key, not in the url")
        return self

    def api_key_value(self) -> str | None:
        return _secret(self.api_key, self.api_key_file)

    def password_value(self) -> str | None:
        return _secret(self.password, self.password_file)


class KafkaTopics(_Section):
    serving_logs: str = "serving-logs"
    feedback: str = "feedback"
    pipeline_features: str = "pipeline-features"
    feature_summaries: str = "feature-summaries"
    label_outcomes: str = "label-outcomes"
    skew_outcomes: str = "skew-outcomes"
    anomalies: str = "anomalies"
    incidents: str = "incidents"
    rollups: str = "rollups"
    window_rollups: str = "window-rollups"
    drift_scores: str = "drift-scores"
    dead_letters: str = "dead-letters"


class KafkaSettings(_Section):
    """The Kafka worker (``logdrift worker``) and ``logdrift forward-to-kafka``."""

    brokers: str = "127.0.0.1:9092"  # comma-separated host:port list
    app_id: str = Field("logdrift", pattern=r"^[A-Za-z0-9._-]+$")
    topic_prefix: str = Field("", pattern=r"^[A-Za-z0-9._-]*$")  # e.g. "staging."
    topics: KafkaTopics = KafkaTopics()
    partitions: int = Field(4, ge=1)  # of the topics and changelogs the worker creates
    replication_factor: int = Field(1, ge=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    batch_max_records: int = Field(500, ge=1)  # stage one micro-batch, per partition
    batch_max_seconds: float = Field(0.5, gt=0)
    max_lateness: float = Field(60.0, ge=0)  # event-time seconds a lagging partition may hold
    # entries per feature held for event-time order; the whole state is one changelog record,
    # which must stay under the broker's 1 MiB message limit (an entry is ~60 bytes)
    max_buffer: int = Field(5_000, ge=0, le=10_000)
    commit_interval: float = Field(1.0, gt=0)
    commit_every: int = Field(500, ge=1)
    session_timeout: float = Field(10.0, gt=0)
    heartbeat_interval: float = Field(1.0, gt=0)
    max_poll_records: int = Field(2_000, ge=1)
    max_fetch_bytes: int = Field(4 * 1024 * 1024, ge=1024)  # per partition and fetch
    stats_log_seconds: float = Field(10.0, gt=0)
    data_dir: Path | None = None  # Faust's local data; default ./<app_id>-data

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL") and self.sasl_username is None:
            raise ValueError(f"security_protocol {self.security_protocol} needs sasl_username")
        return self

    def topic(self, name: str) -> str:
        return self.topic_prefix + str(getattr(self.topics, name))

    def sasl_password_value(self) -> str | None:
        return _secret(self.sasl_password, self.sasl_password_file)


class ObservabilitySettings(_Section):
    """Prometheus metrics, liveness (/healthz) and readiness (/readyz) over HTTP; log format."""

    metrics_enabled: bool = True
    host: str = "127.0.0.1"  # loopback by default: expose deliberately, not by accident
    port: int = Field(9464, ge=0, le=65535)  # 0: any free port (named in the log)
    # auto: JSON lines unless stderr is a terminal; json and text force one or the other
    log_format: Literal["auto", "json", "text"] = "auto"


class SliceSettings(_Section):
    key: str | None = None  # a key of the record's slice object, e.g. category; null: off
    top_k: int = Field(20, ge=1, le=1_000)  # slices kept by name; the rest are "other"


class FairnessSettings(_Section):
    groups: list[str] = Field(default_factory=list)  # sensitive attributes, e.g. [gender]
    threshold: float = Field(0.10, gt=0, lt=1)  # tolerated error-rate gap to the best group
    change_floor: float = Field(0.05, gt=0, lt=1)  # smallest move of a gap from its reference
    min_labels: int = Field(100, ge=1)  # per group and window before it is judged
    reference_windows: int = Field(3, ge=1)
    false_alarm_rate: float = Field(1e-6, gt=0, lt=0.5)


class LabelSettings(_Section):
    """Delayed labels ("process feedback") joined to predictions by request id."""

    enabled: bool = False
    task: Literal["classification", "regression"] = "classification"
    decision_threshold: float = Field(0.5, gt=0, lt=1)
    horizon_seconds: float = Field(86_400.0, gt=0)
    max_pending: int = Field(1_000_000, ge=1)
    window_seconds: float = Field(300.0, gt=0)
    wait_seconds: float = Field(3_600.0, ge=0)
    false_alarm_budget: float = Field(1e-9, gt=0, lt=1e-3)
    slices: SliceSettings = SliceSettings()
    fairness: FairnessSettings = FairnessSettings()


class FeatureSkewSettings(_Section):
    """Feature skew: the training pipeline's features for logged requests (``{ts, request_id,
    model, features}``) joined to what serving logged for them, compared value by value."""

    enabled: bool = False
    forward_tag: str = Field("logdrift.pipeline", min_length=1)  # the runner's pipeline input
    window_seconds: float = Field(300.0, gt=0)  # by the serving record's event time
    wait_seconds: float = Field(600.0, ge=0)  # judged once both inputs are this far past it
    horizon_seconds: float = Field(3_600.0, gt=0)  # a serving record waits this long
    max_pending: int = Field(100_000, ge=1)  # hard cap on waiting records, per side


class IncidentSettings(_Section):
    """Anomalies are evidence; an incident (per model, version, feature, kind and slice) pages."""

    quiet_windows: int = Field(3, ge=1, le=10_000)  # closed windows without an alarm: resolved
    max_keys: int = Field(10_000, ge=1)  # keys remembered without an open incident (replays)
    # the embedded runner's terminal: one line per incident opened or resolved (true), or one
    # per anomaly as well (false: the anomalies are in the store either way)
    quiet_terminal: bool = True


class EventTimeSettings(_Section):
    """Records stamped too far ahead of the receiving clock or older than the horizon are
    dead-lettered (future_timestamp, too_old) by both runners."""

    future_tolerance_seconds: float = Field(300.0, ge=0)
    max_age_seconds: float = Field(365 * 86_400.0, gt=0)


class DeadLetterSettings(_Section):
    """The embedded store's dead letters: the oldest go first past either bound (counted)."""

    max_count: int = Field(100_000, ge=1)
    max_age_days: float = Field(30.0, gt=0)


class JournalSettings(_Section):
    """The embedded runner's journal of accepted records and checkpoints of its state: a chunk
    is acknowledged once it is in the journal (docs/durability.md)."""

    dir: Path | None = None  # default: beside the store, <store>.journal
    checkpoint_seconds: float = Field(10.0, gt=0)
    checkpoint_records: int = Field(10_000, ge=1)
    # always: each chunk fsynced before its ack; interval: once a second; never: by the kernel.
    # Every chunk is written to the OS before its ack: all three survive kill -9.
    fsync: Literal["always", "interval", "never"] = "interval"


class LabellingSettings(_Section):
    """Human labelling (docs/labelling.md): what to hand raters, and how their answers resolve."""

    budget_per_day: int = Field(200, ge=0)  # records queued per model per day
    min_coverage: float = Field(0.05, ge=0, le=1)  # a slice labelled below this share: queue
    # `logdrift run` fills the queue itself when a drift or concept-drift incident opens, from
    # the last `recent_records` serving records it kept per model (memory: that many per model)
    queue_on_incident: bool = False
    recent_records: int = Field(10_000, ge=1, le=1_000_000)
    overlap: int = Field(3, ge=1, le=20)  # raters per item
    choices: dict[str, float] = Field(
        default_factory=lambda: {"positive": 1.0, "negative": 0.0}
    )  # the label set: each choice and the label value it stands for
    min_share: float = Field(0.6, gt=0, le=1)  # an item's majority below this share: review
    careless_kappa: float = Field(0.4, ge=-1, le=1)  # a rater below it against the others
    label_studio_url: str | None = None
    label_studio_token: SecretStr | None = None
    label_studio_token_file: Path | None = None

    def token(self) -> str | None:
        return _secret(self.label_studio_token, self.label_studio_token_file)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LOGDRIFT_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    baselines: list[Path] = Field(default_factory=list)
    store: Path = Path("logdrift.db")
    window: WindowSettings = WindowSettings()
    forward: ForwardSettings = ForwardSettings()
    fields: FieldSettings = FieldSettings()
    privacy: PrivacySettings = PrivacySettings()
    elasticsearch: ElasticsearchSettings = ElasticsearchSettings()
    kafka: KafkaSettings = KafkaSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    labels: LabelSettings = LabelSettings()
    feature_skew: FeatureSkewSettings = FeatureSkewSettings()
    incidents: IncidentSettings = IncidentSettings()
    event_time: EventTimeSettings = EventTimeSettings()
    dead_letters: DeadLetterSettings = DeadLetterSettings()
    journal: JournalSettings = JournalSettings()
    labelling: LabellingSettings = LabellingSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = [DEFAULT_FILE]
        if os.environ.get("LOGDRIFT_CONFIG"):
            files.append(Path(os.environ["LOGDRIFT_CONFIG"]))
        return (
            init_settings,
            env_settings,
            YamlConfigSettingsSource(settings_cls, yaml_file=files),
        )


def _yaml_source(exc: yaml.YAMLError) -> str:
    """The file the parser was reading: PyYAML names it in the mark when read from a file."""
    mark = getattr(exc, "problem_mark", None)
    name = getattr(mark, "name", None)
    return name if name and not name.startswith("<") else os.environ.get("LOGDRIFT_CONFIG", "?")


class SettingsError(ValueError):
    """Settings that do not validate; one line per key at fault."""


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    if config is not None:
        if not config.exists():
            raise SettingsError(f"{config}: no such settings file")
        os.environ["LOGDRIFT_CONFIG"] = str(config)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except yaml.YAMLError as exc:  # the default file, LOGDRIFT_CONFIG or --config
        raise SettingsError(yaml_error_line(_yaml_source(exc), exc)) from None
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
