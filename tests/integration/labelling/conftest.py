"""A real Label Studio per session (tools/label_studio.py): installed from PyPI into its own
cached virtual environment, started on loopback with its SQLite default, an admin and three
raters made with its own ``init`` command. Missing or unhealthy is a failure, never a skip."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools import label_studio


@pytest.fixture(scope="session")
def label_studio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[label_studio.Running]:
    before = os.environ.get("LOGDRIFT_RUN_DIR")
    os.environ["LOGDRIFT_RUN_DIR"] = str(tmp_path_factory.mktemp("servers"))
    try:
        running = label_studio.start()
        yield running
    finally:
        label_studio.stop()
        if before is None:
            os.environ.pop("LOGDRIFT_RUN_DIR", None)
        else:
            os.environ["LOGDRIFT_RUN_DIR"] = before


def write_lines(path: Path, rows: list[dict[str, object]]) -> Path:
    import orjson

    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path
