"""Scraping the real `logdrift run` over HTTP while the real fluent-logger client feeds it: the
counters move with the traffic, and readiness and liveness answer."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request

from connectors.fluent import FluentClient
from streams.simulation.demo import send
from streams.simulation.traffic import Injection, serving_records
from tests.integration.patience import bound
from tests.integration.scrape import scrape, value

RATE = 100.0
START = 1_795_860_000.0
N = 6_000
MALFORMED = 30


def metrics_url(runner) -> str:  # type: ignore[no-untyped-def]
    """The endpoint the runner names on its ready line (port 0: a free one)."""
    assert runner.proc.stdout is not None
    deadline = time.monotonic() + bound(30)
    while time.monotonic() < deadline:
        line = runner.proc.stdout.readline()
        found = re.search(r"metrics on (http://\S+)/metrics", line)
        if found and line.startswith("listening on"):
            return found[1]
    raise AssertionError("the runner never said where its metrics are")


def total(samples: dict, name: str) -> float:  # type: ignore[type-arg]
    return sum(v for (n, _), v in samples.items() if n == name)


def probe(base: str, path: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(f"{base}{path}", timeout=bound(5)) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for(base: str, condition, timeout: float = 60):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + bound(timeout)
    while True:
        samples = scrape(base)
        if condition(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def test_counters_move_with_the_traffic_a_scrape_sees(start_runner, tmp_path):
    runner = start_runner(tmp_path / "anomalies.db", "--window-seconds", "10", "--min-count", "100")
    base = metrics_url(runner)
    assert probe(base, "/healthz")[0] == 200
    status, body = probe(base, "/readyz")
    assert (status, body["checks"]) == (200, {"baseline_loaded": True, "listener_up": True})
    before = scrape(base)
    assert value(before, "logdrift_ready") == 1
    assert value(before, "logdrift_records_in_total", topic="forward") == 0

    with FluentClient("127.0.0.1", runner.port) as client:
        for i in range(MALFORMED):
            client.emit("serving", {"model": "ctr", "features": [i]}, START)
    records = serving_records(
        N, rate=RATE, start=START, injections=[Injection("category_surge", N // 2)]
    )
    send(records, "127.0.0.1", runner.port, realtime=False, rate=RATE)
    with socket.create_connection(("127.0.0.1", runner.port)) as raw:
        raw.sendall(b"\xc1" * 16)  # never valid msgpack: the listener closes this connection

    during = wait_for(
        base,
        lambda s: (
            value(s, "logdrift_records_in_total", topic="forward") == N + MALFORMED
            and total(s, "logdrift_forward_rejected_total") >= 1
        ),
    )
    assert value(during, "logdrift_records_in_total", topic="forward") == N + MALFORMED
    reason = "features: expected an object, got list"
    assert value(during, "logdrift_dead_letters_total", reason=reason) == MALFORMED
    assert value(during, "logdrift_forward_rejected_total", reason="bad_frame") == 1
    assert value(during, "logdrift_forward_connections_total") >= 3
    assert value(during, "logdrift_forward_messages_total") == N + MALFORMED
    windows = value(during, "logdrift_windows_closed_total", model="ctr")
    assert windows >= (N / RATE) / 10 - 2, "event time moved through the 10 s windows"
    skew = sum(
        value(during, "logdrift_anomalies_total", kind="distribution_skew", severity=s)
        for s in ("low", "medium", "high", "critical")
    )
    assert skew >= 1, "the device surge was caught and counted by kind and severity"
    assert value(during, "logdrift_records_out_total", topic="anomalies") == total(
        during, "logdrift_anomalies_total"
    )
    assert value(during, "logdrift_records_out_total", topic="dead-letters") == MALFORMED
    assert value(during, "process_resident_memory_bytes") > 0

    out = runner.stop()
    stopped = re.search(r"stopped: ([\d,]+) records, ([\d,]+) anomalies", out)
    assert stopped, out
    assert int(stopped[1].replace(",", "")) == N
    try:
        urllib.request.urlopen(f"{base}/healthz", timeout=2)
    except (urllib.error.URLError, ConnectionError):
        pass
    else:
        raise AssertionError("the endpoint outlived the runner")
