"""Logging: JSON lines for machines, readable lines for a terminal, and nothing secret in either.

    logger.info("anomaly %s", a.id, extra={"model": ..., "feature": ..., "anomaly_id": ...})
      --> {"time": ..., "level": "INFO", "logger": ..., "message": ..., "model": ..., ...}  (json)
      --> 2026-11-28 10:00:00,123 INFO logdrift.worker: anomaly ... [model=ctr feature=score]

``auto`` (the default) writes JSON unless stderr is a terminal. Only the stable keys below
travel as fields; any other ``extra=`` value is dropped, so a raw feature value passed by
mistake never reaches a log shipper. Secrets the settings hold (passwords, API keys, the
privacy key) are masked wherever they would appear, tracebacks included, and the values of
features marked sensitive are redacted from any mapping passed as a log argument.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping
from contextlib import suppress
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Literal

import orjson
from pydantic import BaseModel, SecretStr
from pythonjsonlogger.json import JsonFormatter

if TYPE_CHECKING:
    from config.settings import Settings
    from detectors.baseline.reference import Baseline

Format = Literal["auto", "json", "text"]

# Field names a log line may carry besides time, level, logger and message: names and
# positions, never values. Dashboards and alerts may rely on them.
STABLE_KEYS = (
    "model",
    "feature",
    "anomaly_id",
    "partition",
    "offset",
    "topic",
    "kind",
    "severity",
    "reason",
    "count",
)
MASK = "***"
REDACTED = "[redacted]"
_MIN_SECRET = 4  # shorter "secrets" would mask ordinary words


class _Protected:
    """What must never be printed: secret strings and the names of sensitive features."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.features: set[str] = set()

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
            escaped = orjson.dumps(secret).decode()[1:-1]  # as it looks inside a JSON string
            if escaped != secret and escaped in text:
                text = text.replace(escaped, MASK)
        return text

    def redact(self, value: Any, depth: int = 0) -> Any:
        if depth > 8 or not self.features:
            return value
        if isinstance(value, Mapping):
            return {
                k: REDACTED if k in self.features else self.redact(v, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return type(value)(self.redact(v, depth + 1) for v in value)
        return value


PROTECTED = _Protected()


def protect_secret(value: str | bytes | None) -> None:
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if value and len(value) >= _MIN_SECRET:
        PROTECTED.secrets.add(value)


def protect_settings(settings: BaseModel) -> None:
    """Register every secret the settings hold, inline or in a file."""
    for value in _secret_fields(settings):
        protect_secret(value)
    for getter in ("api_key_value", "password_value", "sasl_password_value", "key_bytes"):
        for section in _sections(settings):
            method = getattr(section, getter, None)
            if callable(method):
                with suppress(OSError, UnicodeDecodeError):  # a missing file fails elsewhere
                    protect_secret(method())


def protect_features(names: Iterable[str]) -> None:
    """Feature names whose values are redacted from mappings logged as arguments."""
    PROTECTED.features.update(names)


def _sections(model: BaseModel) -> Iterable[BaseModel]:
    yield model
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _sections(value)


def _secret_fields(model: BaseModel) -> Iterable[str]:
    for section in _sections(model):
        for name in type(section).model_fields:
            value = getattr(section, name)
            if isinstance(value, SecretStr):
                yield value.get_secret_value()


class ProtectFilter(logging.Filter):
    """On the handler: renders the message with sensitive values redacted and secrets masked,
    and keeps only the stable keys among the extras."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args
            record.args = (
                PROTECTED.redact(args)
                if isinstance(args, Mapping)
                else tuple(PROTECTED.redact(a) for a in args)
            )
        with suppress(Exception):  # a bad format string still logs, as logging would
            record.msg = PROTECTED.mask(record.getMessage())
            record.args = None
        return True


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _stable_extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: record.__dict__[k] for k in STABLE_KEYS if k in record.__dict__}


class JsonLines(JsonFormatter):
    """One JSON object per line: time, level, logger, message, then the stable keys."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        for key in [k for k in log_data if k in record.__dict__ and k not in _STANDARD]:
            if key not in STABLE_KEYS:
                del log_data[key]  # an extra outside the stable keys may hold a raw value

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        return stamp.replace("+00:00", "Z")

    def format(self, record: logging.LogRecord) -> str:
        return PROTECTED.mask(super().format(record))


class TextLines(logging.Formatter):
    """For a terminal: the usual line, with the stable keys in brackets at the end."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _stable_extras(record)
        if extras:
            line += " [" + " ".join(f"{k}={v}" for k, v in extras.items()) + "]"
        return PROTECTED.mask(line)


def resolve(fmt: str, stream: IO[str] | None = None) -> Literal["json", "text"]:
    if fmt == "json":
        return "json"
    if fmt == "text":
        return "text"
    stream = stream or sys.stderr
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def formatter(kind: str = "auto") -> logging.Formatter:
    """The formatter for ``kind`` (also the factory ``dict_config`` names)."""
    return JsonLines() if resolve(kind) == "json" else TextLines()


def configure(
    fmt: str = "auto", level: int | str = logging.INFO, stream: IO[str] | None = None
) -> logging.Handler:
    """Replace the root logger's handlers with one protected handler on stderr."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines() if resolve(fmt, stream) == "json" else TextLines())
    handler.addFilter(ProtectFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def dict_config(fmt: str = "auto", level: str = "INFO") -> dict[str, Any]:
    """The same set-up as a ``logging.config.dictConfig`` dict, for Faust's worker (which
    replaces the root handlers with its own at start unless given this)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"logdrift": {"()": "streams.logs.formatter", "kind": fmt}},
        "filters": {"protect": {"()": "streams.logs.ProtectFilter"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "logdrift",
                "filters": ["protect"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["default"]},
    }


def apply_settings(settings: Settings, explicit: str | None = None, verbose: bool = False) -> None:
    """Once settings are loaded: mask their secrets, and take their log format unless the
    command line named one."""
    protect_settings(settings)
    wanted = settings.observability.log_format
    if explicit is None and wanted != "auto":
        configure(wanted, logging.DEBUG if verbose else logging.getLogger().level)


def protect_baselines(baselines: Iterable[Baseline]) -> None:
    """The features each baseline marks sensitive, and its privacy key."""
    for b in baselines:
        protect_features(n for n, r in b.references.items() if r.spec.sensitive)
        protect_secret(b.privacy_key)
