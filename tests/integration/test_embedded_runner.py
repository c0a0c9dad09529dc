"""The real fluent-logger client -> `logdrift run` -> anomalies in the SQLite store."""

from __future__ import annotations

import re

from connectors.fluent import FluentClient
from connectors.store import AnomalyStore
from streams.simulation.demo import send
from streams.simulation.traffic import Injection, serving_records

RATE = 100.0
START = 1_795_860_000.0  # a minute boundary, so windows are whole minutes
N = 24_000
INJECT_AT = 16_000


def _accounted(output: str) -> tuple[int, int]:
    match = re.search(r"stopped: ([\d,]+) records, .* ([\d,]+) dead letters", output)
    assert match, output
    return int(match[1].replace(",", "")), int(match[2].replace(",", ""))


def test_records_survive_a_restart_and_changes_after_it_are_caught(start_runner, tmp_path):
    store = tmp_path / "anomalies.db"
    injections = [Injection("category_surge", INJECT_AT), Injection("mean_shift", INJECT_AT)]
    records = list(serving_records(N, rate=RATE, start=START, injections=injections))
    split = 9_000  # mid-window: the first runner must judge its partial window on SIGTERM

    first = start_runner(store)
    send(records[:split], "127.0.0.1", first.port, realtime=False, rate=RATE)
    out1 = first.stop()
    second = start_runner(store)
    send(records[split:], "127.0.0.1", second.port, realtime=False, rate=RATE)
    out2 = second.stop()

    accounted = _accounted(out1)[0] + _accounted(out2)[0]
    assert accounted == N, "every record sent was accounted by one of the two runners"
    with AnomalyStore(store) as s:
        found = s.query()
    injected_at = START + INJECT_AT / RATE
    assert {a.feature for a in found} == {"device", "score"}, [a.line() for a in found]
    assert all(a.timestamp >= injected_at for a in found)
    assert any(a.feature == "score" and a.detector in ("page_hinkley", "adwin") for a in found)
    assert any(a.feature == "device" and a.kind == "distribution_skew" for a in found), [
        a.line() for a in found
    ]
    assert len({a.id for a in found}) == len(found)
    with AnomalyStore(store) as s:
        incidents = s.incidents()
    assert {i.feature for i in incidents} == {"device", "score"}
    assert len(incidents) < len(found), "anomalies are gathered into incidents"
    printed = [line for line in (out1 + out2).splitlines() if " incident open " in line]
    assert len(printed) == len(incidents), "one line per incident opened, not per anomaly"
    assert not [line for line in (out1 + out2).splitlines() if "[jensen_shannon]" in line]


def test_malformed_records_are_dead_lettered_and_the_runner_goes_on(start_runner, tmp_path):
    runner = start_runner(tmp_path / "anomalies.db")
    good = list(serving_records(1_000, rate=RATE, start=START))
    with FluentClient("127.0.0.1", runner.port) as client:
        for i in range(50):
            client.emit("serving", {"model": "ctr", "features": [i]}, START)
        for i in range(30):
            client.emit("serving", {"model": "unknown", "features": {"x": i}}, START)
    send(good, "127.0.0.1", runner.port, realtime=False, rate=RATE)
    records, dead = _accounted(runner.stop())
    assert (records, dead) == (1_000, 80)
    with AnomalyStore(runner.store) as s:
        counts = s.dead_letter_counts()
        letters = s.dead_letters()
    assert sum(counts.values()) == 80
    assert any("field 'features': expected an object, got list" in r for r in counts)
    assert any("no baseline for model 'unknown'" in r for r in counts)
    assert all(d.raw for d in letters), "the original record is kept with its reason"
