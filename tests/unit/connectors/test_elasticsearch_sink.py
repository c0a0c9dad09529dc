"""connectors.elasticsearch, the parts that need no node: the backoff schedule and the bulk
body. (Everything that talks to Elasticsearch is tested against a real node in
tests/integration/elasticsearch.)"""

from __future__ import annotations

import orjson
import pytest

from connectors.elasticsearch import Backoff, Doc, _ndjson


def test_backoff_doubles_from_the_initial_delay_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 4.0, jitter=False)
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_jitter_stays_between_half_and_all_of_the_nominal_delay() -> None:
    backoff = Backoff(1.0, 8.0)
    delays = [backoff.next() for _ in range(200)]
    nominal = [min(8.0, 2.0**i) for i in range(200)]
    assert all(n / 2 <= d <= n for d, n in zip(delays, nominal, strict=True))
    assert len(set(delays)) > 100, "clients restarted together do not retry in step"


def test_a_long_outage_never_overflows_the_schedule() -> None:
    backoff = Backoff(0.5, 30.0, jitter=False)
    for _ in range(10_000):
        delay = backoff.next()
    assert delay == 30.0


@pytest.mark.parametrize(("initial", "maximum"), [(0.0, 1.0), (2.0, 1.0), (-1.0, 1.0)])
def test_a_backoff_that_cannot_work_is_refused(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError, match="initial <= maximum"):
        Backoff(initial, maximum)


def test_the_bulk_body_pairs_an_index_action_with_each_document_byte_for_byte() -> None:
    body = b'{"message":"caf\xc3\xa9 \\u2192 40%"}'
    docs = [Doc("logdrift-anomalies-2026.11.28", "a1", body), Doc("i2", "b2", b"{}")]
    lines = _ndjson(docs).split(b"\n")
    assert lines[-1] == b"", "the bulk API needs a final newline"
    assert orjson.loads(lines[0]) == {
        "index": {"_index": "logdrift-anomalies-2026.11.28", "_id": "a1"}
    }
    assert lines[1] == body
    assert orjson.loads(lines[2]) == {"index": {"_index": "i2", "_id": "b2"}}
    assert len(lines) == 5
