"""Label settings: off by default, every key from YAML or the environment, errors naming the
key, and the options the Engine gets from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import SettingsError, load_settings
from streams.label_options import label_options


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOGDRIFT_CONFIG", raising=False)


def test_labels_are_off_by_default_and_the_engine_gets_none() -> None:
    settings = load_settings()
    assert settings.labels.enabled is False and settings.fields.label == "label"
    assert label_options(settings.labels) is None


def test_a_users_file_and_the_environment_configure_slices_and_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = tmp_path / "labels.yaml"
    own.write_text(
        "labels:\n  enabled: true\n  horizon_seconds: 172800\n"
        "  slices:\n    key: category\n    top_k: 50\n"
    )
    monkeypatch.setenv("LOGDRIFT_LABELS__FAIRNESS__GROUPS", '["gender", "age_band"]')
    monkeypatch.setenv("LOGDRIFT_LABELS__FAIRNESS__THRESHOLD", "0.2")
    options = label_options(load_settings(own).labels)
    assert options is not None
    assert (options.horizon, options.slice_key, options.top_k) == (172_800.0, "category", 50)
    assert options.groups == ("gender", "age_band") and options.fairness.threshold == 0.2
    assert options.max_pending == 1_000_000 and options.budget == 1e-9


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("LOGDRIFT_LABELS__MAX_PENDING", "0", r"labels\.max_pending"),
        ("LOGDRIFT_LABELS__TASK", "ranking", r"labels\.task"),
        ("LOGDRIFT_LABELS__FAIRNESS__CHANGE_FLOOR", "1.5", r"labels\.fairness\.change_floor"),
    ],
)
def test_an_invalid_label_setting_names_its_key(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, key: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=key):
        load_settings()
