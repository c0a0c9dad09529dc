"""The forward listener of the real `logdrift run`, under input meant to poison, stall or lock
it out (issue 14, rows 2-5 and 16). Each test prints what it measured; docs/forward.md
records the figures. Bounds on time are generous where the claim is about correctness; the
/healthz bound (1 s, whatever one sender sends) is the claim itself."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import math
import re
import select
import socket
import struct
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import msgpack
import pytest

from connectors.store import AnomalyStore
from streams.simulation.traffic import serving_records
from tests.integration.conftest import free_port

START = 1_795_860_000.0
PATIENCE = 300.0  # seconds a busy machine may take to answer a big frame: not a claim


def event_time(t: float) -> msgpack.ExtType:
    seconds = int(t)
    return msgpack.ExtType(0, struct.pack(">II", seconds, round((t - seconds) * 1e9)))


def stopped_counts(output: str) -> tuple[int, int]:
    match = re.search(r"stopped: ([\d,]+) records, .* ([\d,]+) dead letters", output)
    assert match, output
    return int(match[1].replace(",", "")), int(match[2].replace(",", ""))


class Sender:
    """A raw forward-protocol client: hand-built frames, acks read back."""

    def __init__(self, port: int, timeout: float = PATIENCE) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.unpacker = msgpack.Unpacker(raw=False)

    def read(self) -> Any:
        while True:
            with contextlib.suppress(StopIteration):
                return next(self.unpacker)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the runner")
            self.unpacker.feed(data)

    def ack(self, frame: list[Any]) -> Any:
        self.sock.sendall(msgpack.packb(frame))
        return self.read()

    def close(self) -> None:
        self.sock.close()


@dataclass
class HealthProbe:
    """Asks /healthz again and again from a thread, timing each answer."""

    url: str
    latencies: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> HealthProbe:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(60)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=60) as answer:
                    ok = answer.status == 200
            except OSError:
                ok = False
            # A failed or refused probe counts as never answered: the bound fails on it.
            self.latencies.append(time.monotonic() - began if ok else math.inf)
            self._stop.wait(0.05)

    def summary(self) -> str:
        ordered = sorted(self.latencies)
        p50 = ordered[len(ordered) // 2]
        return f"{len(ordered)} probes, p50 {p50 * 1000:.1f} ms, p100 {ordered[-1] * 1000:.1f} ms"


@pytest.fixture
def metrics_port(monkeypatch: pytest.MonkeyPatch) -> int:
    port = free_port()
    monkeypatch.setenv("LOGDRIFT_OBSERVABILITY__PORT", str(port))
    return port


def wait_healthy(port: int) -> str:
    url = f"http://127.0.0.1:{port}/healthz"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return url
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# --- row 2: a bad entry is one dead letter ---------------------------------------------

POISONS: list[Any] = [
    [START, {b"\xff\xfe": 1}],  # a key that is not UTF-8
    [START, {7: "seven"}],  # a key that is not a string
    None,  # nesting deeper than 64: built below
    [START, ["not", "a", "map"]],  # a record that is not a map
    ["yesterday", {"n": 1}],  # a time that is not a time
]
_deep: dict[str, Any] = {}
for _ in range(70):
    _deep = {"k": _deep}
POISONS[2] = [START, _deep]


def test_poisoned_frames_keep_their_good_records_and_dead_letter_the_bad(start_runner, tmp_path):
    runner = start_runner(tmp_path / "poisoned.db")
    records = iter(serving_records(1_980, rate=100.0, start=START))
    sender = Sender(runner.port)
    acks = []
    for i in range(20):
        good = [[event_time(START + i), next(records)] for _ in range(99)]
        entries = [*good[:i], POISONS[i % len(POISONS)], *good[i:]]
        if i % 2:  # half of them packed and gzipped, as Fluentd's out_forward sends
            stream = b"".join(msgpack.packb(e) for e in entries)
            frame = ["serving", gzip.compress(stream), {"chunk": f"c{i}", "compressed": "gzip"}]
        else:
            frame = ["serving", entries, {"chunk": f"c{i}"}]
        acks.append(sender.ack(frame))
    sender.close()
    records_done, dead = stopped_counts(runner.stop())
    print(f"\naccepted {records_done:,}/1,980 good records, dead-lettered {dead}/20 bad entries")
    assert acks == [{"ack": f"c{i}"} for i in range(20)], "every frame was acked"
    assert (records_done, dead) == (1_980, 20)
    with AnomalyStore(runner.store) as store:
        letters = store.dead_letters()
    assert len(letters) == 20
    assert sum("not valid UTF-8" in d.reason for d in letters) == 4
    assert sum("must be a string, found int" in d.reason for d in letters) == 4
    assert sum("nested deeper than 64" in d.reason for d in letters) == 4
    assert sum("record must be a map, found array" in d.reason for d in letters) == 4
    assert sum("time must be an integer, float or EventTime" in d.reason for d in letters) == 4
    assert all(d.source == "forward:serving" and d.raw for d in letters)


# --- row 3 and 4: no input stalls the others ---------------------------------------------


def test_healthz_and_other_senders_answer_during_a_300000_entry_frame(
    start_runner, tmp_path, metrics_port
):
    runner = start_runner(tmp_path / "huge.db")
    url = wait_healthy(metrics_port)
    frame = ["serving", [[0, {}]] * 300_000, {"chunk": "huge"}]
    huge = Sender(runner.port)
    other = Sender(runner.port)
    good = next(iter(serving_records(1, rate=100.0, start=START)))
    with HealthProbe(url) as probe:
        began = time.monotonic()
        huge.sock.sendall(msgpack.packb(frame))
        time.sleep(1.0)
        small_began = time.monotonic()
        assert other.ack(["serving", START, good, {"chunk": "small"}]) == {"ack": "small"}
        small = time.monotonic() - small_began
        assert huge.read() == {"ack": "huge"}
        took = time.monotonic() - began
    records_done, dead = stopped_counts(runner.stop())
    print(
        f"\n300,000-entry frame acked in {took:.1f} s; another sender's frame acked in "
        f"{small * 1000:.0f} ms meanwhile; /healthz: {probe.summary()}"
    )
    assert (records_done, dead) == (1, 300_000)
    assert len(probe.latencies) >= 5
    assert max(probe.latencies) < 1.0, probe.summary()
    assert small < 1.0


def test_healthz_answers_during_a_400000_member_gzip_frame(start_runner, tmp_path, metrics_port):
    runner = start_runner(tmp_path / "members.db")
    url = wait_healthy(metrics_port)
    members = gzip.compress(b"", mtime=0) * 400_000
    sender = Sender(runner.port)
    with HealthProbe(url) as probe:
        began = time.monotonic()
        assert sender.ack(["serving", members, {"chunk": "m", "compressed": "gzip"}]) == {
            "ack": "m"
        }
        took = time.monotonic() - began
        time.sleep(0.5)
    runner.stop()
    print(f"\n400,000-member gzip frame acked in {took:.1f} s; /healthz: {probe.summary()}")
    assert len(probe.latencies) >= 5
    assert max(probe.latencies) < 1.0, probe.summary()


# --- row 5: connections have deadlines ---------------------------------------------------


def test_a_new_sender_is_accepted_while_256_idle_connections_are_open(start_runner, tmp_path):
    runner = start_runner(tmp_path / "idle.db")
    idle = [socket.create_connection(("127.0.0.1", runner.port)) for _ in range(256)]
    try:
        time.sleep(1.0)  # every one of them accepted and counted by the runner
        record = next(iter(serving_records(1, rate=100.0, start=START)))
        began = time.monotonic()
        sender = Sender(runner.port, timeout=60)
        ack = sender.ack(["serving", START, record, {"chunk": "new"}])
        took = time.monotonic() - began
        sender.close()
    finally:
        for sock in idle:
            sock.close()
    records_done, _ = stopped_counts(runner.stop())
    print(f"\nwith 256 idle connections open, a new sender was acked in {took * 1000:.0f} ms")
    assert ack == {"ack": "new"}
    assert records_done == 1


def _trickle(port: int, frame: bytes, cut: list[float]) -> None:
    """Send `frame` a byte a second until the runner closes the connection."""
    sock = socket.create_connection(("127.0.0.1", port))
    began = time.monotonic()
    whole = False
    try:
        for byte in frame:
            sock.sendall(bytes([byte]))
            # Wait the second out watching for the close, so the cut is timed to ~0.1 s.
            readable, _, _ = select.select([sock], [], [], 1.0)
            if readable and not sock.recv(1):
                break
        else:
            whole = True  # no deadline cut it: the test's bound fails on infinity
    except OSError:
        pass
    finally:
        cut.append(math.inf if whole else time.monotonic() - began)
        sock.close()


def test_partial_frames_trickled_a_byte_a_second_are_cut_at_the_deadline(
    start_runner, tmp_path, monkeypatch
):
    deadline = 5.0
    monkeypatch.setenv("LOGDRIFT_FORWARD__FRAME_DEADLINE_SECONDS", str(deadline))
    runner = start_runner(tmp_path / "trickle.db")
    frame = msgpack.packb(["serving", START, {"blob": "x" * 200}])
    cut: list[float] = []
    threads = [
        threading.Thread(target=_trickle, args=(runner.port, frame, cut)) for _ in range(256)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    record = next(iter(serving_records(1, rate=100.0, start=START)))
    sender = Sender(runner.port, timeout=60)
    ack = sender.ack(["serving", START, record, {"chunk": "after"}])
    sender.close()
    records_done, _ = stopped_counts(runner.stop())
    print(
        f"\n256 frames trickled at 1 byte/s, deadline {deadline:g} s: cut after "
        f"{min(cut):.1f}..{max(cut):.1f} s; then a new sender was acked"
    )
    assert len(cut) == 256
    assert all(deadline <= c < deadline + 30 for c in cut), sorted(cut)
    assert ack == {"ack": "after"}
    assert records_done == 1


# --- row 16: the shared-key handshake through the real runner -------------------------


def test_the_runner_takes_its_shared_key_from_the_environment_and_never_prints_it(
    start_runner, tmp_path, monkeypatch
):
    key = "k3y-" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:16]
    monkeypatch.setenv("LOGDRIFT_FORWARD__SHARED_KEY", key)
    monkeypatch.setenv("LOGDRIFT_FORWARD__SELF_HOSTNAME", "runner.test")
    runner = start_runner(tmp_path / "secured.db")
    record = next(iter(serving_records(1, rate=100.0, start=START)))

    refused = Sender(runner.port, timeout=60)
    nonce = refused.read()[1]["nonce"]
    salt, host = b"salt", b"sender.test"
    wrong = hashlib.sha512(salt + host + nonce + b"not-the-key").hexdigest()
    assert refused.ack(["PING", host.decode(), salt, wrong, "", ""])[:3] == [
        "PONG",
        False,
        "shared_key mismatch",
    ]

    sender = Sender(runner.port, timeout=60)
    nonce = sender.read()[1]["nonce"]
    digest = hashlib.sha512(salt + host + nonce + key.encode()).hexdigest()
    pong = sender.ack(["PING", host.decode(), salt, digest, "", ""])
    server_digest = hashlib.sha512(salt + b"runner.test" + nonce + key.encode()).hexdigest()
    assert pong == ["PONG", True, "", "runner.test", server_digest]
    assert sender.ack(["serving", START, record, {"chunk": "in"}]) == {"ack": "in"}
    sender.close()
    output = runner.stop()
    assert stopped_counts(output)[0] == 1
    assert key not in output
