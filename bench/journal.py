"""What acknowledging after durable costs the embedded runner: the Pipeline's throughput with no
journal and with the journal under each fsync policy, for Message mode (fluent-logger: one
record per chunk) and Forward mode (100 records per chunk), side by side; then a checkpoint's
size and time, and how long a restart takes to replay a full journal.

    .venv/bin/python bench/journal.py [--records 20000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.engine import make_baseline, records
from connectors.forward import ForwardEvent
from connectors.journal import FsyncPolicy, Journal
from connectors.store import AnomalyStore
from detectors import engine_state
from detectors.baseline.reference import Baseline
from detectors.engine import Engine, EngineOptions
from detectors.records import FieldMapping
from streams.embedded.durable import Durable
from streams.embedded.runner import Pipeline

OPTIONS = EngineOptions(window_seconds=60, min_count=200)
POLICIES: list[FsyncPolicy | None] = [None, "never", "interval", "always"]


def pipeline(baseline: Baseline, where: Path) -> Pipeline:
    store = AnomalyStore(where / "a.db")
    return Pipeline(Engine([baseline], OPTIONS), store, FieldMapping(), emit=lambda _: None)


def rate(baseline: Baseline, n: int, chunk: int, policy: FsyncPolicy | None) -> float:
    events = [ForwardEvent("serving", 0.0, r) for r in records(n)]
    with tempfile.TemporaryDirectory() as tmp:
        p = pipeline(baseline, Path(tmp))
        durable = None
        if policy is not None:
            durable = Durable(Journal(Path(tmp) / "j", fsync=policy), p, 10_000, 10.0)
            durable.recover()
        began = tick = time.perf_counter()
        for i in range(0, n, chunk):
            p.handle(events[i : i + chunk])
            if durable is not None:
                durable.append()
                if time.perf_counter() - tick >= 1.0:  # the runner's once-a-second tick
                    durable.maybe_checkpoint()
                    tick = time.perf_counter()
        return n / (time.perf_counter() - began)


def restart(baseline: Baseline, n: int) -> tuple[int, float, float, int]:
    """(checkpoint bytes, checkpoint ms, replay s for n journalled records, journal bytes)."""
    events = [ForwardEvent("serving", 0.0, r) for r in records(n)]
    with tempfile.TemporaryDirectory() as tmp:
        p = pipeline(baseline, Path(tmp))
        durable = Durable(Journal(Path(tmp) / "j"), p, 10 * n, 1e9)  # no checkpoint on the way
        durable.recover()
        for i in range(0, n, 100):
            p.handle(events[i : i + 100])
            durable.append()
        journal_bytes = durable.journal.bytes
        durable.close()
        began = time.perf_counter()
        snapshot = engine_state.snapshot(p.engine)
        Journal(Path(tmp) / "c").checkpoint(snapshot)
        checkpoint_ms = (time.perf_counter() - began) * 1e3
        size = (Path(tmp) / "c" / "checkpoint.json").stat().st_size
        again = pipeline(baseline, Path(tmp) / "again")
        began = time.perf_counter()
        Durable(Journal(Path(tmp) / "j"), again, 10 * n, 1e9).recover()
        replay_s = time.perf_counter() - began
        return size, checkpoint_ms, replay_s, journal_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    baseline = make_baseline()
    print(f"Pipeline.handle then journal, {args.records:,} records, records/s:")
    print(f"{'journal':<20}{'1 per chunk':>14}{'100 per chunk':>16}")
    for policy in POLICIES:
        one = rate(baseline, args.records, 1, policy)
        hundred = rate(baseline, args.records, 100, policy)
        name = "none (before)" if policy is None else f"fsync {policy}"
        print(f"{name:<20}{one:>14,.0f}{hundred:>16,.0f}")
    size, ms, replay, journal = restart(baseline, 10_000)
    print(
        f"checkpoint: {size:,} bytes in {ms:.1f} ms; a full journal (10,000 records, the "
        f"default bound): {journal:,} bytes, replayed in {replay:.2f} s"
    )


if __name__ == "__main__":
    main()
