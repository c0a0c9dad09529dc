"""Issue 14 rows 6, 7 and 12 in the worker's stage one: a record stamped in 2100 is dead-lettered
as future_timestamp and one stamped 1970 as too_old, both counted, instead of entering the
state; a feedback record on serving-logs with labels off is counted and said once."""

from __future__ import annotations

import orjson

from tests.integration.kafka.conftest import (
    consume,
    create_topic,
    produce,
    serving_messages,
    wait_until,
)
from tests.integration.kafka.traffic import rows_with_tail
from tools.servers import ServerInfo


def test_records_out_of_event_time_bounds_are_dead_lettered_by_reason(
    kafka: ServerInfo, start_worker, app_id: str
) -> None:
    create_topic(kafka.url, f"{app_id}-serving-logs", 4)
    rows, _ = rows_with_tail(2_000, [])
    future = {**rows[0], "request_id": "future", "ts": "2100-01-01T00:00:00Z"}
    epoch = {**rows[0], "request_id": "epoch", "ts": 0}
    feedback = {"request_id": rows[0]["request_id"], "label": 1, "ts": rows[0]["ts"]}
    odd = [(k.encode(), orjson.dumps(r)) for k, r in [("f", future), ("e", epoch), ("l", feedback)]]
    worker = start_worker(app_id)
    worker.wait_for(rf"ready: assigned .*{app_id}-serving-logs/3", timeout=120)
    produce(kafka.url, f"{app_id}-serving-logs", [*serving_messages(rows), *odd])

    wait_until(
        lambda: (
            worker.counters().get("records") == len(rows)
            and worker.counters().get("dead_letters") == 2
            and worker.counters().get("feedback_ignored") == 1
        ),
        180,
        "every record accounted",
    )
    dead = consume(kafka.url, f"{app_id}-dead-letters")
    kinds = {d.key: d.headers["logdrift.kind"].decode() for d in dead}
    assert kinds == {b"f": "future_timestamp", b"e": "too_old"}
    reasons = {d.key: d.headers["logdrift.reason"].decode() for d in dead}
    assert "2100-01-01T00:00:00.000Z is" in reasons[b"f"]
    assert "1970-01-01T00:00:00.000Z is" in reasons[b"e"]
    assert worker.text().count("labels are off: 1 feedback records ignored") == 1
