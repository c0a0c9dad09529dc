"""What ``forward-to-kafka`` sends to serving-logs: the record as JSON, keyed by its request id
(so a prediction and its feedback share a partition), with the event time when the record has
none; both fields may be dotted paths, as in the ``fields`` settings."""

from __future__ import annotations

import orjson

from connectors.forward import ForwardEvent
from connectors.kafka import serving_message

T0 = 1_795_860_000.0


def test_keyed_by_request_id_with_the_event_time_added() -> None:
    key, value = serving_message(ForwardEvent("t", T0, {"request_id": "r1"}), "request_id", "ts")
    assert key == b"r1"
    assert orjson.loads(value) == {"request_id": "r1", "ts": T0}


def test_a_records_own_time_wins() -> None:
    _, value = serving_message(ForwardEvent("t", T0, {"ts": "x"}), "request_id", "ts")
    assert orjson.loads(value) == {"ts": "x"}


def test_dotted_fields_are_read_and_written_inside_the_record() -> None:
    record = {"meta": {"request_id": 42, "model": "ctr"}}
    key, value = serving_message(ForwardEvent("t", T0, record), "meta.request_id", "meta.ts")
    assert key == b"42"
    assert orjson.loads(value) == {"meta": {"request_id": 42, "model": "ctr", "ts": T0}}
    assert record == {"meta": {"request_id": 42, "model": "ctr"}}  # the event is not changed


def test_records_without_a_usable_request_id_are_spread() -> None:
    for record in ({}, {"request_id": True}, {"request_id": None}, {"meta": "r1"}):
        assert serving_message(ForwardEvent("t", T0, record), "meta.request_id", "ts")[0] is None
