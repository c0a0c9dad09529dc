"""Settings: one frozen, typed object built once at start.

Layers, lowest first: defaults in ``config/logdrift.yaml``, a YAML file named by
``LOGDRIFT_CONFIG`` (or ``--config``), environment variables ``LOGDRIFT_<SECTION>__<KEY>``, then
command-line options. Errors name the key at fault.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

DEFAULT_FILE = Path(__file__).with_name("logdrift.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WindowSettings(_Section):
    seconds: float = Field(60.0, gt=0)
    min_count: int = Field(200, ge=1)
    idle_close_seconds: float = Field(30.0, gt=0)


class ForwardSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(24224, ge=0, le=65535)
    max_frame_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    max_connections: int = Field(256, ge=1)


class FieldSettings(_Section):
    ts: str = "ts"
    request_id: str = "request_id"
    model: str = "model"
    model_version: str = "model_version"
    features: str = "features"
    prediction: str = "prediction"
    slice: str = "slice"


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


class SettingsError(ValueError):
    """Settings that do not validate; one line per key at fault."""


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    if config is not None:
        if not config.exists():
            raise SettingsError(f"{config}: no such settings file")
        os.environ["LOGDRIFT_CONFIG"] = str(config)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
