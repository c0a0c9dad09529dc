"""The single-node KRaft broker (combined broker + controller) on loopback: start, check ready
with a real aiokafka produce + consume + commit, status, stop."""

from __future__ import annotations

import base64
import contextlib
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from tools.servers.common import (
    DEFAULT_PARTITIONS,
    HOST,
    KAFKA_MIN_JAVA,
    KAFKA_READY_LINE,
    KAFKA_VERSION,
    READY_TIMEOUT,
    ServerError,
    ServerInfo,
    fail,
    free_port,
    locked,
    log,
    port_open,
    read_json,
    run,
    run_dir,
    with_port_retry,
    write_json,
)
from tools.servers.downloads import fetch_kafka
from tools.servers.kafka_ready import kafka_roundtrip_check
from tools.servers.processes import cmdline, find_java_home, owned_java_pids, pid_alive, terminate

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
    state = read_json(_kafka_state_file())
    if not state:
        return None
    info = _kafka_info(state)
    if pid_alive(info.pid) and "kafka.Kafka" in cmdline(info.pid) and port_open(info.port):
        return info
    return None


def start_kafka(partitions: int = DEFAULT_PARTITIONS) -> ServerInfo:
    """Start (or reuse) the single-node KRaft broker; returns once it is really ready."""
    with locked("kafka"):
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
    return with_port_retry("kafka", lambda: _start_kafka_once(partitions))


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
    port, cport = free_port(), free_port()
    while cport == port:
        cport = free_port()
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
    run(
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
    write_json(_kafka_state_file(), state)
    try:
        readiness = _wait_kafka_ready(proc, port, server_log, stdout_log)
    except BaseException:
        with contextlib.suppress(ServerError):
            _stop_kafka_locked(quiet=True)
        raise
    state["readiness"] = readiness
    write_json(_kafka_state_file(), state)
    return _kafka_info(state)


def _wait_kafka_ready(proc: subprocess.Popen[bytes], port: int, log: Path, out: Path) -> str:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise fail(f"kafka exited with code {proc.returncode} during startup", log, out)
        try:
            if KAFKA_READY_LINE in log.read_text(errors="replace") and port_open(port):
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise fail(f"kafka: no '{KAFKA_READY_LINE}' within {READY_TIMEOUT:.0f} s", log, out)
        time.sleep(0.25)
    bootstrap = f"{HOST}:{port}"
    last_error = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise fail(f"kafka exited with code {proc.returncode} during startup", log, out)
        try:
            return kafka_roundtrip_check(bootstrap, max(5.0, deadline - time.monotonic()))
        except ServerError as exc:
            last_error = str(exc)
            time.sleep(1)
    raise fail(f"kafka: readiness check failed within {READY_TIMEOUT:.0f} s: {last_error}", log)


def stop_kafka() -> None:
    """Stop the broker of this run dir (SIGTERM, 30 s, SIGKILL). No-op if not running."""
    with locked("kafka"):
        _stop_kafka_locked(quiet=False)


def _stop_kafka_locked(quiet: bool) -> None:
    kdir = _kafka_dir()
    state = read_json(_kafka_state_file()) or {}
    pids = []
    pid = int(str(state.get("pid", 0)))
    if pid and "kafka.Kafka" in cmdline(pid):
        pids.append(pid)
    if kdir.exists():
        pids += owned_java_pids(kdir)
    if pids:
        if not quiet:
            log(f"stopping kafka (pids {sorted(set(pids))})")
        terminate(pids, "kafka")
    _kafka_state_file().unlink(missing_ok=True)
