"""Helpers every ``logdrift`` command module shares: settings from the command line's context,
the field mapping, baselines, ``--since`` times.

A leaf module: streams/cli/main.py and the command groups beside it (cli_elastic, cli_report,
cli_incidents) import these, so no command module has to import cli.py back.
"""

from __future__ import annotations

from pathlib import Path

import click

from config.settings import Settings, SettingsError, load_settings
from connectors.baseline_files import BaselineError, load_baseline
from detectors.baseline.reference import Baseline
from detectors.records import FieldMapping, parse_ts
from streams import logs


def settings_for(ctx: click.Context, **overrides: object) -> Settings:
    """The settings of ``--config`` (and the environment), with logging set up from them."""
    try:
        settings = load_settings(ctx.obj.get("config"), **overrides)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    logs.apply_settings(settings, ctx.obj.get("log_format"), ctx.obj.get("verbose", False))
    return settings


def field_mapping(settings: Settings) -> FieldMapping:
    return FieldMapping(**settings.fields.model_dump())


def load_baselines(dirs: list[Path], settings: Settings) -> list[Baseline]:
    if not dirs:
        raise click.UsageError("no baseline: pass --baseline DIR (made by `logdrift baseline`)")
    key = settings.privacy.key_bytes()
    try:
        loaded = [load_baseline(d, key) for d in dirs]
    except BaselineError as exc:
        raise click.ClickException(str(exc)) from None
    logs.protect_baselines(loaded)
    return loaded


def parse_since(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_ts(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: use ISO-8601, e.g. 2026-11-28T10:00:00Z") from None
