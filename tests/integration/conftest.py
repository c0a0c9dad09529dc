"""Fixtures for end-to-end tests: the real `logdrift` command line, real sockets, the real
fluent-logger client."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import ApiError, Elasticsearch

from connectors.files import write_csv
from streams.simulation.traffic import training_rows
from tests.integration.patience import bound

LOGDRIFT = [sys.executable, "-m", "streams"]


@contextlib.contextmanager
def servers_run_dir(path: Path) -> Iterator[None]:
    """tools.servers reads LOGDRIFT_RUN_DIR at each call; point it at ``path`` for that call
    only (each suite's servers live in their own run directory)."""
    before = os.environ.get("LOGDRIFT_RUN_DIR")
    os.environ["LOGDRIFT_RUN_DIR"] = str(path)
    try:
        yield
    finally:
        if before is None:
            del os.environ["LOGDRIFT_RUN_DIR"]
        else:
            os.environ["LOGDRIFT_RUN_DIR"] = before


# Every runner and worker these tests start serves metrics on a free port: the default 9464
# would collide between concurrent runs on one machine.
os.environ.setdefault("LOGDRIFT_OBSERVABILITY__PORT", "0")


def logdrift(
    *args: str | Path, check: bool = True, timeout: float = 300, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real command line (in ``cwd``) and return what it printed."""
    proc = subprocess.run(
        [*LOGDRIFT, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=bound(timeout),
        env={**os.environ, "COLUMNS": "200"},
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"logdrift {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def training_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("training") / "train.csv"
    write_csv(path, training_rows(20_000, seed=7))
    return path


@pytest.fixture(scope="session")
def baseline_dir(training_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("baseline") / "ctr"
    logdrift("baseline", training_csv, "--out", out, "--model", "ctr")
    return out


@dataclass
class Runner:
    """A `logdrift run` subprocess; `stop()` sends SIGTERM and returns everything it printed."""

    proc: subprocess.Popen[str]
    port: int
    store: Path

    def stop(self, timeout: float = 60) -> str:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=bound(timeout))
        assert self.proc.returncode == 0, out
        return out


# Test streams carry fixed event times (2026-11-28, the Kafka suite's 2027): the receiving
# clock's checks are widened so they stay inside on any later day, and still refuse a record of
# 2100 or of 1970 (tests/integration/test_embedded_input_checks.py). A test's env overrides.
RUNNER_ENV = {
    "LOGDRIFT_EVENT_TIME__FUTURE_TOLERANCE_SECONDS": "1e8",  # about three years
    "LOGDRIFT_EVENT_TIME__MAX_AGE_SECONDS": "1e9",  # about thirty years
}


@pytest.fixture
def start_runner(tmp_path: Path, baseline_dir: Path) -> Iterator:
    started: list[Runner] = []

    def start(store: Path | None = None, *extra: str) -> Runner:
        port = free_port()
        store = store or tmp_path / "logdrift.db"
        proc = subprocess.Popen(
            [
                *LOGDRIFT,
                "run",
                "--baseline",
                str(baseline_dir),
                "--port",
                str(port),
                "--store",
                str(store),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**RUNNER_ENV, **os.environ, "COLUMNS": "200"},
        )
        runner = Runner(proc, port, store)
        started.append(runner)
        _wait_listening(port, proc)
        return runner

    yield start
    for r in started:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()


def _wait_listening(port: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + bound(timeout)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"logdrift run exited early:\n{proc.stdout.read() if proc.stdout else ''}"
            )
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"logdrift run did not listen on {port} within {bound(timeout)} s")


def search_all(es: Elasticsearch, index: str) -> list[dict[str, Any]]:
    """Every document of ``index`` (a name, alias or pattern) after a refresh; none yet while
    a daily index the writer just created has no started shard (a search answers 503)."""
    try:
        es.indices.refresh(index=index, allow_no_indices=True)
        found = es.search(index=index, size=10_000, query={"match_all": {}}, version=True)
    except ApiError as exc:
        if exc.meta.status != 503:
            raise
        return []
    return list(found["hits"]["hits"])
