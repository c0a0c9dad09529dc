"""Label Studio's formats: tasks carry data and meta (model, slice, reason, request id); an
export is read task by task, and a malformed export, an unknown task or an answer outside the
label set gives an error naming the item while the rest is kept."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from connectors.label_studio_format import (
    answer_result,
    label_config,
    parse_export,
    tasks_csv,
    tasks_json,
)
from detectors.labels.queue import QueueItem

CHOICES = ["positive", "negative"]


def item(rid: str) -> QueueItem:
    return QueueItem(
        rid, "ctr", "3", 60.0, "shoes", 0.9, "far", "concept_drift incident x; far from training",
        {"price": 12.5, "device": "ios"}, 0.7,
    )  # fmt: skip


def exported(rid: str, answers: list[tuple[Any, str]], task_id: int = 1) -> dict[str, Any]:
    return {
        "id": task_id,
        "data": {"request_id": rid, "model": "ctr"},
        "annotations": [{"completed_by": who, "result": answer_result(c)} for who, c in answers],
    }


def test_a_task_carries_the_record_and_who_and_why() -> None:
    [t] = orjson.loads(tasks_json([item("r1")]))
    for part in (t["data"], t["meta"]):
        assert {k: part[k] for k in ("request_id", "model", "slice")} == {
            "request_id": "r1", "model": "ctr", "slice": "shoes",
        }  # fmt: skip
        assert part["reason"].startswith("concept_drift incident x")
    assert "price=12.5" in t["data"]["text"] and t["data"]["features"]["device"] == "ios"
    [row] = list(csv.DictReader(io.StringIO(tasks_csv([item("r1")]))))
    assert row["request_id"] == "r1" and row["band"] == "far"
    assert orjson.loads(row["features"]) == {"price": 12.5, "device": "ios"}
    assert '<Choice value="positive"/>' in label_config(CHOICES)


def test_every_raters_answer_is_read_named_by_email_or_user_id() -> None:
    raw = orjson.dumps(
        [
            exported("r1", [(1, "positive"), ({"email": "b@x"}, "positive"), (3, "negative")]),
            exported("r2", [(1, "negative")], task_id=2),
        ]
    )
    parsed = parse_export(raw, CHOICES, {"r1": 1, "r2": 1}, {1: "a@x"})
    assert parsed.errors == []
    assert parsed.answers == {
        "r1": {"a@x": "positive", "b@x": "positive", "user 3": "negative"},
        "r2": {"a@x": "negative"},
    }
    assert parsed.task_ids == {"r1": 1, "r2": 2}


def test_a_malformed_export_is_named() -> None:
    assert parse_export(b"{not json", CHOICES, {}).errors[0].startswith("export: not JSON")
    assert "expected a list of tasks" in parse_export(b'{"a": 1}', CHOICES, {}).errors[0]


def test_bad_tasks_are_named_and_the_rest_is_kept() -> None:
    tasks = [
        exported("r1", [(1, "positive"), (2, "positive")], task_id=10),
        "not a task",
        {"id": 12, "data": {}},  # no request id: not ours
        exported("ghost", [(1, "positive")], task_id=13),  # unknown task
        exported("r2", [(1, "maybe"), (2, "negative")], task_id=14),  # outside the label set
        {"id": 15, "data": {"request_id": "r3"}, "annotations": [{"result": []}]},  # whose?
        exported("r1", [(3, "negative")], task_id=16),  # the same record twice
    ]
    parsed = parse_export(orjson.dumps(tasks), CHOICES, {"r1": 1, "r2": 1, "r3": 1}, {})
    assert parsed.answers == {"r1": {"user 1": "positive", "user 2": "positive"},
                              "r2": {"user 2": "negative"}}  # fmt: skip
    errors = "\n".join(parsed.errors)
    assert "task #1: expected an object" in errors
    assert "task #2 (id 12): data.request_id missing" in errors
    assert (
        "task #3 (id 13): unknown task: request id 'ghost' is not in the labelling queue" in errors
    )
    assert "task #4 (id 14) request r2: rater user 1 answered 'maybe', not one of" in errors
    assert "task #5 (id 15) request r3 annotation #0: completed_by missing" in errors
    assert "task #6 (id 16): request id 'r1' is in the export twice (also task 10)" in errors
    assert len(parsed.errors) == 6


def test_cancelled_or_empty_annotations_are_no_answer_not_an_error() -> None:
    task = exported("r1", [(1, "positive")])
    task["annotations"] += [
        {"completed_by": 2, "was_cancelled": True, "result": []},
        {"completed_by": 3, "result": []},
    ]
    parsed = parse_export([task], CHOICES, {"r1": 1})
    assert parsed.errors == [] and parsed.answers == {"r1": {"user 1": "positive"}}
