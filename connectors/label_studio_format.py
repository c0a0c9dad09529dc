"""Label Studio's formats: the tasks we hand it (import JSON, and CSV beside it) and its JSON export
of the raters' answers, read back one task at a time so one bad task never costs the rest.

A task carries the record in ``data`` (a readable ``text``, the features, the prediction) and who
and why in ``meta`` and ``data`` both (model, slice, reason, request id): ``meta`` is what the
import format documents, ``data`` what every export keeps.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import quoteattr

import orjson

from detectors.labels.queue import QueueItem

FROM_NAME = "label"  # the Choices control's name in the labelling config


def label_config(choices: Sequence[str]) -> str:
    """The project's labelling interface: the record as text, one single choice."""
    options = "".join(f"<Choice value={quoteattr(c)}/>" for c in choices)
    return (
        '<View><Header value="$reason"/><Text name="record" value="$text"/>'
        f'<Choices name="{FROM_NAME}" toName="record" choice="single" showInline="true">'
        f"{options}</Choices></View>"
    )


def task(item: QueueItem) -> dict[str, Any]:
    who = {
        "request_id": item.request_id,
        "model": item.model,
        "slice": item.slice or "",
        "reason": item.reason,
    }
    shown = ", ".join(f"{k}={v}" for k, v in sorted(item.features.items()))
    prediction = "" if item.prediction is None else f"; model said {item.prediction:.3f}"
    data: dict[str, Any] = {**who, "text": shown + prediction, "features": item.features}
    data["prediction"] = item.prediction
    return {"data": data, "meta": who}


def tasks_json(items: Sequence[QueueItem]) -> bytes:
    return orjson.dumps([task(i) for i in items], option=orjson.OPT_INDENT_2)


def tasks_csv(items: Sequence[QueueItem]) -> str:
    out = io.StringIO()
    columns = ["request_id", "model", "version", "slice", "reason", "band", "distance"]
    writer = csv.writer(out)
    writer.writerow([*columns, "prediction", "features"])
    for i in items:
        row = [getattr(i, c) for c in columns]
        writer.writerow([*row, i.prediction, orjson.dumps(i.features).decode()])
    return out.getvalue()


@dataclass(slots=True)
class ParsedExport:
    """Per request id, each rater's choice; and every problem, naming its task."""

    answers: dict[str, dict[str, str]] = field(default_factory=dict)
    task_ids: dict[str, int] = field(default_factory=dict)  # request id -> task id
    errors: list[str] = field(default_factory=list)


def parse_export(
    raw: bytes | Sequence[Any],
    choices: Sequence[str],
    known: Mapping[str, object],
    raters: Mapping[int, str] | None = None,
) -> ParsedExport:
    """Read a Label Studio JSON export (bytes, or the list the API returned). ``known``: the
    queue's request ids; ``raters``: user id -> name (their e-mail) where the API told us."""
    out = ParsedExport()
    if isinstance(raw, bytes | bytearray):
        try:
            tasks = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            out.errors.append(f"export: not JSON ({exc})")
            return out
    else:
        tasks = raw
    if not isinstance(tasks, list):
        out.errors.append(f"export: expected a list of tasks, got {type(tasks).__name__}")
        return out
    for n, t in enumerate(tasks):
        where = f"task #{n}" + (f" (id {t['id']})" if isinstance(t, dict) and "id" in t else "")
        try:
            _task(t, where, set(choices), known, raters or {}, out)
        except _Bad as exc:
            out.errors.append(f"{where}: {exc}")
    return out


class _Bad(ValueError):
    pass


def _task(
    t: object,
    where: str,
    choices: set[str],
    known: Mapping[str, object],
    raters: Mapping[int, str],
    out: ParsedExport,
) -> None:
    if not isinstance(t, dict):
        raise _Bad(f"expected an object, got {type(t).__name__}")
    data = t.get("data")
    rid = data.get("request_id") if isinstance(data, dict) else None
    if not isinstance(rid, str):
        raise _Bad("data.request_id missing: not a task logdrift exported")
    if rid not in known:
        raise _Bad(f"unknown task: request id {rid!r} is not in the labelling queue")
    if rid in out.task_ids or rid in out.answers:
        raise _Bad(f"request id {rid!r} is in the export twice (also task {out.task_ids.get(rid)})")
    if isinstance(t.get("id"), int):
        out.task_ids[rid] = t["id"]
    annotations = t.get("annotations", [])
    if not isinstance(annotations, list):
        raise _Bad("annotations: expected a list")
    by_rater = out.answers.setdefault(rid, {})
    for k, a in enumerate(annotations):
        try:
            rater, choice = _answer(a, raters)
        except _Bad as exc:
            out.errors.append(f"{where} request {rid} annotation #{k}: {exc}")
            continue
        if choice is None:
            continue  # skipped or cancelled: no answer, not an error
        if choice not in choices:
            out.errors.append(
                f"{where} request {rid}: rater {rater} answered {choice!r}, "
                f"not one of {', '.join(sorted(choices))}"
            )
            continue
        by_rater[rater] = choice
    if not by_rater:
        del out.answers[rid]


def _answer(a: object, raters: Mapping[int, str]) -> tuple[str, str | None]:
    if not isinstance(a, dict):
        raise _Bad(f"expected an object, got {type(a).__name__}")
    who = a.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    if isinstance(who, int):
        rater = raters.get(who, f"user {who}")
    elif isinstance(who, str) and who:
        rater = who
    else:
        raise _Bad("completed_by missing: whose answer is it?")
    if a.get("was_cancelled"):
        return rater, None
    result = a.get("result")
    if not isinstance(result, list):
        raise _Bad(f"rater {rater}: result: expected a list")
    for r in result:
        if isinstance(r, dict) and r.get("from_name") == FROM_NAME:
            picked = (r.get("value") or {}).get("choices")
            if not isinstance(picked, list) or len(picked) != 1 or not isinstance(picked[0], str):
                raise _Bad(f"rater {rater}: expected exactly one choice, got {picked!r}")
            return rater, picked[0]
    return rater, None


def answer_result(choice: str) -> list[dict[str, Any]]:
    """An annotation's ``result`` choosing ``choice``: what a rater's click posts."""
    value = {"choices": [choice]}
    return [{"from_name": FROM_NAME, "to_name": "record", "type": "choices", "value": value}]
