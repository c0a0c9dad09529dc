"""ForwardServer against the real fluent-logger client and hand-built frames over TCP.

fluent-logger's sender blocks, so it runs in a thread (asyncio.to_thread) while
the server keeps serving on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgpack
import pytest
from fluent.sender import EventTime, FluentSender

from connectors.fluent import FluentClient
from connectors.forward import BadEntry, ForwardEvent
from connectors.forward_limits import ForwardLimits
from connectors.forward_server import ForwardServer
from tests.integration.patience import bound

T0 = 1764324000
RECORD = {"request_id": "a1b2", "model": "ctr", "features": {"price": 12.5, "country": "DE"}}


class Received:
    """A handler that records every batch; `gate` lets a test hold it."""

    def __init__(self) -> None:
        self.batches: list[list[ForwardEvent]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()

    async def __call__(self, events: list[ForwardEvent]) -> None:
        self.entered.set()
        await self.gate.wait()
        self.batches.append(events)

    @property
    def events(self) -> list[ForwardEvent]:
        return [e for batch in self.batches for e in batch]


@pytest.fixture
async def received() -> Received:
    return Received()


@pytest.fixture
async def server(received: Received) -> AsyncIterator[ForwardServer]:
    async with ForwardServer(received, port=0, max_frame_bytes=64 * 1024) as srv:
        yield srv


async def eventually(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(bound(5)):
        while not condition():  # noqa: ASYNC110 -- polling server counters is simplest here
            await asyncio.sleep(0.01)


_client_writers: list[asyncio.StreamWriter] = []


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    while _client_writers:
        writer = _client_writers.pop()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def connect(server: ForwardServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw client connection, closed when the test ends."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    _client_writers.append(writer)
    return reader, writer


async def read_acks(reader: asyncio.StreamReader, count: int = 1) -> list[object]:
    unpacker = msgpack.Unpacker(raw=False)
    acks: list[object] = []
    async with asyncio.timeout(bound(5)):
        while len(acks) < count:
            unpacker.feed(await reader.read(1024))
            acks.extend(unpacker)
    return acks


async def assert_closed_by_server(reader: asyncio.StreamReader, within: float = 5) -> None:
    async with asyncio.timeout(within):
        # A close with our bytes still unread arrives as a reset: closed all the same.
        with contextlib.suppress(ConnectionResetError):
            assert await reader.read() == b""


def send_with_fluent_logger(port: int, nanosecond_precision: bool, calls: list[Any]) -> None:
    sender = FluentSender(
        "app", host="127.0.0.1", port=port, nanosecond_precision=nanosecond_precision
    )
    try:
        for label, time, record in calls:
            assert sender.emit_with_time(label, time, record), sender.last_error
    finally:
        sender.close()


# --- the real fluent-logger client ------------------------------------------


async def test_fluent_logger_with_nanosecond_precision(
    server: ForwardServer, received: Received
) -> None:
    calls = [
        ("ctr", EventTime(T0, 123_456_789), RECORD),
        ("ctr", EventTime.from_unix_nano(T0 * 10**9 + 1), {"n": 2}),
        ("fb", T0, {"label": 1}),  # an int is sent as it is, even in this mode
        ("ctr", T0 + 0.25, {"n": 4}),  # a float becomes an EventTime
    ]
    await asyncio.to_thread(send_with_fluent_logger, server.port, True, calls)
    await eventually(lambda: len(received.events) == 4)
    assert received.events == [
        ForwardEvent("app.ctr", (T0 * 10**9 + 123_456_789) / 10**9, RECORD),
        ForwardEvent("app.ctr", (T0 * 10**9 + 1) / 10**9, {"n": 2}),
        ForwardEvent("app.fb", float(T0), {"label": 1}),
        ForwardEvent("app.ctr", T0 + 0.25, {"n": 4}),
    ]


async def test_fluent_logger_without_nanosecond_precision(
    server: ForwardServer, received: Received
) -> None:
    calls = [
        ("ctr", T0, RECORD),
        ("ctr", T0 + 0.5, {"n": 2}),  # a float goes out as a msgpack float
        ("ctr", T0, {"blob": b"raw", "text": "caf\u00e9"}),  # bytes go out as msgpack bin
    ]
    await asyncio.to_thread(send_with_fluent_logger, server.port, False, calls)
    # The count of messages moves after the handler returns: wait for both.
    await eventually(lambda: len(received.events) == 3 and server.stats.messages == 3)
    assert received.events == [
        ForwardEvent("app.ctr", float(T0), RECORD),
        ForwardEvent("app.ctr", T0 + 0.5, {"n": 2}),
        ForwardEvent("app.ctr", float(T0), {"blob": "raw", "text": "caf\u00e9"}),
    ]
    assert server.stats.messages == 3
    assert server.stats.events == 3


async def test_fluent_logger_emit_stamps_the_current_time(
    server: ForwardServer, received: Received
) -> None:
    def emit_now() -> None:
        with FluentSender("app", host="127.0.0.1", port=server.port) as sender:
            assert sender.emit("now", {"n": 1}), sender.last_error

    before = time.time()
    await asyncio.to_thread(emit_now)
    await eventually(lambda: len(received.events) == 1)
    assert before - 1 <= received.events[0].time <= time.time()


async def test_fluent_client_round_trips_float_times_exactly(
    server: ForwardServer, received: Received
) -> None:
    times = [T0 + 0.123456789, T0 + 0.999999999, 1_800_000_000.0000002, 0.5]

    def emit_all() -> None:
        with FluentClient("127.0.0.1", server.port, tag_prefix="sim") as client:
            for i, t in enumerate(times):
                client.emit("ctr", {"i": i}, t)

    await asyncio.to_thread(emit_all)
    await eventually(lambda: len(received.events) == len(times))
    assert [(e.tag, e.time, e.record) for e in received.events] == [
        ("sim.ctr", t, {"i": i}) for i, t in enumerate(times)
    ]


async def test_fluent_client_raises_connection_error_when_nobody_listens() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = FluentClient("127.0.0.1", port, timeout=1.0)
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
        await asyncio.to_thread(client.emit, "ctr", {"n": 1}, T0)
    client.close()
    with pytest.raises(ConnectionError, match="closed"):
        client.emit("ctr", {"n": 1}, T0)


async def test_fluent_client_rejects_times_event_time_cannot_hold() -> None:
    with FluentClient("127.0.0.1", 9) as client:
        for bad in (-1.0, float("nan"), float(2**32)):
            with pytest.raises(ValueError, match="time must be"):
                client.emit("ctr", {}, bad)


# --- hand-built frames with acks --------------------------------------------


def entries(*records: dict[str, Any]) -> bytes:
    return b"".join(
        msgpack.packb([msgpack.ExtType(0, struct.pack(">II", T0, i)), r])
        for i, r in enumerate(records)
    )


FRAMES: dict[str, list[Any]] = {
    "Message": ["app.ctr", T0, {"n": 0}, {"chunk": "c-message"}],
    "Forward": ["app.ctr", [[T0, {"n": 0}], [T0, {"n": 1}]], {"chunk": "c-forward"}],
    "PackedForward": ["app.ctr", entries({"n": 0}, {"n": 1}), {"chunk": "c-packed"}],
    "CompressedPackedForward": [
        "app.ctr",
        gzip.compress(entries({"n": 0})) + gzip.compress(entries({"n": 1})),
        {"chunk": "c-gzip", "compressed": "gzip"},
    ],
}


@pytest.mark.parametrize("mode", FRAMES)
async def test_ack_is_sent_only_after_the_handler_returns(
    mode: str, server: ForwardServer, received: Received
) -> None:
    frame = FRAMES[mode]
    received.gate.clear()
    reader, writer = await connect(server)
    writer.write(msgpack.packb(frame))
    await writer.drain()
    await asyncio.wait_for(received.entered.wait(), 5)
    with pytest.raises(TimeoutError):  # the handler is held: no ack yet
        await asyncio.wait_for(reader.read(1), 0.2)
    assert received.batches == []
    received.gate.set()
    assert await read_acks(reader) == [{"ack": frame[-1]["chunk"]}]
    expected_count = 1 if mode == "Message" else 2
    assert [e.record for e in received.events] == [{"n": i} for i in range(expected_count)]
    writer.close()


async def test_messages_on_one_connection_are_handled_in_order(
    server: ForwardServer, received: Received
) -> None:
    reader, writer = await connect(server)
    writer.write(b"".join(msgpack.packb(["t", T0, {"n": i}, {"chunk": str(i)}]) for i in range(20)))
    acks = await read_acks(reader, 20)
    assert acks == [{"ack": str(i)} for i in range(20)]
    assert [e.record["n"] for e in received.events] == list(range(20))
    writer.close()


# --- bad input never takes the server down ----------------------------------


async def test_garbage_closes_the_connection_and_the_server_serves_the_next_client(
    server: ForwardServer, received: Received, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors.forward_server")
    reader, writer = await connect(server)
    writer.write(msgpack.packb(["t", T0, {"password": "hunter2"}, "not-an-option-map"]))
    await assert_closed_by_server(reader)
    assert server.stats.rejected == {"bad_message": 1}
    [line] = [r.getMessage() for r in caplog.records if r.name == "connectors.forward_server"]
    assert "127.0.0.1:" in line and "option must be a map, found str" in line
    assert "hunter2" not in caplog.text

    reader, writer = await connect(server)
    writer.write(b"\xc1\xc1 not msgpack")
    await assert_closed_by_server(reader)
    assert server.stats.rejected == {"bad_message": 1, "bad_frame": 1}

    reader, writer = await connect(server)
    writer.write(msgpack.packb(["t", T0, {"n": 1}, {"chunk": "after"}]))
    assert await read_acks(reader) == [{"ack": "after"}]
    writer.close()


async def test_oversize_frame_is_rejected(server: ForwardServer, received: Received) -> None:
    reader, writer = await connect(server)
    writer.write(msgpack.packb(["t", T0, {"blob": "x" * (64 * 1024)}]))
    await assert_closed_by_server(reader)
    assert server.stats.rejected == {"oversize_frame": 1}
    assert received.events == []


async def test_handler_error_closes_without_ack_and_the_server_lives_on(
    received: Received,
) -> None:
    failures = iter([RuntimeError("downstream is down")])

    async def flaky(events: list[ForwardEvent]) -> None:
        if failure := next(failures, None):
            raise failure
        await received(events)

    frame = msgpack.packb(["t", T0, {"n": 1}, {"chunk": "c-1"}])
    async with ForwardServer(flaky, port=0) as server:
        reader, writer = await connect(server)
        writer.write(frame)
        await assert_closed_by_server(reader)  # and no ack came first
        assert server.stats.rejected == {"handler_error": 1}

        reader, writer = await connect(server)  # the client resends the chunk
        writer.write(frame)
        assert await read_acks(reader) == [{"ack": "c-1"}]
        assert received.events == [ForwardEvent("t", float(T0), {"n": 1})]
        writer.close()


async def test_at_the_limit_the_idlest_connection_makes_room_for_a_new_sender(
    received: Received,
) -> None:
    async with ForwardServer(received, port=0, max_connections=2) as server:
        idle_reader, _ = await connect(server)
        await eventually(lambda: server.stats.connections_open == 1)
        _, busy = await connect(server)
        busy.write(msgpack.packb(["t", T0, {"n": 1}])[:-2])  # a frame in progress stays
        await eventually(lambda: server.buffered_bytes() > 0)
        reader, writer = await connect(server)
        writer.write(msgpack.packb(["t", T0, {}, {"chunk": "ok"}]))
        assert await read_acks(reader) == [{"ack": "ok"}]
        await assert_closed_by_server(idle_reader)
        assert server.stats.rejected == {"idle_evicted": 1}


async def test_connections_beyond_the_limit_are_refused_when_none_is_idle(
    received: Received,
) -> None:
    async with ForwardServer(received, port=0, max_connections=1) as server:
        _, first = await connect(server)
        first.write(b"\x93")  # the start of a frame: not idle
        await eventually(lambda: server.buffered_bytes() == 1)
        reader, _ = await connect(server)
        await assert_closed_by_server(reader)
        assert server.stats.rejected == {"too_many_connections": 1}
        first.close()
        await eventually(lambda: server.stats.connections_open == 0)
        reader, writer = await connect(server)
        writer.write(msgpack.packb(["t", T0, {}, {"chunk": "ok"}]))
        assert await read_acks(reader) == [{"ack": "ok"}]
        writer.close()


# --- lifecycle --------------------------------------------------------------


async def test_binds_loopback_by_default_and_reports_the_bound_port(received: Received) -> None:
    server = ForwardServer(received, port=0)
    assert server.host == "127.0.0.1"
    await server.start()
    try:
        assert server.host == "127.0.0.1"
        assert server.port > 0
    finally:
        await server.stop()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)


async def test_stop_waits_for_the_in_flight_handler_then_closes(
    server: ForwardServer, received: Received
) -> None:
    idle_reader, _ = await connect(server)
    received.gate.clear()
    reader, writer = await connect(server)
    writer.write(msgpack.packb(["t", T0, {"n": 1}, {"chunk": "last"}]))
    await asyncio.wait_for(received.entered.wait(), 5)
    stopping = asyncio.create_task(server.stop())
    await asyncio.sleep(0.1)
    assert not stopping.done()
    received.gate.set()
    await asyncio.wait_for(stopping, 5)
    assert await read_acks(reader) == [{"ack": "last"}]
    await assert_closed_by_server(reader)
    await assert_closed_by_server(idle_reader)
    assert server.stats.connections_open == 0


# --- a bad entry is one dead letter -------------------------------------------


class BadEntries:
    def __init__(self) -> None:
        self.entries: list[BadEntry] = []

    async def __call__(self, bad: list[BadEntry]) -> None:
        self.entries.extend(bad)


POISONS: list[Any] = [
    [T0, {b"\xff\xfe": 1}],  # a key that is not UTF-8
    [T0, {7: "seven"}],  # a key that is not a string
    None,  # nesting deeper than 64: set below
    [T0, ["not", "a", "map"]],
    ["yesterday", {"n": 1}],  # a time that is not a time
]


def deep(depth: int) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for _ in range(depth):
        record = {"k": record}
    return record


POISONS[2] = [T0, deep(70)]


@pytest.mark.parametrize("mode", ["Forward", "PackedForward", "CompressedPackedForward"])
async def test_a_bad_entry_is_dead_lettered_and_the_rest_of_the_frame_acked(
    mode: str, received: Received
) -> None:
    bad = BadEntries()
    async with ForwardServer(received, port=0, on_bad_entries=bad) as server:
        reader, writer = await connect(server)
        for i, poison in enumerate(POISONS):
            good = [[T0, {"n": n}] for n in range(99)]
            entries_ = [*good[:50], poison, *good[50:]]
            stream = b"".join(msgpack.packb(e) for e in entries_)
            body: Any = {
                "Forward": entries_,
                "PackedForward": stream,
                "CompressedPackedForward": gzip.compress(stream),
            }[mode]
            option = {"chunk": f"c{i}"} | ({"compressed": "gzip"} if "Compressed" in mode else {})
            writer.write(msgpack.packb(["app.ctr", body, option]))
            assert await read_acks(reader) == [{"ack": f"c{i}"}]
    assert len(received.events) == 99 * len(POISONS)
    assert [b.reason for b in bad.entries] == [
        "bad_key",
        "bad_key",
        "too_deep",
        "not_a_map",
        "bad_time",
    ]
    assert all(b.index == 50 for b in bad.entries)
    assert server.stats.rejected == {}


async def test_without_a_bad_entry_handler_bad_entries_are_counted_and_logged(
    server: ForwardServer, received: Received, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors.forward_server")
    reader, writer = await connect(server)
    writer.write(msgpack.packb(["t", [[T0, {"password": "hunter2", 5: 1}]], {"chunk": "c"}]))
    assert await read_acks(reader) == [{"ack": "c"}]
    assert server.stats.bad_entries == {"bad_key": 1}
    assert "1 bad entries from 127.0.0.1" in caplog.text
    assert "hunter2" not in caplog.text


# --- no input stalls the others -------------------------------------------------


async def test_other_senders_are_served_while_a_huge_frame_is_handled(received: Received) -> None:
    async with ForwardServer(received, port=0, max_frame_bytes=4 * 1024 * 1024) as server:
        huge_reader, huge = await connect(server)
        huge.write(msgpack.packb(["t", [[T0, {}]] * 300_000, {"chunk": "huge"}]))
        await eventually(lambda: server.stats.events > 0)
        reader, writer = await connect(server)
        started = time.monotonic()
        writer.write(msgpack.packb(["t", T0, {"n": 1}, {"chunk": "small"}]))
        assert await read_acks(reader) == [{"ack": "small"}]
        waited = time.monotonic() - started
        assert server.stats.events < 300_001, "the small frame was answered mid-way"
        assert await read_acks(huge_reader) == [{"ack": "huge"}]
    assert waited < 5, f"a small frame waited {waited:.2f} s behind a huge one"
    assert max(len(b) for b in received.batches) <= server.limits.batch_events


# --- connections have deadlines -------------------------------------------------

SHORT = ForwardLimits(
    idle_timeout_seconds=2.0, read_timeout_seconds=2.0, frame_deadline_seconds=3.0
)


async def test_an_idle_connection_is_closed_after_the_idle_timeout(received: Received) -> None:
    async with ForwardServer(received, port=0, limits=SHORT) as server:
        reader, _ = await connect(server)
        started = time.monotonic()
        await assert_closed_by_server(reader, within=30)
        assert time.monotonic() - started >= 2.0
        assert server.stats.rejected == {"idle_timeout": 1}


async def test_a_frame_that_stops_arriving_is_cut_at_the_read_timeout(received: Received) -> None:
    async with ForwardServer(received, port=0, limits=SHORT) as server:
        reader, writer = await connect(server)
        writer.write(msgpack.packb(["t", T0, {"n": 1}])[:5])
        await assert_closed_by_server(reader, within=30)
        assert server.stats.rejected == {"read_timeout": 1}


async def test_a_frame_trickled_a_byte_a_second_is_cut_at_the_frame_deadline(
    received: Received,
) -> None:
    limits = ForwardLimits(frame_deadline_seconds=3.0)
    async with ForwardServer(received, port=0, limits=limits) as server:
        reader, writer = await connect(server)
        frame = msgpack.packb(["t", T0, {"blob": "x" * 100}])
        started = time.monotonic()
        for byte in frame:
            if reader.at_eof() or writer.is_closing():
                break
            with contextlib.suppress(ConnectionError):
                writer.write(bytes([byte]))
                await writer.drain()
            if server.stats.rejected:
                break
            await asyncio.sleep(1.0)
        await assert_closed_by_server(reader, within=30)
        assert server.stats.rejected == {"frame_deadline": 1}
        assert 3.0 <= time.monotonic() - started < 30
        assert received.events == []


async def test_incomplete_frames_across_connections_are_bounded(received: Received) -> None:
    limits = ForwardLimits(max_buffered_bytes=100_000)
    async with ForwardServer(received, port=0, limits=limits) as server:
        part = msgpack.packb(["t", T0, {"blob": "x" * 60_000}])[:-10]
        _, first = await connect(server)
        first.write(part)
        await eventually(lambda: server.buffered_bytes() == len(part))
        reader2, second = await connect(server)
        second.write(part)
        await assert_closed_by_server(reader2)
        assert server.stats.rejected == {"buffer_full": 1}
        assert server.buffered_bytes() == len(part)
