"""Settings: defaults from config/logdrift.yaml, a user's YAML over them, the environment over
both; errors name the key; secrets never print."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOGDRIFT_CONFIG", "LOGDRIFT_WINDOW__SECONDS", "LOGDRIFT_PRIVACY__KEY"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_bind_the_listener_to_loopback() -> None:
    settings = load_settings()
    assert settings.forward.host == "127.0.0.1"
    assert settings.forward.port == 24224
    assert settings.window.seconds == 60


def test_a_users_file_overrides_defaults_and_the_environment_overrides_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = tmp_path / "mine.yaml"
    own.write_text("window:\n  seconds: 300\n  min_count: 50\n")
    assert load_settings(own).window.seconds == 300
    monkeypatch.setenv("LOGDRIFT_WINDOW__SECONDS", "30")
    settings = load_settings(own)
    assert (settings.window.seconds, settings.window.min_count) == (30, 50)


def test_an_invalid_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGDRIFT_WINDOW__SECONDS", "-1")
    with pytest.raises(SettingsError, match=r"window\.seconds"):
        load_settings()


def test_an_unknown_key_in_a_file_is_refused(tmp_path: Path) -> None:
    own = tmp_path / "typo.yaml"
    own.write_text("windw:\n  seconds: 5\n")
    with pytest.raises(SettingsError, match="windw"):
        load_settings(own)


def test_a_missing_settings_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"nope\.yaml"):
        load_settings(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("window:\n  seconds: [1,\n", "3:1"),  # an unclosed flow sequence
        ("window:\n  seconds: 5\n min_count: 3\n", "3:2"),  # indentation gone wrong
        ("forward:\n\tport: 1\n", "2:1"),  # a tab
    ],
)
def test_a_yaml_syntax_error_is_one_line_naming_file_line_and_column(
    tmp_path: Path, text: str, where: str
) -> None:
    own = tmp_path / "broken.yaml"
    own.write_text(text)
    with pytest.raises(SettingsError) as info:
        load_settings(own)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{own}:{where}: not valid YAML: "), message


def test_the_privacy_key_comes_from_the_environment_and_never_prints(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOGDRIFT_PRIVACY__KEY", "s3cret-value")
    settings = load_settings()
    assert settings.privacy.key_bytes() == b"s3cret-value"
    assert "s3cret-value" not in repr(settings)
    assert "s3cret-value" not in str(settings.model_dump())


def test_the_privacy_key_can_come_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file\n")
    own = tmp_path / "s.yaml"
    own.write_text(f"privacy:\n  key_file: {key_file}\n")
    assert load_settings(own).privacy.key_bytes() == b"from-a-file"
