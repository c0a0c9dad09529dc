"""The forward listener's settings: documented defaults, security only when asked for, secrets
from the environment or files and never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import SettingsError, load_settings
from connectors.forward_listener import auth_from, forward_listener, limits_from


async def _ignore(events: object) -> None:
    return None


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOGDRIFT_CONFIG", raising=False)
    monkeypatch.delenv("LOGDRIFT_FORWARD__SHARED_KEY", raising=False)


def test_defaults_are_the_documented_ones_and_security_is_off() -> None:
    fwd = load_settings().forward
    limits = limits_from(fwd)
    assert (limits.idle_timeout_seconds, limits.read_timeout_seconds) == (300, 30)
    assert limits.frame_deadline_seconds == 60
    assert limits.max_buffered_bytes == 64 * 1024 * 1024
    assert limits.batch_events == 250
    assert fwd.max_connections == 256
    assert auth_from(fwd) is None
    assert fwd.tls_cert_file is None


def test_the_shared_key_comes_from_the_environment_and_never_prints(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOGDRIFT_FORWARD__SHARED_KEY", "hunter2-shared")
    monkeypatch.setenv("LOGDRIFT_FORWARD__SELF_HOSTNAME", "collector-1")
    settings = load_settings()
    assert "hunter2-shared" not in repr(settings) and "hunter2-shared" not in str(settings)
    auth = auth_from(settings.forward)
    assert auth is not None
    assert (auth.shared_key, auth.self_hostname) == (b"hunter2-shared", "collector-1")


def test_the_shared_key_comes_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "forward.key"
    key_file.write_text("from-a-file\n")
    monkeypatch.setenv("LOGDRIFT_FORWARD__SHARED_KEY_FILE", str(key_file))
    auth = auth_from(load_settings().forward)
    assert auth is not None and auth.shared_key == b"from-a-file"


def test_tls_needs_both_the_certificate_and_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGDRIFT_FORWARD__TLS_CERT_FILE", "/etc/cert.pem")
    with pytest.raises(SettingsError, match="TLS needs both tls_cert_file and tls_key_file"):
        load_settings()


def test_a_tls_file_that_does_not_load_is_one_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGDRIFT_FORWARD__TLS_CERT_FILE", str(tmp_path / "missing.pem"))
    monkeypatch.setenv("LOGDRIFT_FORWARD__TLS_KEY_FILE", str(tmp_path / "key.pem"))
    with pytest.raises(ValueError, match=r"missing\.pem"):
        forward_listener(load_settings().forward, _ignore)


def test_a_shared_key_file_that_cannot_be_read_is_one_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGDRIFT_FORWARD__SHARED_KEY_FILE", str(tmp_path / "absent.key"))
    with pytest.raises(ValueError, match=r"forward\.shared_key_file .*absent\.key: No such file"):
        auth_from(load_settings().forward)
