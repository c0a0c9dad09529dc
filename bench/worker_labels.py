"""The worker with its label path on beside the same worker with it off, on the same records:
what joining delayed labels costs per prediction, and the memory a pending prediction takes.

    .venv/bin/python bench/worker_labels.py [--events 200000] [--partitions 4]

Starts (or reuses) the test broker as bench/worker.py does, fills serving-logs with ``--events``
synthetic predictions and feedback with one label for each (ten minutes of event time later,
keyed and partitioned alike), then runs `logdrift worker`:

1. labels off, timed from its first record to its last (stage one and two only);
2. labels on, timed until every label has joined (both topics read by the join, predictions
   and labels judged), with the worker's RSS when every prediction is pending and at the end;
3. labels on, predictions only: the RSS with half and with all ``--events`` predictions
   pending; the difference over the predictions between is the memory one pending takes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("LOGDRIFT_RUN_DIR", str(REPO / ".servers" / "kafka-bench"))

from bench.worker import START, fill, make_baseline, messages, rss_kib  # noqa: E402
from detectors.anomaly import iso  # noqa: E402
from tools.servers import start_kafka  # noqa: E402

RATE = 100.0
LABEL_DELAY = 600.0
LABELS_ON = {
    "LOGDRIFT_LABELS__ENABLED": "true",
    "LOGDRIFT_LABELS__SLICES__KEY": "category",
    "LOGDRIFT_LABELS__FAIRNESS__GROUPS": '["gender"]',
}


def feedback(events: int) -> Iterator[tuple[bytes, bytes]]:
    """One label per prediction of ``messages(events)``, same key, LABEL_DELAY later."""
    for i in range(events):
        key = f"r-{i:x}"
        ts = iso(START + i / RATE + LABEL_DELAY)
        yield key.encode(), orjson.dumps({"ts": ts, "request_id": key, "label": i % 3 == 0})


def last(log: Path, pattern: str) -> int:
    found = re.findall(pattern, log.read_text(errors="replace"))
    return int(found[-1]) if found else -1


def run(
    url: str,
    app_id: str,
    baseline: Path,
    log: Path,
    env: dict[str, str],
    marks: list[Callable[[], bool]],
) -> tuple[float, list[int]]:
    """Seconds from the worker's first record to the last of ``marks``, and its RSS (KiB) as
    each mark was reached."""
    cmd = [sys.executable, "-m", "streams", "worker", "--baseline", str(baseline)]
    cmd += ["--brokers", url, "--app-id", app_id, "--topic-prefix", f"{app_id}-"]
    env = {**os.environ, "LOGDRIFT_KAFKA__STATS_LOG_SECONDS": "0.5", **env}
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT, env=env)
    began, rss = 0.0, []
    try:
        while True:
            time.sleep(0.25)
            if proc.poll() is not None:
                raise SystemExit(f"worker exited:\n{log.read_text()[-6000:]}")
            if not began and last(log, r"counters: records=(\d+)") > 0:
                began = time.perf_counter()
            while began and len(rss) < len(marks) and marks[len(rss)]():
                rss.append(rss_kib(proc.pid))
            if len(rss) == len(marks):
                return time.perf_counter() - began, rss
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    n = args.events
    info = start_kafka(partitions=4)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, broker on the same machine")
    rows = []
    with tempfile.TemporaryDirectory(prefix="logdrift-bench-") as tmp:
        work = Path(tmp)
        baseline = make_baseline(work)
        runs = [("labels off", {}, False), ("labels on", LABELS_ON, True)]
        runs += [("labels on, no label sent", LABELS_ON, False)]
        for name, env, with_labels in runs:
            app_id = f"bench{uuid.uuid4().hex[:8]}"
            asyncio.run(fill(info.url, f"{app_id}-serving-logs", messages(n), args.partitions))
            asyncio.run(fill(info.url, f"{app_id}-feedback", feedback(n if with_labels else 0), 4))
            log = work / f"{app_id}.log"
            seconds, rss = run(
                info.url, app_id, baseline, log, env, marks(log, n, env, with_labels)
            )
            rows.append((name, seconds, rss))
    print(f"{'worker':28} {'predictions/s':>14} {'records/s':>10} {'RSS MiB':>8}")
    for name, seconds, rss in rows:
        records = 2 * n if name == "labels on" else n
        print(f"{name:28} {n / seconds:>14,.0f} {records / seconds:>10,.0f} {rss[-1] / 1024:>8.1f}")
    half, full = rows[2][2]
    print(
        f"pending predictions: RSS {half / 1024:.1f} MiB at {n // 2:,}, {full / 1024:.1f} MiB at "
        f"{n:,}: {(full - half) * 1024 / (n - n // 2):,.0f} bytes per pending prediction"
    )


def marks(log: Path, n: int, env: dict[str, str], labels: bool) -> list[Callable[[], bool]]:
    """When a run is done: every record profiled, and every label joined or every prediction
    pending (halfway too, for the memory slope)."""

    def profiled() -> bool:
        return last(log, r"counters: records=(\d+)") >= n

    def pending(k: int) -> Callable[[], bool]:
        return lambda: profiled() and last(log, r"label join: pending=(\d+)") >= k

    if not env:
        return [profiled]
    if labels:
        return [lambda: profiled() and last(log, r"label join: .* joined=(\d+)") >= n]
    return [lambda: last(log, r"label join: pending=(\d+)") >= n // 2, pending(n)]


if __name__ == "__main__":
    main()
