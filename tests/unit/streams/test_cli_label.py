"""`logdrift label ...` on files, no server: low coverage in a slice queues records from it;
export writes Label Studio JSON and CSV; import of a file with bad tasks names each and keeps
the rest (exit 1); dataset writes CSV; feedback-out marks the labels human."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from connectors import label_store
from connectors.label_studio_format import answer_result
from connectors.store import AnomalyStore
from streams.cli.main import main
from streams.simulation.traffic import serving_records

LOW, FULL = "mens_dress_shoes", "womens_boots"


def write_logs(tmp_path: Path) -> tuple[Path, Path, dict[str, float]]:
    """Two slices: one fully labelled by feedback, the other 1% labelled."""
    records = []
    for k, r in enumerate(serving_records(2_000, rate=100.0, start=0.0, seed=5)):
        r["slice"] = {"category": LOW if k % 2 else FULL}
        records.append(r)
    feedback = {
        r["request_id"]: float(k % 3 == 0)
        for k, r in enumerate(records)
        if r["slice"]["category"] == FULL or k % 200 == 1
    }
    logs = tmp_path / "serving.jsonl"
    logs.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records) + b"{broken\n")
    fb = tmp_path / "feedback.jsonl"
    fb.write_bytes(
        b"".join(
            orjson.dumps({"ts": 1.0, "request_id": k, "label": v}) + b"\n"
            for k, v in feedback.items()
        )
    )
    return logs, fb, feedback


@pytest.fixture
def logs_and_feedback(tmp_path: Path) -> tuple[Path, Path, dict[str, float]]:
    return write_logs(tmp_path)


def invoke(*args: str | Path) -> tuple[int, str, str]:
    done = CliRunner().invoke(main, [str(a) for a in args])
    return done.exit_code, done.stdout, done.stderr


def test_the_loop_on_files(
    tmp_path: Path,
    logs_and_feedback: tuple[Path, Path, dict[str, float]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logs, fb, _ = logs_and_feedback
    store = tmp_path / "s.db"
    monkeypatch.setenv("LOGDRIFT_LABELS__SLICES__KEY", "category")
    code, out, err = invoke(
        "label", "queue", "--logs", logs, "--store", store, "--feedback", fb, "--budget", "12"
    )
    assert code == 0, out + err
    assert f"label coverage 1.0% < 5.0% in slice {LOW}" in out
    assert "queued 12 of 1,000 candidate records" in out and "1 bad lines" in out
    assert f"{logs} line 2001: invalid JSON" in err  # the bad line, named

    code, out, err = invoke(
        "label",
        "export",
        "--store",
        store,
        "--out",
        tmp_path / "t.json",
        "--csv",
        tmp_path / "t.csv",
    )
    assert code == 0 and "exported 12 items" in out, out + err
    tasks = orjson.loads((tmp_path / "t.json").read_bytes())
    assert len(tasks) == 12 and {t["meta"]["slice"] for t in tasks} == {LOW}
    assert len(list(csv.DictReader((tmp_path / "t.csv").open()))) == 12

    export = []
    for n, t in enumerate(tasks):
        answers = ["positive", "positive", "negative" if n % 4 else "positive"]
        if n == 0:
            answers[2] = "[maybe]"  # outside the label set (and markup to a terminal)
        t["id"] = 100 + n
        t["annotations"] = [
            {"completed_by": {"email": f"r{k}@x"}, "result": answer_result(a)}
            for k, a in enumerate(answers)
        ]
        export.append(t)
    export.append({"id": 999, "data": {"request_id": "nobody"}, "annotations": []})
    (tmp_path / "export.json").write_bytes(orjson.dumps(export))
    code, out, err = invoke(
        "label",
        "import",
        "--store",
        store,
        "--file",
        tmp_path / "export.json",
        "--batch",
        "b1",
        "--feedback-out",
        tmp_path / "human.jsonl",
    )
    assert code == 1, out + err  # imported, with items in error
    assert "task #0 (id 100) request" in err and "answered '[maybe]'" in err
    assert "task #12 (id 999): unknown task: request id 'nobody'" in err
    assert "batch b1: 12 items, 3 raters" in out
    human = [orjson.loads(x) for x in (tmp_path / "human.jsonl").read_bytes().splitlines()]
    assert len(human) == 12 and all(
        h["label_source"] == "human" and h["label"] == 1.0 for h in human
    )
    with AnomalyStore(store) as s:
        assert {i.state for i in label_store.queue(s)} == {"labelled"}

    code, out, err = invoke("label", "dataset", "--store", store, "--out", tmp_path / "d.csv")
    assert code == 0 and "wrote 12 labelled examples" in out, out + err
    rows = list(csv.DictReader((tmp_path / "d.csv").open()))
    assert {r["source"] for r in rows} == {"human"} and {r["label"] for r in rows} == {"1.0"}
    assert {r["agreement"] for r in rows} <= {"1.0", "0.6666666666666666"}


def test_a_malformed_export_file_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    bad = tmp_path / "export.json"
    bad.write_text("[{")
    code, out, err = invoke("label", "import", "--store", tmp_path / "s.db", "--file", bad)
    assert code == 1 and "export: not JSON" in err, out + err
    assert "batch " in out and ": 0 items" in out


def test_export_needs_somewhere_to_go(tmp_path: Path) -> None:
    code, _, err = invoke("label", "export", "--store", tmp_path / "s.db")
    assert code == 2 and "--out FILE, --csv FILE or --label-studio URL" in err
