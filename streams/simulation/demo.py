"""``logdrift simulate`` and ``logdrift demo``: realistic traffic through the real fluent-logger
client, and the whole loop from nothing — training data, baseline, embedded runner, traffic
with changes injected partway, and a verdict on what was caught."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from connectors.baseline_files import load_baseline
from connectors.files import write_csv
from connectors.fluent import FluentClient
from connectors.forward_server import ForwardServer
from connectors.store import AnomalyStore
from detectors.anomaly import Anomaly, iso
from detectors.baseline.infer import BaselineOptions
from detectors.engine import Engine, EngineOptions
from detectors.incidents.tracker import Incident
from detectors.records import FieldMapping, parse_ts
from streams.embedded.runner import EmbeddedRunner, Pipeline
from streams.offline import build_baseline
from streams.simulation.traffic import SCENARIOS, Injection, serving_records, training_rows

DEMO_PLAN = (
    ("mean_shift", 0.30),
    ("category_surge", 0.45),
    ("new_category", 0.60),
    ("schema_break", 0.70),
    ("missing_surge", 0.80),
)


def send(
    records: Iterable[dict[str, Any]],
    host: str,
    port: int,
    *,
    realtime: bool,
    rate: float,
    tag: str = "serving",
) -> int:
    """Emit records through fluent-logger; with ``realtime`` pace them at ``rate`` per second."""
    sent = 0
    began = time.monotonic()
    with FluentClient(host, port) as client:
        for record in records:
            if realtime:
                delay = began + sent / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            client.emit(tag, record, parse_ts(record["ts"]))
            sent += 1
    return sent


@dataclass(frozen=True, slots=True)
class Verdict:
    scenario: str
    feature: str
    injected_at: float
    first: Anomaly | None
    delay_events: int | None
    anomalies: int = 0  # on its feature, at or after it: the evidence
    incidents: int = 0  # opened on its feature at or after it: the pages


def judge(
    anomalies: list[Anomaly],
    injections: list[Injection],
    start: float,
    rate: float,
    incidents: Sequence[Incident] = (),
) -> tuple[list[Verdict], list[Anomaly]]:
    """For each injection, the first anomaly on its feature at or after it, with how many
    anomalies and incidents it made; and every anomaly on a feature nothing was injected into
    (false alarms)."""
    verdicts = []
    for inj in injections:
        feature = SCENARIOS[inj.scenario].feature
        at = start + inj.at / rate
        hits = sorted(
            (a for a in anomalies if a.feature == feature and a.timestamp >= at),
            key=lambda a: a.timestamp,
        )
        first = hits[0] if hits else None
        delay = None if first is None else max(0, round((first.timestamp - at) * rate))
        opened = sum(i.feature == feature and i.opened_at >= at for i in incidents)
        verdicts.append(Verdict(inj.scenario, feature, at, first, delay, len(hits), opened))
    changed = {SCENARIOS[i.scenario].feature for i in injections}
    return verdicts, [a for a in anomalies if a.feature not in changed]


def verdict_lines(verdicts: list[Verdict]) -> list[str]:
    lines = []
    for v in verdicts:
        when = iso(v.injected_at)[11:19]
        head = f"{v.scenario:15} {v.feature:8} injected {when}"
        if v.first is None:
            lines.append(f"  MISSED  {head}: no anomaly on {v.feature} after it")
        else:
            lines.append(
                f"  caught  {head}: {v.first.kind} ({v.first.detector}) "
                f"{v.delay_events:,} events later; {v.anomalies} anomalies, "
                f"{v.incidents} incident{'s' if v.incidents != 1 else ''}"
            )
    return lines


DEMO_FILES = ("training.csv", "logdrift.db", "logdrift.db-wal", "logdrift.db-shm")


def _fresh(workdir: Path) -> None:
    """A rerun starts from nothing: the last run's store would count its anomalies again. Only
    the demo's own files go; the baseline is rebuilt over its old self."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in DEMO_FILES:
        (workdir / name).unlink(missing_ok=True)


async def _run_demo(workdir: Path, events: int, rate: float, console: Console) -> bool:
    console.print(f"Files go to {workdir}/ and stay there (--dir to choose another place).")
    console.print(f"[bold]1/4[/bold] training data: 30,000 rows -> {workdir / 'training.csv'}")
    write_csv(workdir / "training.csv", training_rows(30_000, seed=7))
    console.print("[bold]2/4[/bold] baseline: schema + profile + calibrated detectors")
    build_baseline(
        workdir / "training.csv",
        workdir / "baseline",
        BaselineOptions(),
        "ctr",
        show_progress=False,
    )
    baseline = load_baseline(workdir / "baseline")
    store = AnomalyStore(workdir / "logdrift.db")
    pipeline = Pipeline(
        Engine([baseline], EngineOptions(60.0, 200)),
        store,
        FieldMapping(),
        emit=lambda line: console.print(line, highlight=False, soft_wrap=True),
    )
    runner = EmbeddedRunner(pipeline, lambda h: ForwardServer(h, "127.0.0.1", 0), 5.0)
    ports: list[int] = []
    listening = asyncio.Event()

    def ready(port: int) -> None:
        ports.append(port)
        listening.set()

    serving = asyncio.create_task(runner.run(ready=ready))
    await listening.wait()
    start = float(int(time.time()) - int(events / rate))
    injections = [Injection(name, int(events * f)) for name, f in DEMO_PLAN]
    console.print(
        f"[bold]3/4[/bold] sending {events:,} records through fluent-logger to "
        f"127.0.0.1:{ports[0]} ({events / rate / 60:.0f} minutes of event time); "
        "changes: " + ", ".join(f"{i.scenario} at record {i.at:,}" for i in injections)
    )
    records = serving_records(events, rate=rate, start=start, injections=injections)
    await asyncio.to_thread(send, records, "127.0.0.1", ports[0], realtime=False, rate=rate)
    await asyncio.sleep(0.5)
    runner.request_stop()
    await serving
    found = store.query()
    incidents = store.incidents()
    store.close()
    verdicts, false_alarms = judge(found, injections, start, rate, incidents)
    console.print("[bold]4/4[/bold] verdict")
    for line in verdict_lines(verdicts):
        console.print(line, highlight=False)
    console.print(
        f"{len(found)} anomalies (evidence) in {len(incidents)} incidents (pages) for "
        f"{len(injections)} changes; `logdrift incidents --store {workdir / 'logdrift.db'}`",
        highlight=False,
    )
    quiet = sorted(
        {"price", "age", "score", "country", "device", "is_returning", "prediction"}
        - {v.feature for v in verdicts}
    )
    if false_alarms:
        console.print(f"[red]{len(false_alarms)} anomalies on unchanged features:[/red]")
        for a in false_alarms:
            console.print("  " + a.line(), highlight=False)
    else:
        console.print(f"No anomaly on the unchanged features: {', '.join(quiet)}.")
    console.print(
        f"Store: {workdir / 'logdrift.db'} ({len(found)} anomalies; "
        f"`logdrift anomalies --store {workdir / 'logdrift.db'}` lists them)"
    )
    console.print(
        f"Charts: `logdrift report --baseline {workdir / 'baseline'} --store "
        f"{workdir / 'logdrift.db'} --out {workdir / 'report.html'}`"
    )
    return all(v.first is not None for v in verdicts) and not false_alarms


def run_demo(
    workdir: Path, events: int = 60_000, rate: float = 100.0, console: Console | None = None
) -> bool:
    workdir = workdir.resolve()  # the commands it prints work from any directory
    _fresh(workdir)
    return asyncio.run(_run_demo(workdir, events, rate, console or Console(soft_wrap=True)))
