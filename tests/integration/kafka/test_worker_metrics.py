"""Scraping the real worker over HTTP while records stream in from the real broker: readiness
is false until the broker answered and the tables recovered, the counters move with the
records, and the consumer lag rises while records arrive and returns to zero after."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

from streams.simulation.traffic import Injection
from tests.integration.kafka.conftest import create_topic, produce, serving_messages
from tests.integration.kafka.traffic import rows_with_tail
from tests.integration.patience import bound
from tests.integration.scrape import Samples, scrape, value
from tools.servers import ServerInfo

N = 40_000
NOT_JSON = 25
# All at once, faster than one worker reads (~12,000 records/s at best here): a backlog of
# several seconds, so the lag, measured every 2 s, is seen above zero whatever the timing.
PACE = 0.0


def lag(samples: Samples, topic: str) -> float | None:
    found = [
        v
        for (n, labels), v in samples.items()
        if n == "logdrift_consumer_lag" and dict(labels)["topic"] == topic
    ]
    return sum(found) if found else None


def readyz(base: str) -> tuple[int, dict[str, bool]]:
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=bound(5)) as r:
            return r.status, json.loads(r.read())["checks"]
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["checks"]


def test_readiness_counters_and_lag_seen_by_a_scrape(
    kafka: ServerInfo, start_worker, app_id: str
) -> None:
    topic = f"{app_id}-serving-logs"
    create_topic(kafka.url, topic, 4)
    rows, _ = rows_with_tail(N - 400, [Injection("category_surge", (N - 400) // 2)])
    bad = [(f"bad-{i}".encode(), b"\x00 not json") for i in range(NOT_JSON)]
    messages = serving_messages(rows)
    messages[100:100] = bad

    worker = start_worker(app_id)
    base = worker.wait_for(r"metrics on (http://[\d.]+:\d+)/metrics", timeout=120)[1]
    first_status, first_checks = readyz(base)
    assert first_status == 503, "not ready before the broker answered and tables recovered"
    assert not all(first_checks.values())
    statuses = [first_status]
    deadline = time.monotonic() + bound(120)
    while statuses[-1] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        statuses.append(readyz(base)[0])
    assert statuses[-1] == 200, f"never ready: {readyz(base)}"
    assert value(scrape(base), "logdrift_records_in_total", topic=topic) == 0

    arriving = threading.Thread(target=produce, args=(kafka.url, topic, messages, PACE))
    arriving.start()
    lags: list[float] = []
    during: list[int] = []
    deadline = time.monotonic() + bound(180)
    while time.monotonic() < deadline:
        status, checks = readyz(base)
        during.append(status)
        samples = scrape(base)
        seen = lag(samples, topic)
        if seen is not None:
            lags.append(seen)
        done = value(samples, "logdrift_records_in_total", topic=topic) == len(messages)
        if not arriving.is_alive() and done and lags and lags[-1] == 0:
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"never settled: lags {lags[-10:]}, {readyz(base)}")
    arriving.join()

    assert checks == {"broker_connected": True, "tables_recovered": True, "baseline_loaded": True}
    assert set(during) == {200}, "ready all along while records flowed"
    assert max(lags) > 0, "the backlog showed as lag"
    assert lags[-1] == 0, "and the lag returned to zero"
    assert value(samples, "logdrift_ready") == 1
    assert value(samples, "logdrift_dead_letters_total", reason="not_json") == NOT_JSON
    # Stage two reads the summaries after stage one sends them: a serving lag of zero does
    # not mean the windows were judged yet, so wait (bounded) for stage two to catch up.
    summaries = f"{app_id}-feature-summaries"
    deadline = time.monotonic() + bound(90)
    while True:
        sent = value(samples, "logdrift_records_out_total", topic=summaries)
        read = value(samples, "logdrift_records_in_total", topic=summaries)
        surged = sum(
            value(samples, "logdrift_anomalies_total", kind="distribution_skew", severity=s)
            for s in ("low", "medium", "high", "critical")
        )
        if (sent > 0 and read == sent and surged >= 1) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
        samples = scrape(base)
    assert sent > 0
    assert read == sent, f"stage two read every summary stage one sent ({read} of {sent})"
    assert surged >= 1, "the category surge was counted by kind and severity"
    assert value(samples, "logdrift_windows_closed_total", model="ctr") > 0
    worker.stop()
    assert worker.proc.returncode == 0, worker.text()[-3000:]
