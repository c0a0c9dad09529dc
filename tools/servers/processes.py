"""Processes and users: is a pid ours and alive, stop it (SIGTERM, then SIGKILL), find a JDK,
and the unprivileged user Elasticsearch must run as when we are root."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import stat
import time
from collections.abc import Sequence
from pathlib import Path

from tools.servers.common import ES_USER, STOP_TIMEOUT, ServerError, log, run


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pid_alive(pid: int) -> bool:
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


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def owned_java_pids(root: Path) -> list[int]:
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


def terminate(pids: Sequence[int], what: str, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, wait up to ``timeout`` s, then SIGKILL; raise if anything survives."""
    live = [p for p in dict.fromkeys(pids) if pid_alive(p)]
    for pid in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(p) for p in live):
        time.sleep(0.2)
    stubborn = [p for p in live if pid_alive(p)]
    for pid in stubborn:
        log(f"{what}: pid {pid} ignored SIGTERM for {timeout:.0f} s, sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(pid_alive(p) for p in stubborn):
        time.sleep(0.1)
    left = [p for p in live if pid_alive(p)]
    if left:
        raise ServerError(f"{what}: processes {left} still alive after SIGKILL")


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


def is_root() -> bool:
    return os.geteuid() == 0


def traversable_by_others(path: Path) -> bool:
    """Every existing ancestor (and path itself, if it exists) has o+x."""
    p = path.resolve()
    for d in [p, *p.parents]:
        if not d.exists():
            continue
        if not d.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def ensure_es_user() -> tuple[int, int] | None:
    """(uid, gid) of the unprivileged ES user when we are root, else None (run as us)."""
    if not is_root():
        return None
    try:
        pw = pwd.getpwnam(ES_USER)
    except KeyError:
        log(f"creating system user {ES_USER}")
        cmd = ["useradd", "--system", "--user-group", "--no-create-home"]
        cmd += ["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", ES_USER]
        try:
            run(cmd, cwd=Path("/"), what=f"creating user {ES_USER}", timeout=60)
        except ServerError:
            with contextlib.suppress(KeyError):  # a concurrent useradd won
                pw = pwd.getpwnam(ES_USER)
                return pw.pw_uid, pw.pw_gid
            raise
        pw = pwd.getpwnam(ES_USER)
    return pw.pw_uid, pw.pw_gid


def chown_tree(path: Path, ids: tuple[int, int] | None) -> None:
    if ids is None:
        return
    run(["chown", "-R", f"{ids[0]}:{ids[1]}", str(path)], cwd=Path("/"), what="chown")
