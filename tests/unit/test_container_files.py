"""The container files hold to what a platform engineer expects: a non-root image running the
worker with a healthcheck, pinned images, healthchecks or one-shot jobs, ordered start-up, and
ports published on loopback only. BuildKit's Dockerfile checks and ``docker compose config``
run when ``make container-check`` built their binaries; no container engine is needed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
PINNED = re.compile(r"^[\w.\-/]+(:v?\d[\w.\-]*)$")  # name:<version>, never :latest or no tag


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # type: ignore[no-any-return]


def resolve_from(image: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], image)


def test_the_image_is_multi_stage_pinned_and_runs_the_worker_as_a_non_root_user() -> None:
    steps = instructions(DOCKERFILE)
    args = dict(a.split("=", 1) for w, a in steps if w == "ARG" and "=" in a)
    stages = [resolve_from(a.split()[0], args) for w, a in steps if w == "FROM"]
    assert len(stages) >= 2, "build tools stay in the build stage"
    assert all(PINNED.match(image) and "slim" in image for image in stages), stages
    users = [a for w, a in steps if w == "USER"]
    assert users, "no USER: the image would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert json.loads(next(a for w, a in steps if w == "ENTRYPOINT")) == ["logdrift"]
    assert json.loads(next(a for w, a in steps if w == "CMD")) == ["worker"]
    health = next(a for w, a in steps if w == "HEALTHCHECK")
    assert "/healthz" in health and "urllib.request" in health, "slim images have no curl"
    runs = " ".join(a for w, a in steps if w == "RUN")
    assert "pip install ." in runs and "[dev]" not in runs, "runtime dependencies only"


def test_the_image_is_configured_by_environment_and_listens_beyond_loopback_inside() -> None:
    env = " ".join(a for w, a in instructions(DOCKERFILE) if w == "ENV")
    for key in ("LOGDRIFT_OBSERVABILITY__HOST=0.0.0.0", "LOGDRIFT_OBSERVABILITY__LOG_FORMAT=json"):
        assert key in env


def test_every_image_is_pinned_to_a_version() -> None:
    services = compose()["services"]
    for name, service in services.items():
        image = service["image"]
        if "build" in service:
            assert image.endswith(":local"), f"{name}: a built image gets a local tag"
        else:
            assert PINNED.match(image), f"{name}: {image} is not pinned to a version"
    fluentd = instructions(ROOT / "docker/fluentd/Dockerfile")
    assert all(PINNED.match(a.split()[0]) for w, a in fluentd if w == "FROM")


def test_every_service_has_a_healthcheck_or_is_a_one_shot_job() -> None:
    for name, service in compose()["services"].items():
        one_shot = service.get("restart") == "no"
        assert one_shot or "healthcheck" in service, f"{name}: neither healthcheck nor one-shot"
        assert one_shot or service.get("restart") == "unless-stopped", name


def test_start_up_waits_on_health_or_on_a_finished_job() -> None:
    services = compose()["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        for dependency, rule in depends.items():
            wanted = (
                "service_completed_successfully"
                if services[dependency].get("restart") == "no"
                else "service_healthy"
            )
            assert rule["condition"] == wanted, f"{name} -> {dependency}"


def test_the_stack_has_every_part_the_issue_names() -> None:
    services = compose()["services"]
    images = {name: s["image"] for name, s in services.items()}
    assert images["kafka"].startswith("apache/kafka:")
    es, kibana = images["elasticsearch"], images["kibana"]
    assert es.rsplit(":", 1)[1] == kibana.rsplit(":", 1)[1], "Kibana matches Elasticsearch"
    assert es.rsplit(":", 1)[1].startswith("9.")
    assert services["worker"]["command"] == ["worker"]
    assert "kibana install" in " ".join(services["setup"]["command"])
    assert "es setup" in " ".join(services["setup"]["command"])
    assert services["simulate"]["command"][0] == "simulate"
    mounts = [v.split(":")[0] for v in services["fluentd"]["volumes"]]
    assert "./config/fluentd/forward-to-kafka.conf" in mounts
    assert (ROOT / "config/fluentd/forward-to-kafka.conf").exists()


def test_published_ports_bind_loopback_only() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} faces every network"
