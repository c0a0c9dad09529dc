"""Logs: JSON lines with stable keys for machines, readable lines for people, and never a
secret or a sensitive feature's raw value in either."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from config.settings import load_settings
from streams import logs
from tests.unit.detectors.conftest import traffic_baseline

PASSWORD = "s3cret-Hunter2!"
SASL = "kafka-sasl-Pa55"
EMAIL = "alice.private@example.org"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """A buffer for the root logger to write into; the logging set-up is restored afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    secrets, features = set(logs.PROTECTED.secrets), set(logs.PROTECTED.features)
    buffer = io.StringIO()
    yield buffer
    root.handlers[:], root.level = saved
    logs.PROTECTED.secrets, logs.PROTECTED.features = secrets, features


def _lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in buffer.getvalue().splitlines() if line]


def test_json_lines_carry_the_stable_keys_and_drop_other_extras(captured: io.StringIO) -> None:
    logs.configure("json", stream=captured)
    logging.getLogger("logdrift.worker").info(
        "anomaly %s raised",
        "a1b2",
        extra={
            "model": "ctr",
            "feature": "score",
            "anomaly_id": "a1b2",
            "partition": 3,
            "offset": 1234,
            "value": 0.97,  # not a stable key: a raw value must not ride along
        },
    )
    (line,) = _lines(captured)
    assert line["message"] == "anomaly a1b2 raised"
    assert (line["level"], line["logger"]) == ("INFO", "logdrift.worker")
    assert str(line["time"]).endswith("Z")
    stable = {k: line[k] for k in ("model", "feature", "anomaly_id", "partition", "offset")}
    assert stable == {
        "model": "ctr",
        "feature": "score",
        "anomaly_id": "a1b2",
        "partition": 3,
        "offset": 1234,
    }
    assert "value" not in line


def test_text_lines_read_like_a_log_with_the_keys_at_the_end(captured: io.StringIO) -> None:
    logs.configure("text", stream=captured)
    logging.getLogger("logdrift.worker").warning(
        "late record", extra={"model": "ctr", "partition": 1, "offset": 7}
    )
    text = captured.getvalue().strip()
    assert " WARNING logdrift.worker: late record [model=ctr partition=1 offset=7]" in text
    assert not text.startswith("{")


def test_auto_is_json_off_a_terminal_and_text_on_one() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert logs.resolve("auto", io.StringIO()) == "json"
    assert logs.resolve("auto", Tty()) == "text"
    assert logs.resolve("text", io.StringIO()) == "text"


def test_neither_a_secret_nor_a_sensitive_value_reaches_the_log(
    captured: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGDRIFT_ELASTICSEARCH__URL", "https://es.internal:9200")
    monkeypatch.setenv("LOGDRIFT_ELASTICSEARCH__USERNAME", "logdrift")
    monkeypatch.setenv("LOGDRIFT_ELASTICSEARCH__PASSWORD", PASSWORD)
    monkeypatch.setenv("LOGDRIFT_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("LOGDRIFT_KAFKA__SASL_USERNAME", "worker")
    monkeypatch.setenv("LOGDRIFT_KAFKA__SASL_PASSWORD", SASL)
    settings = load_settings()
    baseline = traffic_baseline(rows=500, sensitive_in_profile=frozenset({"country"}))
    assert baseline.sensitive("country")
    record = {"model": "ctr", "features": {"country": EMAIL, "score": 0.5}, "request_id": "r1"}

    for fmt in ("json", "text"):
        logs.configure(fmt, stream=captured)
        logs.apply_settings(settings, explicit=fmt)
        logs.protect_baselines([baseline])
        log = logging.getLogger("logdrift.test")
        log.info("settings at start: %s", settings)
        log.info("settings dump: %r", settings.model_dump())
        log.warning("connecting with %s", settings.elasticsearch.password_value())
        log.warning("sasl %s", settings.kafka.sasl_password_value())
        log.info("bad record %s", record, extra={"feature": "country", "value": EMAIL})
        log.info("raw %r", [record])
        try:
            raise ConnectionError(f"auth failed for logdrift:{PASSWORD}")
        except ConnectionError:
            log.exception("elasticsearch unavailable")

    out = captured.getvalue()
    assert "elasticsearch unavailable" in out and "bad record" in out, out
    assert PASSWORD not in out
    assert SASL not in out
    assert EMAIL not in out
    assert "[redacted]" in out and "***" in out


def test_dict_config_builds_the_same_protected_handler(captured: io.StringIO) -> None:
    import logging.config

    logs.protect_secret("dict-config-secret")
    logging.config.dictConfig(logs.dict_config("json", "info"))
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(captured)
    logging.getLogger("faust.worker").info("token dict-config-secret", extra={"partition": 2})
    (line,) = _lines(captured)
    assert line["message"] == "token ***"
    assert line["partition"] == 2
