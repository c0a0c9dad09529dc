"""Serving records: from whatever JSON a serving app logged to a typed record, or a clear reason
why not (that reason goes with the record to the dead letters).

>>> r = decode_record({"ts": "2026-11-28T10:00:00.5Z", "model": "ctr", "features": {"x": 1}})
>>> r.ts, r.model, r.version, r.features
(1795860000.5, 'ctr', '', {'x': 1})
>>> try:
...     decode_record({"model": "ctr", "features": [1]})
... except DecodeError as exc:
...     print(exc)
field 'features': expected an object, got list
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime


class DecodeError(ValueError):
    """A record logdrift cannot use; the message names the field at fault."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"field {field_name!r}: {problem}")
        self.field = field_name
        self.problem = problem


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """Where each part of a serving record lives; dotted paths reach into nested objects."""

    ts: str = "ts"
    request_id: str = "request_id"
    model: str = "model"
    model_version: str = "model_version"
    features: str = "features"
    prediction: str = "prediction"
    slice: str = "slice"
    label: str = "label"  # feedback records: a label and a request id, and no features


@dataclass(frozen=True, slots=True)
class ServingRecord:
    ts: float
    model: str
    version: str
    features: dict[str, object]
    prediction: object = None
    request_id: str | None = None
    slice: dict[str, str] = field(default_factory=dict)


_ABSENT = object()
LABEL_SOURCE = "label_source"  # a feedback record's field: "human" for raters' resolved labels


def _lookup(obj: dict[str, object], path: str) -> object:
    current: object = obj
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return _ABSENT
        current = current[part]
    return current


def field_at(obj: dict[str, object], path: str) -> object | None:
    """The value at a dotted path of the mapping ("meta.request_id"); None when absent.

    >>> field_at({"meta": {"request_id": "a1"}}, "meta.request_id")
    'a1'
    """
    found = _lookup(obj, path)
    return None if found is _ABSENT else found


def with_field(obj: dict[str, object], path: str, value: object) -> dict[str, object]:
    """A copy of ``obj`` with ``value`` at a dotted path, the objects on the way copied too.

    >>> with_field({"meta": {"a": 1}}, "meta.ts", 5.0)
    {'meta': {'a': 1, 'ts': 5.0}}
    """
    head, _, rest = path.partition(".")
    if not rest:
        return {**obj, head: value}
    inner = obj.get(head)
    return {**obj, head: with_field(inner if isinstance(inner, dict) else {}, rest, value)}


def type_name(value: object) -> str:
    """A JSON-ish type name for messages: never the value itself, which may be sensitive."""
    names = {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


# Timestamps a date can hold: 1970-01-01 up to the end of year 9999.
LATEST_TS = 253_402_300_799.0


def parse_ts(value: object) -> float:
    """Epoch seconds from ISO-8601 text or a number (seconds, or milliseconds past year 5138)."""
    ts = _ts_of(value)
    if not 0 <= ts <= LATEST_TS:
        raise ValueError("timestamp outside 1970..9999")
    return ts


def _ts_of(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, int | float):
        try:
            ts = float(value)
        except OverflowError:
            raise ValueError("timestamp is out of range") from None
        if not math.isfinite(ts):
            raise ValueError("timestamp is not finite")
        return ts / 1000 if ts > 1e11 else ts
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("not an ISO-8601 timestamp") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    raise ValueError(f"expected ISO-8601 text or epoch seconds, got {type_name(value)}")


MAX_TEXT_CHARS = 1_024  # a category value or column name longer than this is kept as head + digest


def bounded_text(text: str) -> str:
    """A category value or column name as windows, state and anomalies hold it: a longer one
    becomes its head and a digest, so distinct values stay distinct and nothing grows with a
    value's length (a 900 KB "category" would otherwise outgrow Kafka's messages).

    >>> len(bounded_text("x" * 5_000)), bounded_text("x" * 5_000)[-18:]
    (1024, '…#77831c42f099d1a1')
    """
    if len(text) <= MAX_TEXT_CHARS:
        return text
    digest = hashlib.blake2b(text.encode(errors="surrogatepass"), digest_size=8).hexdigest()
    return f"{text[: MAX_TEXT_CHARS - 18]}…#{digest}"


MAX_ID_CHARS = 256  # a model, version or request id longer than this is not one


def _text(raw: dict[str, object], path: str, default: str | None) -> str | None:
    value = _lookup(raw, path)
    if value is _ABSENT or value is None:
        return default
    if isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value)
        if len(text) > MAX_ID_CHARS:
            raise DecodeError(path, f"{len(text):,} characters, over {MAX_ID_CHARS}")
        return text
    raise DecodeError(path, f"expected text, got {type_name(value)}")


def decode_record(
    raw: object,
    mapping: FieldMapping = FieldMapping(),
    default_ts: float | None = None,
    default_model: str | None = None,
) -> ServingRecord:
    """Decode one serving record or raise DecodeError; never anything else."""
    if not isinstance(raw, dict):
        raise DecodeError("<record>", f"expected an object, got {type_name(raw)}")
    features = _lookup(raw, mapping.features)
    if features is _ABSENT:
        raise DecodeError(mapping.features, "missing")
    if not isinstance(features, dict):
        raise DecodeError(mapping.features, f"expected an object, got {type_name(features)}")
    ts = _event_time(raw, mapping.ts, default_ts)
    model = _text(raw, mapping.model, default_model)
    if model is None:
        raise DecodeError(mapping.model, "missing")
    slice_raw = _lookup(raw, mapping.slice)
    slice_: dict[str, str] = {}
    if isinstance(slice_raw, dict):
        slice_ = {str(k): bounded_text(str(v)) for k, v in slice_raw.items()}
    elif slice_raw is not _ABSENT and slice_raw is not None:
        raise DecodeError(mapping.slice, f"expected an object, got {type_name(slice_raw)}")
    prediction = _lookup(raw, mapping.prediction)
    return ServingRecord(
        ts=ts,
        model=model,
        version=_text(raw, mapping.model_version, "") or "",
        features={str(k): v for k, v in features.items()},
        prediction=None if prediction is _ABSENT else prediction,
        request_id=_text(raw, mapping.request_id, None),
        slice=slice_,
    )


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """A label for an earlier prediction (DESIGN section 2): joined to it by request id."""

    ts: float
    request_id: str
    label: float
    # "human": resolved from raters' answers (docs/labelling.md); "process": clicks, ratings
    source: str = field(default="process", repr=False)


def is_feedback(raw: object, mapping: FieldMapping = FieldMapping()) -> bool:
    """A record carrying a label and no features is feedback, not a prediction."""
    return (
        isinstance(raw, dict)
        and _lookup(raw, mapping.features) is _ABSENT
        and _lookup(raw, mapping.label) is not _ABSENT
    )


def decode_feedback(
    raw: object, mapping: FieldMapping = FieldMapping(), default_ts: float | None = None
) -> FeedbackRecord:
    """Decode one feedback record or raise DecodeError.

    >>> decode_feedback({"ts": 10, "request_id": "a1b2", "label": True})
    FeedbackRecord(ts=10.0, request_id='a1b2', label=1.0)
    """
    if not isinstance(raw, dict):
        raise DecodeError("<record>", f"expected an object, got {type_name(raw)}")
    request_id = _text(raw, mapping.request_id, None)
    if request_id is None:
        raise DecodeError(mapping.request_id, "missing: a label joins its prediction by it")
    label = _lookup(raw, mapping.label)
    if isinstance(label, bool):
        label = float(label)
    if not isinstance(label, int | float) or not math.isfinite(label):
        raise DecodeError(
            mapping.label, f"expected a finite number or bool, got {type_name(label)}"
        )
    source = "human" if raw.get(LABEL_SOURCE) == "human" else "process"
    ts = _event_time(raw, mapping.ts, default_ts)
    return FeedbackRecord(ts, request_id, float(label), source)


@dataclass(frozen=True, slots=True)
class PipelineRecord:
    """The training pipeline's (or feature store's) features for a logged request: compared
    with what serving logged for the same request id (feature skew)."""

    ts: float
    request_id: str
    model: str
    features: dict[str, object]


def decode_pipeline(
    raw: object,
    mapping: FieldMapping = FieldMapping(),
    default_ts: float | None = None,
    default_model: str | None = None,
) -> PipelineRecord:
    """Decode one pipeline feature record or raise DecodeError.

    >>> decode_pipeline({"ts": 10, "request_id": "a1", "model": "ctr", "features": {"x": 1}})
    PipelineRecord(ts=10.0, request_id='a1', model='ctr', features={'x': 1})
    """
    if not isinstance(raw, dict):
        raise DecodeError("<record>", f"expected an object, got {type_name(raw)}")
    request_id = _text(raw, mapping.request_id, None)
    if request_id is None:
        raise DecodeError(mapping.request_id, "missing: pipeline features join serving by it")
    model = _text(raw, mapping.model, default_model)
    if model is None:
        raise DecodeError(mapping.model, "missing")
    features = _lookup(raw, mapping.features)
    if features is _ABSENT:
        raise DecodeError(mapping.features, "missing")
    if not isinstance(features, dict):
        raise DecodeError(mapping.features, f"expected an object, got {type_name(features)}")
    ts = _event_time(raw, mapping.ts, default_ts)
    return PipelineRecord(ts, request_id, model, {str(k): v for k, v in features.items()})


def _event_time(raw: dict[str, object], path: str, default_ts: float | None) -> float:
    """The record's time, else the transport's (``default_ts``), checked alike: a transport in
    milliseconds or out of range is caught here, not in a window a millennium away."""
    ts_raw = _lookup(raw, path)
    if ts_raw is _ABSENT or ts_raw is None:
        if default_ts is None:
            raise DecodeError(path, "missing")
        ts_raw = default_ts
    try:
        return parse_ts(ts_raw)
    except (ValueError, OverflowError, OSError) as exc:
        raise DecodeError(path, str(exc)) from None
