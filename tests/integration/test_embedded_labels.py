"""Issue 5 end to end: the real fluent-logger client sends predictions and, later in event
time, their labels to `logdrift run` with labels enabled; a concept change in one slice is
stored as concept drift naming the slice, and judged label windows are printed."""

from __future__ import annotations

import re
import subprocess
import threading
import time

import pytest

from connectors import label_store
from connectors.store import AnomalyStore
from streams.simulation.demo import send
from streams.simulation.traffic import (
    LabelFlip,
    feedback_records,
    interleave,
    serving_records,
    uniform_delay,
)
from tests.integration.patience import bound

RATE = 100.0
START = 1_795_860_000.0
N, FLIP_AT = 60_000, 20_000
SLICE = "mens_dress_shoes"
BUDGET = 60


class Output:
    """Everything a runner prints, read line by line in a thread (a buffered pipe and select do
    not mix), so the test can wait for a line and then stop the runner."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc, self.lines = proc, []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + bound(timeout)
        while not any(text in line for line in self.lines):
            assert time.monotonic() < deadline, f"no {text!r}:\n{''.join(self.lines[-20:])}"
            time.sleep(0.5)

    def stop(self) -> str:
        self.proc.terminate()
        self.reader.join(timeout=bound(60))
        assert self.proc.wait(timeout=bound(60)) == 0, "".join(self.lines[-20:])
        return "".join(self.lines)


def test_labels_through_the_forward_protocol_catch_a_concept_change_in_one_slice(
    start_runner, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    for key, value in {
        "ENABLED": "true",
        "WINDOW_SECONDS": "120",
        "WAIT_SECONDS": "300",
        "SLICES__KEY": "category",
        "FAIRNESS__GROUPS": '["gender"]',
    }.items():
        monkeypatch.setenv(f"LOGDRIFT_LABELS__{key}", value)
    # Idle this long, the runner judges its open feature windows (not those of labels): the
    # last one's line says every record and label was read, and the test then stops it.
    monkeypatch.setenv("LOGDRIFT_WINDOW__IDLE_CLOSE_SECONDS", "3")
    # The runner queues records for raters itself as the concept-drift incident opens.
    monkeypatch.setenv("LOGDRIFT_LABELLING__QUEUE_ON_INCIDENT", "true")
    monkeypatch.setenv("LOGDRIFT_LABELLING__BUDGET_PER_DAY", str(BUDGET))
    records = list(serving_records(N, rate=RATE, start=START, slices=True))
    flip = LabelFlip(FLIP_AT, share=0.3, key="category", value=SLICE)
    labels = feedback_records(records, delay=uniform_delay(0, 120), flips=[flip])
    runner = start_runner(tmp_path / "anomalies.db")
    output = Output(runner.proc)
    stream = list(interleave(records, labels))
    # Paced: a 3 s socket timeout in fluent-logger must not meet a runner busy with a backlog.
    send(stream, "127.0.0.1", runner.port, realtime=True, rate=2_500)
    output.wait_for("window ctr v3 2026-11-28T10:09:00.000Z..2026-11-28T10:10:00.000Z", 300)
    assert not [line for line in output.lines if "labels ctr v3 2026-11-28T10:08" in line], (
        "the last window of labels waits for its labels (wait_seconds), not for a pause"
    )
    out = output.stop()
    assert "labels ctr v3 2026-11-28T10:08:00.000Z..2026-11-28T10:10:00.000Z" in out  # at stop

    stopped = re.search(r"stopped: ([\d,]+) records, .* ([\d,]+) dead letters", out)
    assert stopped and stopped[1] == f"{N:,}" and stopped[2] == "0", out[-2_000:]
    with AnomalyStore(runner.store) as s:
        found = s.query()
    drift = [a for a in found if a.kind == "concept_drift"]
    assert any(a.slice == {"category": SLICE} for a in drift), [a.line() for a in found]
    assert all(a.slice in ({}, {"category": SLICE}) for a in drift), [a.line() for a in drift]
    assert all(a.timestamp >= START + FLIP_AT / RATE for a in drift)
    assert not [a for a in found if a.kind not in ("concept_drift",)], [a.line() for a in found]
    judged = [line for line in out.splitlines() if " labels ctr v3 " in line]
    assert len(judged) >= 4 and all(" labelled, accuracy " in line for line in judged), out[-2_000:]

    with AnomalyStore(runner.store) as s:
        items, incidents = label_store.queue(s), s.incidents()
    assert 0 < len(items) <= BUDGET, out[-2_000:]
    assert all("concept_drift incident" in i.reason for i in items), {i.reason for i in items}
    in_slice = [i for i in items if f"in slice category={SLICE}" in i.reason]
    assert in_slice and all(i.slice == SLICE for i in in_slice), "the drifted slice's records"
    opened = {i.id: i.opened_window for i in incidents if i.kind == "concept_drift"}
    assert all(any(n in i.reason for n in opened) for i in items)
    assert f"labelling queue: {len(items):,} records queued for raters" in out
