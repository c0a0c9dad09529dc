"""The container files as the real tools read them, no container engine needed: BuildKit's
own Dockerfile checks (tools/dockerfile-lint) and ``docker compose config``. ``make test``
builds both first (``make container-check``); a missing one fails here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"

LINT = (
    Path(os.environ.get("LOGDRIFT_CACHE", Path.home() / ".cache/logdrift")) / "bin/dockerfile-lint"
)


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "docker/fluentd/Dockerfile"])
def test_buildkit_finds_nothing_to_warn_about(dockerfile: str) -> None:
    assert LINT.exists(), f"{LINT} is missing: `make container-check` builds it"
    proc = subprocess.run([str(LINT), dockerfile], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_buildkit_lint_does_flag_a_bad_dockerfile(tmp_path: Path) -> None:
    assert LINT.exists(), f"{LINT} is missing: `make container-check` builds it"
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim as build\nENV A 1\nCMD echo hi\n")
    proc = subprocess.run([str(LINT), str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1
    for rule in ("FromAsCasing", "LegacyKeyValueFormat", "JSONArgsRecommended"):
        assert rule in proc.stdout


def _compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    return probe.returncode == 0


def test_docker_compose_parses_the_stack() -> None:
    assert _compose_plugin(), "no `docker compose` plugin: `make container-check` builds it"
    proc = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    resolved = json.loads(proc.stdout)
    worker = resolved["services"]["worker"]
    assert worker["environment"]["LOGDRIFT_KAFKA__BROKERS"] == "kafka:9092", "the anchor merged"
    assert worker["depends_on"]["baseline"]["condition"] == "service_completed_successfully"
