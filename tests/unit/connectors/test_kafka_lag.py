"""connectors.kafka_lag without a broker: the arithmetic of lag (the probe itself runs against
the real broker in tests/integration/kafka/test_worker_metrics.py)."""

from __future__ import annotations

from connectors.kafka_lag import lag_of


def test_lag_is_end_minus_committed_and_zero_once_caught_up() -> None:
    ends = {("serving-logs", 0): 500, ("serving-logs", 1): 0, ("serving-logs", 2): 40}
    assert lag_of(ends, {("serving-logs", 0): 100}) == {
        ("serving-logs", 0): 400,
        ("serving-logs", 1): 0,
        ("serving-logs", 2): 40,
    }
    assert set(lag_of(ends, dict(ends)).values()) == {0}


def test_never_committed_lags_by_everything_and_lag_is_never_negative() -> None:
    assert lag_of({"p": 30}, {"p": -1}) == {"p": 30}
    assert lag_of({"p": 5}, {"p": 9}) == {"p": 0}
