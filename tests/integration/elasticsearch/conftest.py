"""A real Elasticsearch node for the session (tools/servers/: the integ-test distribution from
Maven Central, run as an unprivileged user on loopback), and `logdrift run` pointed at it.

The node lives in its own run directory, so stopping it for the outage test never touches a
node someone started by hand with `python -m tools.servers up es`. A node that cannot start
fails the session loudly: these tests are never skipped.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests.integration.conftest import LOGDRIFT, free_port, search_all, servers_run_dir
from tests.integration.patience import bound
from tools.servers import REPO_ROOT, ServerError, start_es, stop_es

__all__ = ["search_all"]  # the suite imports it from here

RUN_DIR = Path(os.environ.get("LOGDRIFT_ES_TEST_RUN_DIR", REPO_ROOT / ".servers" / "es-tests"))


def _own_run_dir() -> contextlib.AbstractContextManager[None]:
    return servers_run_dir(RUN_DIR)


@dataclass
class Node:
    url: str

    def stop(self) -> None:
        """A real stop (SIGTERM), keeping data and ports for `start`."""
        with _own_run_dir():
            stop_es(keep_data=True)

    def start(self) -> None:
        with _own_run_dir():
            info = start_es(reuse=True)
        assert info.url == self.url, "restarted on another port: clients would not find it"


@pytest.fixture(scope="session")
def es_node() -> Iterator[Node]:
    try:
        with _own_run_dir():
            info = start_es()
    except ServerError as exc:
        pytest.fail(f"could not start a real Elasticsearch node for these tests:\n{exc}")
    yield Node(info.url)
    with _own_run_dir():
        stop_es()


@pytest.fixture
def es(es_node: Node) -> Iterator[Elasticsearch]:
    """A plain synchronous client for the tests' own look at the node."""
    client = Elasticsearch(es_node.url, request_timeout=60)
    yield client
    client.close()


@pytest.fixture
def prefix(es: Elasticsearch) -> Iterator[str]:
    """A fresh index prefix per test; its indices and templates are removed afterwards."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    es.indices.delete(index=f"{name}-*", allow_no_indices=True, expand_wildcards="all")
    for target in ("anomalies", "drift-scores", "incidents", "rollups"):
        with contextlib.suppress(Exception):
            es.indices.delete_index_template(name=f"{name}-{target}")


@dataclass
class EsRunner:
    """`logdrift run` as a subprocess with Elasticsearch configured; its output goes to a file,
    so a long run never blocks on a full pipe."""

    proc: subprocess.Popen[bytes]
    port: int
    store: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 120) -> str:
        self.proc.terminate()
        self.proc.wait(timeout=bound(timeout))
        out = self.output()
        assert self.proc.returncode == 0, out[-5000:]
        return out


@pytest.fixture
def start_es_runner(tmp_path: Path, baseline_dir: Path, es_node: Node) -> Iterator[object]:
    started: list[EsRunner] = []

    def start(prefix: str, *extra: str, **env: str) -> EsRunner:
        port = free_port()
        store = tmp_path / "logdrift.db"
        log = tmp_path / f"runner-{len(started)}.log"
        environment = {
            **os.environ,
            "COLUMNS": "200",
            "LOGDRIFT_ELASTICSEARCH__URL": es_node.url,
            "LOGDRIFT_ELASTICSEARCH__INDEX_PREFIX": prefix,
            **{f"LOGDRIFT_ELASTICSEARCH__{k.upper()}": v for k, v in env.items()},
        }
        cmd = [*LOGDRIFT, "run", "--baseline", str(baseline_dir), "--port", str(port)]
        cmd += ["--store", str(store), *extra]
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=environment)
        runner = EsRunner(proc, port, store, log)
        started.append(runner)
        _wait_listening(runner)
        return runner

    yield start
    for r in started:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()


def _wait_listening(runner: EsRunner, timeout: float = 60) -> None:
    deadline = time.monotonic() + bound(timeout)
    while time.monotonic() < deadline:
        if runner.proc.poll() is not None:
            raise AssertionError(f"logdrift run exited early:\n{runner.output()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", runner.port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(
        f"logdrift run did not listen within {bound(timeout)} s:\n{runner.output()}"
    )
