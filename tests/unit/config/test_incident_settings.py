"""Incident settings: defaults from config/logdrift.yaml, the environment over them, errors
naming the key, and the tracker's options built from them."""

from __future__ import annotations

import pytest

from config.settings import SettingsError, load_settings
from streams.incident_options import incident_options


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOGDRIFT_CONFIG", raising=False)


def test_three_quiet_windows_resolve_an_incident_by_default() -> None:
    settings = load_settings()
    assert settings.incidents.quiet_windows == 3
    assert incident_options(settings.incidents).quiet_windows == 3
    assert settings.kafka.topic("incidents") == "incidents"


def test_the_environment_sets_quiet_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGDRIFT_INCIDENTS__QUIET_WINDOWS", "10")
    assert incident_options(load_settings().incidents).quiet_windows == 10


def test_an_invalid_incident_setting_names_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGDRIFT_INCIDENTS__QUIET_WINDOWS", "0")
    with pytest.raises(SettingsError, match=r"incidents\.quiet_windows"):
        load_settings()
