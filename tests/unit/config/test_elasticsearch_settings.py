"""The elasticsearch settings: off by default, credentials from the environment or files, one
way to authenticate, and secrets that never print."""

from __future__ import annotations

import base64
from pathlib import Path

import certifi
import pytest

from config.settings import ElasticsearchSettings, SettingsError, load_settings
from connectors.elasticsearch import client_from_settings

SECRET = "c2VjcmV0LWlkOnNlY3JldC1rZXktZG8tbm90LWxvZw=="


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOGDRIFT_CONFIG", raising=False)
    for key in ("URL", "API_KEY", "USERNAME", "PASSWORD", "INDEX_PREFIX"):
        monkeypatch.delenv(f"LOGDRIFT_ELASTICSEARCH__{key}", raising=False)


def test_elasticsearch_is_off_until_a_url_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().elasticsearch.url is None
    monkeypatch.setenv("LOGDRIFT_ELASTICSEARCH__URL", "https://es.internal:9200")
    assert load_settings().elasticsearch.url == "https://es.internal:9200"


def test_the_api_key_comes_from_the_environment_and_never_prints(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOGDRIFT_ELASTICSEARCH__URL", "https://es.internal:9200")
    monkeypatch.setenv("LOGDRIFT_ELASTICSEARCH__API_KEY", SECRET)
    settings = load_settings()
    assert settings.elasticsearch.api_key_value() == SECRET
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert SECRET not in text


def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    key_file = tmp_path / "es.key"
    key_file.write_text(SECRET + "\n")
    settings = ElasticsearchSettings(url="https://es:9200", api_key_file=key_file)
    assert settings.api_key_value() == SECRET
    password_file = tmp_path / "es.password"
    password_file.write_text("hunter2\n")
    basic = ElasticsearchSettings(url="https://es:9200", username="u", password_file=password_file)
    assert basic.password_value() == "hunter2"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"API_KEY": SECRET, "USERNAME": "u"}, "either api_key or username/password"),
        ({"PASSWORD": "p"}, "a password needs a username"),
        ({"URL": "https://u:p@es:9200"}, "not in the url"),
        ({"INDEX_PREFIX": "LogDrift"}, "index_prefix"),
    ],
)
def test_contradictory_or_unsafe_settings_are_refused_naming_the_section(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(f"LOGDRIFT_ELASTICSEARCH__{key}", value)
    with pytest.raises(SettingsError, match=r"elasticsearch") as caught:
        load_settings()
    assert message in str(caught.value)
    assert SECRET not in str(caught.value)


def test_the_client_authenticates_as_configured_and_trusts_the_ca_file(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(Path(certifi.where()).read_bytes())  # a real bundle: the client loads it now
    client = client_from_settings(
        ElasticsearchSettings(url="https://es:9200", api_key=SECRET, ca_file=ca)
    )
    assert client._headers["authorization"] == f"ApiKey {SECRET}"
    assert client.transport.node_pool.all()[0].config.ca_certs == str(ca)
    basic = client_from_settings(
        ElasticsearchSettings(url="https://es:9200", username="u", password="p")
    )
    assert basic._headers["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()


def test_a_client_needs_a_url() -> None:
    with pytest.raises(ValueError, match=r"elasticsearch\.url"):
        client_from_settings(ElasticsearchSettings())


def test_a_ca_file_that_is_not_a_certificate_is_refused_naming_the_setting(
    tmp_path: Path,
) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ValueError, match=r"ca_file"):
        client_from_settings(ElasticsearchSettings(url="https://es:9200", ca_file=junk))
