"""The single-node Elasticsearch (integ-test distribution) on loopback: start (fresh, or again
on the same ports and data after ``stop_es(keep_data=True)``), health, status, stop."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path

from tools.servers.common import (
    ES_MIN_JAVA,
    ES_SHARED_ROOT,
    ES_USER,
    ES_VERSION,
    HOST,
    READY_TIMEOUT,
    ServerError,
    ServerInfo,
    fail,
    free_port,
    locked,
    log,
    mkdirs_traversable,
    read_json,
    run_dir,
    with_port_retry,
    write_json,
)
from tools.servers.downloads import es_modules, fetch_es
from tools.servers.processes import (
    chown_tree,
    cmdline,
    ensure_es_user,
    find_java_home,
    is_root,
    owned_java_pids,
    pid_alive,
    terminate,
    traversable_by_others,
)


def _es_dir() -> Path:
    """Runtime dir of ES (data, logs, pid): in the run dir if reachable by the ES user."""
    rd = run_dir()
    if is_root() and not traversable_by_others(rd):
        tag = uuid.uuid5(uuid.NAMESPACE_URL, str(rd)).hex[:12]
        return ES_SHARED_ROOT / f"run-{tag}"
    return rd / "es"


def _es_state_file() -> Path:
    return run_dir() / "es.json"


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
    state = read_json(_es_state_file())
    if not state:
        return None
    info = _es_info(state)
    if pid_alive(info.pid) and _es_healthy(info.port, timeout=2):
        return info
    return None


def start_es(reuse: bool = False) -> ServerInfo:
    """Start (or reuse) the single-node ES; returns once health is yellow or better.

    ``reuse``: restart the node last stopped with ``stop_es(keep_data=True)`` on the same ports
    with the same data (an outage a client must ride out, not a fresh node). Without a node so
    stopped, it starts a fresh one.
    """
    with locked("es"):
        return _start_es_locked(reuse)


def _es_stopped_file() -> Path:
    return run_dir() / "es.stopped.json"


def _start_es_locked(reuse: bool = False) -> ServerInfo:
    running = es_status()
    if running is not None:
        return running
    stopped = read_json(_es_stopped_file()) if reuse else None
    _stop_es_locked(quiet=True)
    _es_stopped_file().unlink(missing_ok=True)
    if stopped is not None:
        # Same ports or nothing: a client holds the URL, so a port retry would be a new node.
        return _start_es_once(stopped)
    return with_port_retry("elasticsearch", _start_es_once)


def _start_es_once(previous: dict[str, object] | None = None) -> ServerInfo:
    home = fetch_es()
    ids = ensure_es_user()
    modules = es_modules(home)
    java_home = find_java_home(ES_MIN_JAVA, prefer_default=False)
    edir = _es_dir()
    if previous is None:
        shutil.rmtree(edir, ignore_errors=True)
    mkdirs_traversable(edir.parent)
    for sub in ("data", "logs", "tmp"):
        (edir / sub).mkdir(parents=True, exist_ok=True)
    edir.chmod(0o755)
    chown_tree(edir, ids)
    if previous is not None:
        http_port, transport_port = int(str(previous["port"])), int(str(previous["transport_port"]))
    else:
        http_port, transport_port = free_port(), free_port()
    while transport_port == http_port:
        transport_port = free_port()
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
    write_json(_es_state_file(), state)
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
    write_json(_es_state_file(), state)
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
            raise fail(f"elasticsearch launcher exited with code {code}", *logs)
        pid = _read_pid(pidfile)
        if code == 0 and pid and not pid_alive(pid):
            raise fail(f"elasticsearch (pid {pid}) died during startup", *logs)
        if pid and _es_healthy(port, timeout=2):
            return pid
        time.sleep(0.5)
    raise fail(f"elasticsearch: not yellow within {READY_TIMEOUT:.0f} s", *logs)


def stop_es(keep_data: bool = False) -> None:
    """Stop the ES node of this run dir (SIGTERM, 30 s, SIGKILL). No-op if not running.

    ``keep_data``: remember its ports and keep its data, for ``start_es(reuse=True)``.
    """
    with locked("es"):
        state = read_json(_es_state_file())
        _stop_es_locked(quiet=False)
        if keep_data and state is not None:
            write_json(_es_stopped_file(), state)


def _stop_es_locked(quiet: bool, extra_pids: Sequence[int] = ()) -> None:
    state = read_json(_es_state_file()) or {}
    edir = Path(str(state["dir"])) if state.get("dir") else _es_dir()
    pids = [p for p in extra_pids if p]
    for pid in (int(str(state.get("pid", 0))), _read_pid(edir / "es.pid")):
        if pid and "org.elasticsearch" in cmdline(pid):
            pids.append(pid)
    if edir.exists():
        pids += owned_java_pids(edir)
    if pids:
        if not quiet:
            log(f"stopping elasticsearch (pids {sorted(set(pids))})")
        terminate(pids, "elasticsearch")
    _es_state_file().unlink(missing_ok=True)
