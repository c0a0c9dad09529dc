"""A baseline directory on disk: ``schema.yaml`` (commented, for people), ``profile.json`` (for
machines) and ``privacy.key`` (the key for hashing sensitive values, mode 0600)."""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path
from typing import Any

import orjson
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from config.yaml_errors import yaml_error_line
from detectors.baseline.profile import Profile
from detectors.baseline.reference import Baseline
from detectors.baseline.schema import Schema, schema_errors

SCHEMA_FILE = "schema.yaml"
PROFILE_FILE = "profile.json"
KEY_FILE = "privacy.key"

HEADER = """\
logdrift reference schema, inferred from {source} ({rows:,} rows).
Edit freely: when the baseline is built again, every value you changed here is kept.
  type: int | float | categorical | bool
  required: true -> a record without the feature is a SCHEMA_MISSING_COLUMN violation
  range: values outside are INT/FLOAT_TYPE_BIG/SMALL violations (data quality)
  domain: a closed list of categories (null = open: unseen values are fine)
  missing_values: sentinels that mean 'missing' (for example 0 or -1)
  sensitive: true -> raw values never leave the worker (categories become keyed hashes)
  thresholds: per-feature overrides of the ladder below (default -> by_type -> feature)
"""


class BaselineError(ValueError):
    """A baseline directory that cannot be used; the message names the file and key."""


def _yaml() -> YAML:
    y = YAML()
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 100
    return y


def render_schema(doc: dict[str, Any], notes: dict[str, str], source: str, rows: int) -> str:
    root = CommentedMap(doc)
    root.yaml_set_start_comment(HEADER.format(source=source, rows=rows))
    features = CommentedMap(doc["features"])
    for name in features:
        if name in notes:
            features.yaml_set_comment_before_after_key(name, before=notes[name], indent=2)
    root["features"] = features
    if "prediction" in doc and "prediction" in notes:
        root.yaml_set_comment_before_after_key("prediction", before=notes["prediction"])
    if "thresholds" not in root:
        root["thresholds"] = {
            "default": Schema.model_validate(doc).thresholds.default.model_dump(),
            "by_type": {},
        }
    buf = io.StringIO()
    _yaml().dump(root, buf)
    return buf.getvalue()


def read_schema_document(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = YAML(typ="safe").load(path.read_text())
    except YAMLError as exc:
        raise BaselineError(yaml_error_line(path, exc)) from None
    if not isinstance(data, dict):
        raise BaselineError(f"{path}: expected a mapping at the top, got {type(data).__name__}")
    return data


def read_previous_inference(directory: Path) -> dict[str, Any] | None:
    path = directory / PROFILE_FILE
    if not path.exists():
        return None
    data = orjson.loads(path.read_bytes())
    inferred = data.get("inferred_schema")
    return inferred if isinstance(inferred, dict) else None


def write_baseline(
    directory: Path, schema_text: str, profile: Profile, inferred: dict[str, Any]
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    body = {**profile.to_json(), "inferred_schema": inferred}
    _atomic_write(directory / PROFILE_FILE, orjson.dumps(body, option=orjson.OPT_INDENT_2))
    _atomic_write(directory / SCHEMA_FILE, schema_text.encode())


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def privacy_key(directory: Path, configured: bytes | None, create: bool) -> bytes:
    """The configured key (environment or file), else the baseline's own key file."""
    if configured:
        return configured
    path = directory / KEY_FILE
    if path.exists():
        return path.read_bytes().strip()
    if not create:
        return b""
    directory.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def validate_schema_file(directory: Path) -> list[str]:
    """Every problem in ``schema.yaml``, each naming the file and key at fault."""
    path = directory / SCHEMA_FILE
    try:
        doc = read_schema_document(path)
    except BaselineError as exc:
        return [str(exc)]
    if doc is None:
        return [f"{path}: not found"]
    problems = [f"{path}: {e}" for e in schema_errors(doc)]
    if not problems:
        profile = directory / PROFILE_FILE
        known = orjson.loads(profile.read_bytes())["features"] if profile.exists() else {}
        schema = Schema.model_validate(doc)
        problems += [
            f"{path}: features.{name}: not in {PROFILE_FILE}; rebuild the baseline to profile it"
            for name in schema.monitored()
            if name not in known
        ]
    return problems


def load_baseline(directory: str | Path, configured_key: bytes | None = None) -> Baseline:
    directory = Path(directory)
    problems = validate_schema_file(directory)
    if problems:
        raise BaselineError("\n".join(problems))
    doc = read_schema_document(directory / SCHEMA_FILE)
    profile_path = directory / PROFILE_FILE
    try:
        profile = Profile.from_json(orjson.loads(profile_path.read_bytes()))
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BaselineError(f"{profile_path}: {exc}") from None
    schema = Schema.model_validate(doc)
    try:
        return Baseline.of(schema, profile, privacy_key(directory, configured_key, create=False))
    except ValueError as exc:
        raise BaselineError(f"{directory}: {exc}") from None
