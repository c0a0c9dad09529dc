"""What every part of tools.servers shares: pinned versions, paths (cache, run dir), the
error and info types, locking, ports, subprocess runs and the state files."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

KAFKA_VERSION = "4.4.0"  # org.apache.kafka:kafka_2.13 (4.3.1 resolves too)
KAFKA_MIN_JAVA = 17
# kafka_2.13 pulls log4j-api/log4j-core but NO SLF4J binding: add the 1.7 binding ourselves,
# at the same version as the log4j-core it pulls, or the broker logs nothing at all.
LOG4J_VERSION = "2.25.5"
ES_VERSION = "9.5.4"  # newest integ-test-zip on Central (9.5.5, 9.5.6, 9.6.0 refused)
ES_MIN_JAVA = 21 if int(ES_VERSION.split(".")[0]) >= 9 else 17  # ES 9.x needs 21+, 8.x 17+
ES_ARTIFACT = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{ES_VERSION}:zip"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

HOST = "127.0.0.1"
ES_USER = "logdrift-es"
ES_SHARED_ROOT = Path("/var/tmp/logdrift-es")  # fallback when the cache is not traversable
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
DEFAULT_PARTITIONS = 4
KAFKA_READY_LINE = "Kafka Server started"
KAFKA_READY_TOPIC = "logdrift-readiness"

REPO_ROOT = Path(__file__).resolve().parents[2]


class ServerError(RuntimeError):
    """A server could not be fetched, started, checked or stopped."""


@dataclass(frozen=True)
class ServerInfo:
    """How to reach a running server.

    ``url`` is the Kafka bootstrap string (``127.0.0.1:PORT``) or the ES base URL.
    """

    name: str
    version: str
    host: str
    port: int
    url: str
    pid: int
    log_file: str
    extra: dict[str, object]


def cache_dir() -> Path:
    env = os.environ.get("LOGDRIFT_CACHE")
    return Path(env).resolve() if env else Path.home() / ".cache" / "logdrift"


def run_dir() -> Path:
    env = os.environ.get("LOGDRIFT_RUN_DIR")
    return Path(env).resolve() if env else REPO_ROOT / ".servers"


def log(msg: str) -> None:
    print(f"[servers] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """Serialise up/down of one server of one run dir across processes (pytest-xdist)."""
    rd = run_dir()
    mkdirs_traversable(rd)
    with open(rd / f".lock-{name}", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_open(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


_KEY_LINE = re.compile(r"\b(ERROR|FATAL)\b|Exception:|^Caused by:")


def _key_lines(path: Path, limit: int = 8) -> list[str]:
    """The first error-looking lines of a log (the reason, before the stack traces)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line[:400] for line in text.splitlines() if _KEY_LINE.search(line)][:limit]


def fail(msg: str, *logs: Path) -> ServerError:
    parts = [msg]
    for log in logs:
        key = _key_lines(log)
        if key:
            parts.append(f"--- first errors in {log} ---\n" + "\n".join(key))
    for log in logs:
        parts.append(f"--- tail of {log} ---\n{_tail(log)}")
    return ServerError("\n".join(parts))


def run(cmd: Sequence[str], cwd: Path, what: str, timeout: float = 900.0) -> str:
    try:
        proc = subprocess.run(
            list(cmd),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise ServerError(f"{what}: {cmd[0]} not found ({exc})") from exc
    except subprocess.TimeoutExpired as exc:
        raise ServerError(f"{what}: timed out after {timeout:.0f} s: {' '.join(cmd)}") from exc
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip().splitlines()[-30:]
        raise ServerError(
            f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n" + "\n".join(out)
        )
    return proc.stdout


def with_port_retry(what: str, start: Callable[[], ServerInfo]) -> ServerInfo:
    """Run ``start`` again (new ports) if a port we picked was taken before the server bound it."""
    for attempt in range(3):
        try:
            return start()
        except ServerError as exc:
            if attempt == 2 or "Address already in use" not in str(exc):
                raise
            log(f"{what}: a chosen port was taken meanwhile; retrying with new ports")
    raise AssertionError("unreachable")


def write_json(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def read_json(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def mkdirs_traversable(path: Path) -> None:
    """mkdir -p; the dirs it creates get mode 755 whatever the umask (the ES user must
    traverse them). Existing dirs are never touched: we only pick places already reachable."""
    created = [d for d in [path, *path.parents] if not d.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for d in created:
        d.chmod(0o755)
