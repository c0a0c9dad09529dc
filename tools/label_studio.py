"""A real Label Studio for the labelling tests: installed from PyPI into its own virtual
environment (its Django pins clash with ours), started on loopback with its SQLite default.

Command line::

    python tools/label_studio.py install     # the venv, cached (a few minutes the first time)
    python tools/label_studio.py up          # start; prints URL and the admin's token
    python tools/label_studio.py down
    python tools/label_studio.py status

From Python (pytest fixtures): ``start(users)`` / ``stop()``.

Cached in ``${LOGDRIFT_CACHE:-$HOME/.cache/logdrift}/label-studio``: the venv, and a template
data directory with the database migrated and the users created (the first migration takes a
minute and a half on two busy cores; copying the template takes none). Runtime state (data
directory, log, pid, port) in ``${LOGDRIFT_RUN_DIR:-<repo>/.servers}/label-studio``. Users are
created with Label Studio's own ``init`` command (``--username --password --user-token``), with
legacy tokens enabled for the organisation. Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

VERSION = "1.23.2"
READY_TIMEOUT = 300.0  # seconds: Django's start on a busy machine; generous by design
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class User:
    email: str
    password: str
    token: str


ADMIN = User("admin@logdrift.test", "admin-pass-1", "logdrift-admin-token")
RATERS = tuple(
    User(f"rater{i}@logdrift.test", f"rater-pass-{i}", f"logdrift-rater{i}-token")
    for i in (1, 2, 3)
)


@dataclass(frozen=True, slots=True)
class Running:
    url: str
    pid: int
    token: str  # the admin's
    users: tuple[User, ...]


def cache_dir() -> Path:
    base = os.environ.get("LOGDRIFT_CACHE") or str(Path.home() / ".cache" / "logdrift")
    return Path(base) / "label-studio"


def run_dir() -> Path:
    return Path(os.environ.get("LOGDRIFT_RUN_DIR") or ROOT / ".servers") / "label-studio"


def _log(msg: str) -> None:
    print(f"[label-studio] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """One installer or starter at a time, across processes (worktrees share the cache)."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def venv() -> Path:
    return cache_dir() / f"venv-{VERSION}"


def install() -> Path:
    """The venv with label-studio, made once; ``.installed`` marks a complete install."""
    with _locked("install"):
        home = venv()
        if (home / ".installed").exists():
            return home
        began = time.monotonic()
        _log(f"installing label-studio {VERSION} into {home} (once; a few minutes)")
        shutil.rmtree(home, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
        pip = [str(home / "bin" / "pip"), "install", "-q"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, f"label-studio=={VERSION}"], check=True)
        (home / ".installed").write_text(VERSION)
        _log(f"installed in {time.monotonic() - began:.0f} s")
        return home


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(data),
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
        SENTRY_DSN="",
        LOG_LEVEL="WARNING",
    )
    return env


def _template(users: Sequence[User]) -> Path:
    """A data directory with the database migrated and ``users`` created, kept in the cache."""
    key = hashlib.sha256(json.dumps([[u.email, u.token] for u in users]).encode()).hexdigest()
    template = cache_dir() / f"data-{VERSION}-{key[:12]}"
    with _locked("template"):
        if (template / ".ready").exists():
            return template
        shutil.rmtree(template, ignore_errors=True)
        template.mkdir(parents=True)
        began = time.monotonic()
        for n, u in enumerate(users):
            cmd = [str(venv() / "bin" / "label-studio"), "init", "--data-dir", str(template)]
            cmd += ["--username", u.email, "--password", u.password, "--user-token", u.token]
            cmd += ["--enable-legacy-api-token"] if n == 0 else []  # the organisation's setting
            done = subprocess.run(cmd, env=_env(template), capture_output=True, timeout=900)
            if done.returncode != 0:
                raise RuntimeError(f"label-studio init {u.email} failed:\n{done.stderr[-4000:]!r}")
        (template / ".ready").write_text(VERSION)
        _log(f"database migrated and {len(users)} users made in {time.monotonic() - began:.0f} s")
        return template


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(users: Sequence[User] = (ADMIN, *RATERS)) -> Running:
    """Start a fresh Label Studio (a copy of the cached template) and wait until it is healthy."""
    install()
    template = _template(users)
    state = run_dir()
    stop()
    shutil.rmtree(state, ignore_errors=True)
    shutil.copytree(template, state / "data")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [str(venv() / "bin" / "label-studio"), "start", "--no-browser", "--data-dir"]
    cmd += [str(state / "data"), "--internal-host", "127.0.0.1", "-p", str(port), "--host", url]
    log = open(state / "label-studio.log", "wb")  # noqa: SIM115 (the child keeps it)
    proc = subprocess.Popen(
        cmd, env=_env(state / "data"), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    (state / "state.json").write_text(json.dumps({"url": url, "pid": proc.pid}))
    began = time.monotonic()
    while time.monotonic() - began < READY_TIMEOUT:
        if proc.poll() is not None:
            raise RuntimeError(
                f"Label Studio exited ({proc.returncode}); see {state}/label-studio.log"
            )
        if _healthy(url):
            _log(f"up at {url} in {time.monotonic() - began:.0f} s")
            return Running(url, proc.pid, users[0].token, tuple(users))
        time.sleep(1.0)
    stop()
    raise RuntimeError(f"Label Studio not healthy within {READY_TIMEOUT:.0f} s at {url}")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as r:
            return bool(r.status == 200 and b"UP" in r.read(1024))
    except OSError:
        return False


def status() -> dict[str, object] | None:
    path = run_dir() / "state.json"
    if not path.exists():
        return None
    found = dict(json.loads(path.read_text()))
    found["healthy"] = _healthy(str(found["url"]))
    return found


def stop(timeout: float = 30.0) -> None:
    """SIGTERM the process group we started (by its pid), SIGKILL after ``timeout``."""
    path = run_dir() / "state.json"
    if not path.exists():
        return
    pid = int(json.loads(path.read_text())["pid"])
    path.unlink()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            os.killpg(pid, 0)
            time.sleep(0.5)
        os.killpg(pid, signal.SIGKILL)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["install", "up", "down", "status"])
    args = parser.parse_args(argv)
    if args.command == "install":
        print(install())
    elif args.command == "up":
        running = start()
        print(json.dumps({"url": running.url, "token": running.token, "pid": running.pid}))
    elif args.command == "down":
        stop()
    else:
        print(json.dumps(status()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
