"""Provision, start, check and stop real single-node test servers, without Docker.

* Apache Kafka (KRaft, combined broker + controller), jars fetched from Maven Central.
* Elasticsearch, the ``integ-test-zip`` distribution fetched from Maven Central.

Command line::

    python tools/servers.py up kafka|es|all [--partitions N]
    python tools/servers.py down kafka|es|all
    python tools/servers.py status
    python tools/servers.py env          # export LOGDRIFT_TEST_KAFKA=... / LOGDRIFT_TEST_ES=...

From Python (pytest fixtures)::

    from tools.servers import start_kafka, stop_kafka, start_es, stop_es

Downloads are cached in ``${LOGDRIFT_CACHE:-$HOME/.cache/logdrift}``; runtime state (data,
logs, pid files, ports) lives in ``${LOGDRIFT_RUN_DIR:-<repo>/.servers}``. Everything binds
to 127.0.0.1. Standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import fcntl
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# --------------------------------------------------------------------------------------
# Pinned versions (verified to resolve from Maven Central and to run on this machine).
# --------------------------------------------------------------------------------------
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

REPO_ROOT = Path(__file__).resolve().parent.parent

__all__ = [
    "ES_VERSION",
    "KAFKA_VERSION",
    "ServerError",
    "ServerInfo",
    "es_status",
    "kafka_status",
    "start_es",
    "start_kafka",
    "stop_es",
    "stop_kafka",
]


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


# --------------------------------------------------------------------------------------
# Paths, locking, small helpers
# --------------------------------------------------------------------------------------
def cache_dir() -> Path:
    env = os.environ.get("LOGDRIFT_CACHE")
    return Path(env).resolve() if env else Path.home() / ".cache" / "logdrift"


def run_dir() -> Path:
    env = os.environ.get("LOGDRIFT_RUN_DIR")
    return Path(env).resolve() if env else REPO_ROOT / ".servers"


def _log(msg: str) -> None:
    print(f"[servers] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """Serialise up/down of one server of one run dir across processes (pytest-xdist)."""
    rd = run_dir()
    _mkdirs_traversable(rd)
    with open(rd / f".lock-{name}", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _port_open(port: int, timeout: float = 1.0) -> bool:
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


def _fail(msg: str, *logs: Path) -> ServerError:
    parts = [msg]
    for log in logs:
        key = _key_lines(log)
        if key:
            parts.append(f"--- first errors in {log} ---\n" + "\n".join(key))
    for log in logs:
        parts.append(f"--- tail of {log} ---\n{_tail(log)}")
    return ServerError("\n".join(parts))


def _run(cmd: Sequence[str], cwd: Path, what: str, timeout: float = 900.0) -> str:
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


def _with_port_retry(what: str, start: Callable[[], ServerInfo]) -> ServerInfo:
    """Run ``start`` again (new ports) if a port we picked was taken before the server bound it."""
    for attempt in range(3):
        try:
            return start()
        except ServerError as exc:
            if attempt == 2 or "Address already in use" not in str(exc):
                raise
            _log(f"{what}: a chosen port was taken meanwhile; retrying with new ports")
    raise AssertionError("unreachable")


def _write_json(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------
def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _pid_alive(pid: int) -> bool:
    """True if pid runs and is not a zombie (a zombie child of ours is reaped)."""
    if pid <= 0:
        return False
    _reap(pid)
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat_line.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _owned_java_pids(root: Path) -> list[int]:
    """Java processes whose working directory lies inside ``root`` (our servers only)."""
    found = []
    root_s = str(root.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = os.readlink(entry / "exe")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if os.path.basename(exe) == "java" and (cwd == root_s or cwd.startswith(root_s + "/")):
            found.append(int(entry.name))
    return found


def _terminate(pids: Sequence[int], what: str, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, wait up to ``timeout`` s, then SIGKILL; raise if anything survives."""
    live = [p for p in dict.fromkeys(pids) if _pid_alive(p)]
    for pid in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_pid_alive(p) for p in live):
        time.sleep(0.2)
    stubborn = [p for p in live if _pid_alive(p)]
    for pid in stubborn:
        _log(f"{what}: pid {pid} ignored SIGTERM for {timeout:.0f} s, sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_pid_alive(p) for p in stubborn):
        time.sleep(0.1)
    left = [p for p in live if _pid_alive(p)]
    if left:
        raise ServerError(f"{what}: processes {left} still alive after SIGKILL")


# --------------------------------------------------------------------------------------
# Java
# --------------------------------------------------------------------------------------
def _java_major(java_home: Path) -> int | None:
    release = java_home / "release"
    try:
        text = release.read_text()
    except OSError:
        return None
    m = re.search(r'^JAVA_VERSION="(\d+)(?:\.(\d+))?', text, re.M)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def find_java_home(min_major: int, prefer_default: bool) -> Path:
    """A JDK satisfying ``min_major``.

    With ``prefer_default`` the JDK of ``$JAVA_HOME`` or of ``java`` on PATH wins if recent
    enough; otherwise (and as fallback) the newest JDK under /usr/lib/jvm.
    """
    candidates: list[Path] = []
    if prefer_default:
        if os.environ.get("JAVA_HOME"):
            candidates.append(Path(os.environ["JAVA_HOME"]))
        java = shutil.which("java")
        if java:
            candidates.append(Path(os.path.realpath(java)).parent.parent)
        for home in candidates:
            major = _java_major(home)
            if major is not None and major >= min_major and (home / "bin" / "java").exists():
                return home
    found: dict[Path, int] = {}
    jvm = Path("/usr/lib/jvm")
    for home in [*candidates, *(sorted(jvm.iterdir()) if jvm.is_dir() else [])]:
        real = home.resolve()
        major = _java_major(real)
        if major is not None and (real / "bin" / "java").exists():
            found[real] = major
    good = {h: m for h, m in found.items() if m >= min_major}
    if not good:
        have = ", ".join(f"{h} ({m})" for h, m in found.items()) or "none"
        raise ServerError(f"no JDK {min_major}+ found (have: {have})")
    return max(good, key=lambda h: (good[h], str(h)))


# --------------------------------------------------------------------------------------
# Kafka
# --------------------------------------------------------------------------------------
_KAFKA_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>logdrift.tools</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

_KAFKA_LOG4J2 = """status = warn
name = logdrift-kafka
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
appender.console.filter.threshold.type = ThresholdFilter
appender.console.filter.threshold.level = warn
rootLogger.level = info
rootLogger.appenderRef.file.ref = FILE
rootLogger.appenderRef.console.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
"""


def _kafka_home() -> Path:
    return cache_dir() / f"kafka-{KAFKA_VERSION}"


def fetch_kafka() -> Path:
    """Jars of Kafka ``KAFKA_VERSION`` in ``<cache>/kafka-<v>/lib`` (fetched once)."""
    home = _kafka_home()
    lib = home / "lib"
    marker = home / ".complete"
    if marker.exists() and any(lib.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
        return home
    _log(f"fetching Kafka {KAFKA_VERSION} jars with Maven into {lib} ...")
    if shutil.which("mvn") is None:
        raise ServerError("mvn not found on PATH (needed once to fetch Kafka)")
    shutil.rmtree(lib, ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    (home / "pom.xml").write_text(_KAFKA_POM.format(kafka=KAFKA_VERSION, log4j=LOG4J_VERSION))
    _run(
        [
            "mvn",
            "-B",
            "-ntp",
            "-q",
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DoutputDirectory=lib",
            "-DincludeScope=runtime",
        ],
        cwd=home,
        what=f"fetching Kafka {KAFKA_VERSION}",
    )
    jars = {p.name for p in lib.glob("*.jar")}
    for needed in (f"kafka_2.13-{KAFKA_VERSION}.jar", f"log4j-slf4j-impl-{LOG4J_VERSION}.jar"):
        if needed not in jars:
            raise ServerError(f"fetching Kafka: {needed} missing from {lib}")
    bindings = [j for j in jars if j.startswith(("slf4j-reload4j", "slf4j-log4j12", "logback"))]
    if bindings:
        raise ServerError(f"fetching Kafka: unexpected extra SLF4J bindings {bindings}")
    marker.write_text(f"{KAFKA_VERSION}\n")
    return home


def _kafka_dir() -> Path:
    return run_dir() / "kafka"


def _kafka_state_file() -> Path:
    return _kafka_dir() / "state.json"


def _kafka_cluster_id() -> str:
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _kafka_properties(port: int, cport: int, log_dirs: Path, partitions: int) -> str:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{cport}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{cport}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dirs),
        "num.partitions": str(partitions),
        "auto.create.topics.enable": "true",
        "delete.topic.enable": "true",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "log.retention.hours": "24",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _kafka_info(state: dict[str, object]) -> ServerInfo:
    port = int(str(state["port"]))
    return ServerInfo(
        name="kafka",
        version=str(state["version"]),
        host=HOST,
        port=port,
        url=f"{HOST}:{port}",
        pid=int(str(state["pid"])),
        log_file=str(state["log_file"]),
        extra={
            "controller_port": state["controller_port"],
            "partitions": state["partitions"],
            "readiness": state.get("readiness", ""),
        },
    )


def kafka_status() -> ServerInfo | None:
    """The running broker of this run dir, or None (stale state is ignored)."""
    state = _read_json(_kafka_state_file())
    if not state:
        return None
    info = _kafka_info(state)
    if _pid_alive(info.pid) and "kafka.Kafka" in _cmdline(info.pid) and _port_open(info.port):
        return info
    return None


def start_kafka(partitions: int = DEFAULT_PARTITIONS) -> ServerInfo:
    """Start (or reuse) the single-node KRaft broker; returns once it is really ready."""
    with _locked("kafka"):
        return _start_kafka_locked(partitions)


def _start_kafka_locked(partitions: int) -> ServerInfo:
    running = kafka_status()
    if running is not None:
        if running.extra["partitions"] != partitions:
            raise ServerError(
                f"kafka already running with num.partitions={running.extra['partitions']} "
                f"(asked for {partitions}): run `down kafka` first"
            )
        return running
    _stop_kafka_locked(quiet=True)  # stale state / leftovers
    return _with_port_retry("kafka", lambda: _start_kafka_once(partitions))


def _start_kafka_once(partitions: int) -> ServerInfo:
    home = fetch_kafka()
    java_home = find_java_home(KAFKA_MIN_JAVA, prefer_default=True)
    java = str(java_home / "bin" / "java")
    kdir = _kafka_dir()
    shutil.rmtree(kdir, ignore_errors=True)
    logs = kdir / "logs"
    data = kdir / "data"
    logs.mkdir(parents=True)
    data.mkdir()
    port, cport = _free_port(), _free_port()
    while cport == port:
        cport = _free_port()
    props = kdir / "server.properties"
    props.write_text(_kafka_properties(port, cport, data, partitions))
    log4j = kdir / "log4j2.properties"
    log4j.write_text(_KAFKA_LOG4J2)
    classpath = str(home / "lib" / "*")
    sysprops = [
        f"-Dlog4j2.configurationFile={log4j}",
        f"-Dkafka.logs.dir={logs}",
        "-Djava.awt.headless=true",
    ]
    cid = _kafka_cluster_id()
    fmt = [java, *sysprops, "-cp", classpath, "kafka.tools.StorageTool", "format"]
    fmt += ["-t", cid, "-c", str(props)]
    _run(
        fmt,
        cwd=kdir,
        what="formatting Kafka storage",
        timeout=120,
    )
    server_log = logs / "server.log"
    stdout_log = logs / "stdout.log"
    server_log.unlink(missing_ok=True)  # the format step may have written to it
    cmd = [
        java,
        "-Xms256m",
        "-Xmx512m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        *sysprops,
        "-cp",
        classpath,
        "kafka.Kafka",
        str(props),
    ]
    with open(stdout_log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=kdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    state: dict[str, object] = {
        "version": KAFKA_VERSION,
        "pid": proc.pid,
        "port": port,
        "controller_port": cport,
        "partitions": partitions,
        "cluster_id": cid,
        "java_home": str(java_home),
        "log_file": str(server_log),
        "started_at": time.time(),
    }
    _write_json(_kafka_state_file(), state)
    try:
        readiness = _wait_kafka_ready(proc, port, server_log, stdout_log)
    except BaseException:
        with contextlib.suppress(ServerError):
            _stop_kafka_locked(quiet=True)
        raise
    state["readiness"] = readiness
    _write_json(_kafka_state_file(), state)
    return _kafka_info(state)


def _wait_kafka_ready(proc: subprocess.Popen[bytes], port: int, log: Path, out: Path) -> str:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise _fail(f"kafka exited with code {proc.returncode} during startup", log, out)
        try:
            if KAFKA_READY_LINE in log.read_text(errors="replace") and _port_open(port):
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise _fail(f"kafka: no '{KAFKA_READY_LINE}' within {READY_TIMEOUT:.0f} s", log, out)
        time.sleep(0.25)
    bootstrap = f"{HOST}:{port}"
    last_error = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _fail(f"kafka exited with code {proc.returncode} during startup", log, out)
        try:
            return kafka_roundtrip_check(bootstrap, max(5.0, deadline - time.monotonic()))
        except ServerError as exc:
            last_error = str(exc)
            time.sleep(1)
    raise _fail(f"kafka: readiness check failed within {READY_TIMEOUT:.0f} s: {last_error}", log)


# ---- Kafka readiness: real produce + consume ------------------------------------------
def kafka_roundtrip_check(bootstrap: str, timeout: float) -> str:
    """Prove the broker works; returns the method used.

    1. ``aiokafka`` importable here: real produce + consume (with a group commit) in-process,
       on a private event loop in a thread (safe inside a running loop, e.g. pytest-asyncio).
    2. else the repo's ``.venv/bin/python`` runs the same check in a subprocess.
    3. else a stdlib Kafka-protocol check: ApiVersions, then Metadata with topic
       auto-creation until the readiness topic has a leader on every partition.
    """
    try:
        import aiokafka  # noqa: F401
    except ImportError:
        venv_python = REPO_ROOT / ".venv" / "bin" / "python"
        if venv_python.exists():
            check = [str(venv_python), str(Path(__file__).resolve()), "_kafka-check"]
            check += [bootstrap, str(timeout)]
            out = _run(
                check,
                cwd=REPO_ROOT,
                what="aiokafka round trip (venv)",
                timeout=timeout + 30,
            )
            return out.strip().splitlines()[-1] if out.strip() else "aiokafka (venv)"
        _raw_metadata_check(bootstrap, timeout)
        return "raw protocol: ApiVersions + Metadata (leader elected); aiokafka not available"
    result: list[BaseException | str] = []

    def runner() -> None:
        try:
            asyncio.run(asyncio.wait_for(_aiokafka_roundtrip(bootstrap), timeout))
            result.append("aiokafka produce + consume + commit")
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=runner, name="kafka-ready-check", daemon=True)
    thread.start()
    thread.join(timeout + 15)
    if not result:
        raise ServerError("aiokafka round trip hung")
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise ServerError(f"aiokafka round trip: {type(outcome).__name__}: {outcome}")
    return outcome


async def _aiokafka_roundtrip(bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    payload = uuid.uuid4().hex.encode()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await producer.start()
    try:
        meta = await producer.send_and_wait(KAFKA_READY_TOPIC, payload, partition=0)
    finally:
        await producer.stop()
    tp = TopicPartition(KAFKA_READY_TOPIC, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id="logdrift-readiness",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10000,
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        msg = await consumer.getone()
        if msg.value != payload:
            raise ServerError(f"consumed {msg.value!r}, expected {payload!r}")
        await consumer.commit()  # exercises the group coordinator / __consumer_offsets
    finally:
        await consumer.stop()


def _kafka_request(sock: socket.socket, api_key: int, version: int, body: bytes) -> bytes:
    client = b"logdrift-servers"
    header = struct.pack(">hhih", api_key, version, 1, len(client)) + client
    msg = header + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)

    def recv(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ServerError("kafka closed the connection")
            buf += chunk
        return buf

    (size,) = struct.unpack(">i", recv(4))
    return recv(size)[4:]  # drop correlation id


def _raw_metadata_check(bootstrap: str, timeout: float) -> None:
    host, port = bootstrap.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=5) as sock:
                resp = _kafka_request(sock, 18, 0, b"")  # ApiVersions v0
                (err,) = struct.unpack(">h", resp[:2])
                if err:
                    raise ServerError(f"ApiVersions error {err}")
                topic = KAFKA_READY_TOPIC.encode()
                body = struct.pack(">ih", 1, len(topic)) + topic + b"\x01"
                resp = _kafka_request(sock, 3, 4, body)  # Metadata v4, auto-create
                if _metadata_topic_ready(resp):
                    return
                last = "readiness topic has no leader yet"
        except (OSError, struct.error, ServerError) as exc:
            last = str(exc)
        time.sleep(0.5)
    raise ServerError(f"raw metadata check: {last}")


def _metadata_topic_ready(resp: bytes) -> bool:
    pos = 4  # throttle_time_ms

    def i16() -> int:
        nonlocal pos
        (v,) = struct.unpack_from(">h", resp, pos)
        pos += 2
        return int(v)

    def i32() -> int:
        nonlocal pos
        (v,) = struct.unpack_from(">i", resp, pos)
        pos += 4
        return int(v)

    def string() -> None:
        nonlocal pos
        n = i16()
        pos += max(n, 0)

    for _ in range(i32()):  # brokers: node_id, host, port, rack
        i32()
        string()
        i32()
        string()
    string()  # cluster_id
    i32()  # controller_id
    ok = False
    for _ in range(i32()):
        topic_err = i16()
        string()
        pos += 1  # is_internal
        partitions = i32()
        ok = topic_err == 0 and partitions > 0
        for _ in range(partitions):
            p_err = i16()
            i32()
            leader = i32()
            for _ in range(2):  # replicas, isr
                count = i32()  # (not `pos += 4 * i32()`: that reads pos before i32 moves it)
                pos += 4 * count
            ok = ok and p_err == 0 and leader >= 0
    return ok


def stop_kafka() -> None:
    """Stop the broker of this run dir (SIGTERM, 30 s, SIGKILL). No-op if not running."""
    with _locked("kafka"):
        _stop_kafka_locked(quiet=False)


def _stop_kafka_locked(quiet: bool) -> None:
    kdir = _kafka_dir()
    state = _read_json(_kafka_state_file()) or {}
    pids = []
    pid = int(str(state.get("pid", 0)))
    if pid and "kafka.Kafka" in _cmdline(pid):
        pids.append(pid)
    if kdir.exists():
        pids += _owned_java_pids(kdir)
    if pids:
        if not quiet:
            _log(f"stopping kafka (pids {sorted(set(pids))})")
        _terminate(pids, "kafka")
    _kafka_state_file().unlink(missing_ok=True)


# --------------------------------------------------------------------------------------
# Elasticsearch
# --------------------------------------------------------------------------------------
def _is_root() -> bool:
    return os.geteuid() == 0


def _traversable_by_others(path: Path) -> bool:
    """Every existing ancestor (and path itself, if it exists) has o+x."""
    p = path.resolve()
    for d in [p, *p.parents]:
        if not d.exists():
            continue
        if not d.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def _es_zip() -> Path:
    return cache_dir() / f"elasticsearch-{ES_VERSION}.zip"


def _es_home() -> Path:
    """Where the unpacked ES lives: the cache if the ES user can reach it, else /var/tmp."""
    base = cache_dir()
    if _is_root() and not _traversable_by_others(base):
        base = ES_SHARED_ROOT
    return base / f"elasticsearch-{ES_VERSION}"


def _es_dir() -> Path:
    """Runtime dir of ES (data, logs, pid): in the run dir if reachable by the ES user."""
    rd = run_dir()
    if _is_root() and not _traversable_by_others(rd):
        tag = uuid.uuid5(uuid.NAMESPACE_URL, str(rd)).hex[:12]
        return ES_SHARED_ROOT / f"run-{tag}"
    return rd / "es"


def _es_state_file() -> Path:
    return run_dir() / "es.json"


def _ensure_es_user() -> tuple[int, int] | None:
    """(uid, gid) of the unprivileged ES user when we are root, else None (run as us)."""
    if not _is_root():
        return None
    try:
        pw = pwd.getpwnam(ES_USER)
    except KeyError:
        _log(f"creating system user {ES_USER}")
        cmd = ["useradd", "--system", "--user-group", "--no-create-home"]
        cmd += ["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", ES_USER]
        try:
            _run(cmd, cwd=Path("/"), what=f"creating user {ES_USER}", timeout=60)
        except ServerError:
            with contextlib.suppress(KeyError):  # a concurrent useradd won
                pw = pwd.getpwnam(ES_USER)
                return pw.pw_uid, pw.pw_gid
            raise
        pw = pwd.getpwnam(ES_USER)
    return pw.pw_uid, pw.pw_gid


def _chown_tree(path: Path, ids: tuple[int, int] | None) -> None:
    if ids is None:
        return
    _run(["chown", "-R", f"{ids[0]}:{ids[1]}", str(path)], cwd=Path("/"), what="chown")


def _mkdirs_traversable(path: Path) -> None:
    """mkdir -p; the dirs it creates get mode 755 whatever the umask (the ES user must
    traverse them). Existing dirs are never touched: we only pick places already reachable."""
    created = [d for d in [path, *path.parents] if not d.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for d in created:
        d.chmod(0o755)


def fetch_es() -> Path:
    """Unpacked ES ``ES_VERSION`` home (zip fetched once into the cache, unzipped once)."""
    ids = _ensure_es_user()
    zip_path = _es_zip()
    if not zip_path.exists():
        _log(f"fetching {ES_ARTIFACT} with Maven into {zip_path.parent} ...")
        if shutil.which("mvn") is None:
            raise ServerError("mvn not found on PATH (needed once to fetch Elasticsearch)")
        zip_path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="logdrift-mvn-") as tmp:
            mvn = ["mvn", "-B", "-ntp", "-q", f"{DEPENDENCY_PLUGIN}:copy"]
            mvn += [f"-Dartifact={ES_ARTIFACT}", f"-DoutputDirectory={tmp}"]
            _run(
                mvn,
                cwd=Path(tmp),
                what=f"fetching Elasticsearch {ES_VERSION}",
            )
            got = Path(tmp) / zip_path.name
            if not got.exists():
                raise ServerError(f"fetching Elasticsearch: {got.name} not produced by Maven")
            shutil.move(str(got), zip_path.with_suffix(".part"))
            zip_path.with_suffix(".part").replace(zip_path)
    home = _es_home()
    marker = home / ".logdrift-complete"
    if marker.exists() and (home / "bin" / "elasticsearch").exists():
        return home
    _log(f"unpacking {zip_path.name} into {home.parent}")
    if shutil.which("unzip") is None:
        raise ServerError("unzip not found (apt-get install unzip)")
    _mkdirs_traversable(home.parent)
    shutil.rmtree(home, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=".unzip-", dir=home.parent) as tmp:
        _run(["unzip", "-q", str(zip_path), "-d", tmp], cwd=Path(tmp), what="unzip")
        inner = Path(tmp) / f"elasticsearch-{ES_VERSION}"
        if not (inner / "bin" / "elasticsearch").exists():
            raise ServerError(f"unexpected zip layout in {zip_path}")
        inner.rename(home)
    home.chmod(0o755)
    _chown_tree(home, ids)
    marker.write_text(f"{ES_VERSION}\n")
    return home


def _es_modules(home: Path) -> list[str]:
    mods = home / "modules"
    return sorted(p.name for p in mods.iterdir()) if mods.is_dir() else []


def _http_get(url: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def _es_info(state: dict[str, object]) -> ServerInfo:
    port = int(str(state["port"]))
    return ServerInfo(
        name="es",
        version=str(state["version"]),
        host=HOST,
        port=port,
        url=f"http://{HOST}:{port}",
        pid=int(str(state["pid"])),
        log_file=str(state["log_file"]),
        extra={
            "transport_port": state["transport_port"],
            "home": state["home"],
            "modules": state.get("modules", []),
            "root_endpoint": state.get("root_endpoint", ""),
        },
    )


def _es_healthy(port: int, timeout: float = 5.0) -> bool:
    url = f"http://{HOST}:{port}/_cluster/health?wait_for_status=yellow&timeout={int(timeout)}s"
    try:
        status, _, _ = _http_get(url, timeout=timeout + 5)
    except (OSError, ValueError):
        return False
    return status == 200


def es_status() -> ServerInfo | None:
    """The running ES node of this run dir, or None."""
    state = _read_json(_es_state_file())
    if not state:
        return None
    info = _es_info(state)
    if _pid_alive(info.pid) and _es_healthy(info.port, timeout=2):
        return info
    return None


def start_es(reuse: bool = False) -> ServerInfo:
    """Start (or reuse) the single-node ES; returns once health is yellow or better.

    ``reuse``: restart the node last stopped with ``stop_es(keep_data=True)`` on the same ports
    with the same data (an outage a client must ride out, not a fresh node). Without a node so
    stopped, it starts a fresh one.
    """
    with _locked("es"):
        return _start_es_locked(reuse)


def _es_stopped_file() -> Path:
    return run_dir() / "es.stopped.json"


def _start_es_locked(reuse: bool = False) -> ServerInfo:
    running = es_status()
    if running is not None:
        return running
    stopped = _read_json(_es_stopped_file()) if reuse else None
    _stop_es_locked(quiet=True)
    _es_stopped_file().unlink(missing_ok=True)
    if stopped is not None:
        # Same ports or nothing: a client holds the URL, so a port retry would be a new node.
        return _start_es_once(stopped)
    return _with_port_retry("elasticsearch", _start_es_once)


def _start_es_once(previous: dict[str, object] | None = None) -> ServerInfo:
    home = fetch_es()
    ids = _ensure_es_user()
    modules = _es_modules(home)
    java_home = find_java_home(ES_MIN_JAVA, prefer_default=False)
    edir = _es_dir()
    if previous is None:
        shutil.rmtree(edir, ignore_errors=True)
    _mkdirs_traversable(edir.parent)
    for sub in ("data", "logs", "tmp"):
        (edir / sub).mkdir(parents=True, exist_ok=True)
    edir.chmod(0o755)
    _chown_tree(edir, ids)
    if previous is not None:
        http_port, transport_port = int(str(previous["port"])), int(str(previous["transport_port"]))
    else:
        http_port, transport_port = _free_port(), _free_port()
    while transport_port == http_port:
        transport_port = _free_port()
    pidfile = edir / "es.pid"
    launcher_log = edir / "logs" / "launcher.log"
    server_log = edir / "logs" / "logdrift-test.log"
    settings = {
        "cluster.name": "logdrift-test",
        "node.name": "logdrift-es-1",
        "discovery.type": "single-node",
        "network.host": HOST,
        "http.port": str(http_port),
        "transport.port": str(transport_port),
        "path.data": str(edir / "data"),
        "path.logs": str(edir / "logs"),
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        "action.destructive_requires_name": "false",
    }
    if "x-pack-security" in modules:
        settings["xpack.security.enabled"] = "false"
    if "ingest-geoip" in modules:
        settings["ingest.geoip.downloader.enabled"] = "false"
    env_args = [
        f"ES_JAVA_HOME={java_home}",
        "ES_JAVA_OPTS=-Xms512m -Xmx512m",
        f"ES_TMPDIR={edir / 'tmp'}",
        f"ES_PATH_CONF={home / 'config'}",
    ]
    cmd = ["env", *env_args, str(home / "bin" / "elasticsearch"), "-d", "-p", str(pidfile)]
    for key, value in settings.items():
        cmd += ["-E", f"{key}={value}"]
    if ids is not None:
        cmd = ["runuser", "-u", ES_USER, "--", *cmd]
    state: dict[str, object] = {
        "version": ES_VERSION,
        "pid": 0,
        "port": http_port,
        "transport_port": transport_port,
        "home": str(home),
        "dir": str(edir),
        "java_home": str(java_home),
        "modules": modules,
        "log_file": str(server_log),
        "started_at": time.time(),
    }
    _write_json(_es_state_file(), state)
    with open(launcher_log, "wb") as out:
        launcher = subprocess.Popen(
            cmd,
            cwd=edir / "logs",
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        pid = _wait_es_ready(launcher, pidfile, http_port, launcher_log, server_log)
        state["pid"] = pid
        status, _, _ = _http_get(f"http://{HOST}:{http_port}/")
        state["root_endpoint"] = f"GET / -> {status}"
        with contextlib.suppress(subprocess.TimeoutExpired):
            launcher.wait(timeout=30)  # `-d`: the launcher exits once the node is up; reap it
    except BaseException:
        with contextlib.suppress(ServerError):
            _stop_es_locked(quiet=True, extra_pids=[launcher.pid])
        raise
    _write_json(_es_state_file(), state)
    return _es_info(state)


def _read_pid(pidfile: Path) -> int:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return 0


def _wait_es_ready(launcher: subprocess.Popen[bytes], pidfile: Path, port: int, *logs: Path) -> int:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        code = launcher.poll()
        if code not in (None, 0):
            raise _fail(f"elasticsearch launcher exited with code {code}", *logs)
        pid = _read_pid(pidfile)
        if code == 0 and pid and not _pid_alive(pid):
            raise _fail(f"elasticsearch (pid {pid}) died during startup", *logs)
        if pid and _es_healthy(port, timeout=2):
            return pid
        time.sleep(0.5)
    raise _fail(f"elasticsearch: not yellow within {READY_TIMEOUT:.0f} s", *logs)


def stop_es(keep_data: bool = False) -> None:
    """Stop the ES node of this run dir (SIGTERM, 30 s, SIGKILL). No-op if not running.

    ``keep_data``: remember its ports and keep its data, for ``start_es(reuse=True)``.
    """
    with _locked("es"):
        state = _read_json(_es_state_file())
        _stop_es_locked(quiet=False)
        if keep_data and state is not None:
            _write_json(_es_stopped_file(), state)


def _stop_es_locked(quiet: bool, extra_pids: Sequence[int] = ()) -> None:
    state = _read_json(_es_state_file()) or {}
    edir = Path(str(state["dir"])) if state.get("dir") else _es_dir()
    pids = [p for p in extra_pids if p]
    for pid in (int(str(state.get("pid", 0))), _read_pid(edir / "es.pid")):
        if pid and "org.elasticsearch" in _cmdline(pid):
            pids.append(pid)
    if edir.exists():
        pids += _owned_java_pids(edir)
    if pids:
        if not quiet:
            _log(f"stopping elasticsearch (pids {sorted(set(pids))})")
        _terminate(pids, "elasticsearch")
    _es_state_file().unlink(missing_ok=True)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------
def _describe(info: ServerInfo) -> str:
    if info.name == "kafka":
        return (
            f"kafka {info.version}: bootstrap={info.url} pid={info.pid} "
            f"partitions={info.extra['partitions']} ready-check={info.extra['readiness']}\n"
            f"  log: {info.log_file}"
        )
    return (
        f"es {info.version}: url={info.url} pid={info.pid} ({info.extra['root_endpoint']})\n"
        f"  modules: {info.extra['modules']}\n"
        f"  log: {info.log_file}"
    )


def _exports(kafka: ServerInfo | None, es: ServerInfo | None) -> list[str]:
    lines = []
    if kafka:
        lines.append(f"export LOGDRIFT_TEST_KAFKA={kafka.url}")
    if es:
        lines.append(f"export LOGDRIFT_TEST_ES={es.url}")
    return lines


def _targets(which: str) -> list[str]:
    return ["kafka", "es"] if which == "all" else [which]


def _cli_up(names: list[str], partitions: int) -> int:
    """Start the servers (in parallel: ES boots while Kafka does), print how to reach them."""

    def one(name: str) -> tuple[ServerInfo, str]:
        t0 = time.monotonic()
        was = kafka_status() if name == "kafka" else es_status()
        info = start_kafka(partitions) if name == "kafka" else start_es()
        return info, "already up" if was else f"up in {time.monotonic() - t0:.1f} s"

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = {name: pool.submit(one, name) for name in names}
        infos: dict[str, ServerInfo] = {}
        failed = False
        for name, future in futures.items():
            try:
                info, verb = future.result()
            except ServerError as exc:
                print(f"ERROR: {name}: {exc}", file=sys.stderr)
                failed = True
                continue
            print(f"{_describe(info)}\n  ({verb})")
            infos[name] = info
    print("\n".join(_exports(infos.get("kafka"), infos.get("es"))))
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="servers.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{up,down,status,env}")
    up = sub.add_parser("up", help="fetch (cached), start, wait until ready")
    up.add_argument("which", choices=["kafka", "es", "all"])
    up.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS)
    down = sub.add_parser("down", help="stop (SIGTERM, 30 s, SIGKILL)")
    down.add_argument("which", choices=["kafka", "es", "all"])
    sub.add_parser("status", help="what runs, where")
    sub.add_parser("env", help="print shell export lines for the running servers")
    check = sub.add_parser("_kafka-check")  # internal: aiokafka round trip in the venv
    check.add_argument("bootstrap")
    check.add_argument("timeout", type=float)
    args = parser.parse_args(argv)

    try:
        if args.command == "up":
            return _cli_up(_targets(args.which), args.partitions)
        elif args.command == "down":
            for name in _targets(args.which):
                stop_kafka() if name == "kafka" else stop_es()
                print(f"{name}: down")
        elif args.command == "status":
            for name, info in (("kafka", kafka_status()), ("es", es_status())):
                print(_describe(info) if info else f"{name}: not running")
        elif args.command == "env":
            kafka, es = kafka_status(), es_status()
            for name, info in (("kafka", kafka), ("es", es)):
                if info is None:
                    print(f"# {name} not running (python tools/servers.py up {name})")
            print("\n".join(_exports(kafka, es)))
            return 0 if (kafka or es) else 1
        elif args.command == "_kafka-check":
            print(kafka_roundtrip_check(args.bootstrap, args.timeout))
    except ServerError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
