"""Issue 15 part 2 end to end: a concept change in one slice, caught by the real runner, opens an
incident; `logdrift label queue` fills the queue within its budget from that slice; `label export`
creates the tasks in a real Label Studio; three raters (one careless) answer through its API;
`label import` pulls the export back, gives the agreement figures and flags the careless rater;
the resolved labels reach the label monitor as human labels and `label dataset` writes them."""

from __future__ import annotations

import random
import re
from pathlib import Path

import krippendorff
import orjson
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import cohen_kappa_score

from connectors import label_store
from connectors.label_studio import LabelStudio
from connectors.label_studio_format import answer_result
from connectors.store import AnomalyStore
from detectors.labels.monitor import LabelMonitor, LabelOptions
from detectors.records import decode_feedback, decode_record
from streams.simulation.demo import send
from streams.simulation.traffic import (
    LabelFlip,
    feedback_records,
    interleave,
    serving_records,
    uniform_delay,
)
from tests.integration.conftest import logdrift
from tests.integration.labelling.conftest import write_lines
from tests.integration.test_embedded_labels import Output
from tools.label_studio import Running

RATE, START = 100.0, 1_795_860_000.0
N, FLIP_AT = 60_000, 20_000
SLICE = "mens_dress_shoes"
BUDGET = 60
CHOICE = {1.0: "positive", 0.0: "negative"}


@pytest.fixture
def concept_drift_store(start_runner, tmp_path, monkeypatch: pytest.MonkeyPatch):
    """The runner's store after a concept change in one slice, and the logs it was sent."""
    for key, value in {"ENABLED": "true", "WINDOW_SECONDS": "120", "WAIT_SECONDS": "300",
                       "SLICES__KEY": "category"}.items():  # fmt: skip
        monkeypatch.setenv(f"LOGDRIFT_LABELS__{key}", value)
    monkeypatch.setenv("LOGDRIFT_WINDOW__IDLE_CLOSE_SECONDS", "3")
    records = list(serving_records(N, rate=RATE, start=START, slices=True))
    flip = LabelFlip(FLIP_AT, share=0.3, key="category", value=SLICE)
    labels = feedback_records(records, delay=uniform_delay(0, 120), flips=[flip])
    runner = start_runner(tmp_path / "anomalies.db")
    output = Output(runner.proc)
    send(list(interleave(records, labels)), "127.0.0.1", runner.port, realtime=True, rate=2_500)
    output.wait_for("window ctr v3 2026-11-28T10:09:00.000Z..2026-11-28T10:10:00.000Z", 300)
    output.stop()
    logs = write_lines(tmp_path / "serving.jsonl", records)
    feedback = write_lines(tmp_path / "feedback.jsonl", labels)
    return runner.store, logs, feedback, {fb["request_id"]: float(fb["label"]) for fb in labels}


def test_a_concept_change_goes_to_raters_and_comes_back_as_human_labels(
    concept_drift_store, label_studio_server: Running, baseline_dir: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    store, logs, feedback, truth = concept_drift_store
    with AnomalyStore(store) as s:
        incidents = [i for i in s.incidents() if i.kind == "concept_drift"]
    assert any(i.slice == {"category": SLICE} for i in incidents), [i.line() for i in incidents]

    monkeypatch.setenv("LOGDRIFT_LABELLING__BUDGET_PER_DAY", str(BUDGET))
    monkeypatch.setenv("LOGDRIFT_LABELLING__LABEL_STUDIO_URL", label_studio_server.url)
    monkeypatch.setenv("LOGDRIFT_LABELLING__LABEL_STUDIO_TOKEN", label_studio_server.token)
    queued = logdrift("label", "queue", "--logs", logs, "--baseline", baseline_dir,
                      "--store", store, "--feedback", feedback).stdout  # fmt: skip
    assert f"queued {BUDGET} of " in queued, queued
    assert "0 left today" in queued and "category=mens_dress_shoes" in queued, queued
    with AnomalyStore(store) as s:
        items = label_store.queue(s)
    assert len(items) == BUDGET and {i.slice for i in items} == {SLICE}
    assert all(i.ts >= START + FLIP_AT / RATE - 120 for i in items)  # from the change on
    assert all("concept_drift incident" in i.reason for i in items)
    again = logdrift("label", "queue", "--logs", logs, "--store", store).stdout
    assert "queued 0 of " in again, again  # the day's budget is spent

    exported = logdrift("label", "export", "--store", store, "--out", tmp_path / "tasks.json",
                        "--csv", tmp_path / "tasks.csv").stdout  # fmt: skip
    project = int(re.search(r"into Label Studio project (\d+)", exported)[1])  # type: ignore[index]
    assert f"exported {BUDGET} items" in exported
    assert (tmp_path / "tasks.csv").read_text().count("\n") == BUDGET + 1

    posted = rate_tasks(label_studio_server, project, truth)
    imported = logdrift("label", "import", "--store", store, "--project", str(project),
                        "--feedback", feedback, "--batch", "b1",
                        "--feedback-out", tmp_path / "human.jsonl", check=False)  # fmt: skip
    assert imported.returncode == 1, imported.stdout + imported.stderr  # one answer was bad
    assert re.search(r"request \S+: rater rater3@logdrift.test answered 'maybe'", imported.stderr)
    line = next(x for x in imported.stdout.splitlines() if x.startswith("batch b1:"))
    print(queued, imported.stdout, imported.stderr, sep="\n")  # shown with -s: the figures
    assert f"{BUDGET} items, 3 raters" in line, line
    check_figures(line, posted)
    careless = re.findall(r"(rater\d)@logdrift.test \d+ \([^)]*careless\?", line)
    assert careless == ["rater3"], line

    lines = (tmp_path / "human.jsonl").read_bytes().splitlines()
    human = [decode_feedback(orjson.loads(x)) for x in lines]
    assert len(human) >= BUDGET * 0.8 and all(h.source == "human" for h in human)
    assert sum(h.label == truth[h.request_id] for h in human) >= 0.9 * len(human)
    reached_monitor(human, logs)

    logdrift("label", "dataset", "--store", store, "--out", tmp_path / "train.parquet")
    table = pq.read_table(tmp_path / "train.parquet").to_pylist()
    assert {r["request_id"] for r in table} == {h.request_id for h in human}
    assert all(r["source"] == "human" and r["slice"] == SLICE for r in table)
    assert all(0.5 < r["agreement"] <= 1.0 and "feature.price" in r for r in table)
    by_id = {h.request_id: h.label for h in human}
    assert all(r["label"] == by_id[r["request_id"]] for r in table)


def rate_tasks(ls: Running, project: int, truth: dict[str, float]) -> dict[str, dict[str, str]]:
    """Three raters answer every task through Label Studio's API: two careful (95% right), one
    clicking at random; the careless one also sends one answer outside the label set."""
    rng = random.Random(15)
    admin = LabelStudio(ls.url, ls.token)
    tasks = admin.tasks(project)
    posted: dict[str, dict[str, str]] = {}
    for n, user in enumerate(ls.users[1:], start=1):
        client = LabelStudio(ls.url, user.token)
        for k, task in enumerate(tasks):
            rid = task["data"]["request_id"]
            right = CHOICE[truth[rid]]
            if n < 3:
                choice = right if rng.random() < 0.95 else CHOICE[1.0 - truth[rid]]
            else:
                choice = "maybe" if k == 0 else rng.choice(list(CHOICE.values()))
            client.annotate(task["id"], answer_result(choice))
            if choice != "maybe":
                posted.setdefault(rid, {})[f"rater{n}"] = choice
    return posted


def check_figures(line: str, posted: dict[str, dict[str, str]]) -> None:
    """The printed kappa and alpha against scikit-learn and the krippendorff package."""
    both = [r for r, a in posted.items() if "rater1" in a and "rater2" in a]
    kappa = cohen_kappa_score(
        [posted[r]["rater1"] for r in both], [posted[r]["rater2"] for r in both]
    )
    pair = re.search(r"rater1@logdrift.test/rater2@logdrift.test (-?[\d.]+)", line)
    assert pair and float(pair[1]) == pytest.approx(kappa, abs=5e-4), line
    code = {"positive": 1, "negative": 0}
    data = [[code[posted[r][f"rater{n}"]] if f"rater{n}" in posted[r] else float("nan")
             for r in posted] for n in (1, 2, 3)]  # fmt: skip
    alpha = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    found = re.search(r"alpha (-?[\d.]+)", line)
    assert found and float(found[1]) == pytest.approx(alpha, abs=5e-4), line


def reached_monitor(human: list, logs: Path) -> None:
    """The human labels join their predictions in the label monitor, counted as human. They
    come days after the predictions (the raters' time): horizon and wait cover that here."""
    ids = {h.request_id for h in human}
    monitor = LabelMonitor(LabelOptions(horizon=1e10, wait_seconds=1e10, slice_key="category"))
    for line in logs.read_bytes().splitlines():
        r = decode_record(orjson.loads(line))
        if r.request_id in ids:
            slice_ = monitor.slice_label(r.slice.get("category"))
            monitor.observe((r.model, r.version), r.request_id, r.ts, r.prediction, slice_, ())
    for h in human:
        monitor.feedback(h)
    assert monitor.pending.stats.joined == len(human)
    assert monitor.stats.human_labels == len(human)
    reports = monitor.close_until(float("inf")).reports
    assert sum(r.metrics.get("labelled", 0) for r in reports) == len(human)
