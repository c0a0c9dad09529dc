"""Specification of the forward-protocol decoder: golden bytes for the four modes,
time encodings, framing, limits and garbage."""

from __future__ import annotations

import contextlib
import gzip
import math
import struct
from fractions import Fraction
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.forward import (
    DEFAULT_MAX_FRAME_BYTES,
    ForwardEvent,
    ForwardMessage,
    ForwardProtocolError,
    ack_response,
    decode_message,
    parse_frame,
)
from connectors.forward_decoder import FrameDecoder, decode, parse_frame_bytes

T0 = 1764324000  # 2025-11-28T10:00:00Z
RECORD = {"request_id": "a1b2", "features": {"price": 12.5, "country": "DE"}, "prediction": 0.13}


def event_time(seconds: int, nanos: int) -> msgpack.ExtType:
    return msgpack.ExtType(0, struct.pack(">II", seconds, nanos))


def nested(depth: int) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for _ in range(depth):
        record = {"k": [record]}
    return record


def packed_entries(*entries: tuple[Any, dict[str, Any]]) -> bytes:
    return b"".join(msgpack.packb([t, r]) for t, r in entries)


# --- the four modes -----------------------------------------------------------


def test_message_mode_golden_bytes_as_fluent_logger_sends_them() -> None:
    # ["app.ctr", EventTime(T0, 123456789), {"price": 12.5, "country": "DE"}]
    frame = bytes.fromhex(
        "93a76170702e637472d700692972a0075bcd15"
        "82a57072696365cb4029000000000000a7636f756e747279a24445"
    )
    assert decode(frame) == [
        ForwardMessage(
            tag="app.ctr",
            events=[
                ForwardEvent("app.ctr", 1764324000.123456789, {"price": 12.5, "country": "DE"})
            ],
            chunk=None,
        )
    ]


def test_message_mode_with_chunk_option() -> None:
    frame = msgpack.packb(["app.ctr", T0, RECORD, {"chunk": "c-1"}])
    assert decode(frame) == [
        ForwardMessage("app.ctr", [ForwardEvent("app.ctr", T0, RECORD)], "c-1")
    ]


def test_forward_mode_golden_bytes() -> None:
    frame = msgpack.packb(
        ["app.ctr", [[T0, {"n": 1}], [event_time(T0, 5), {"n": 2}]], {"chunk": "c-2", "size": 2}]
    )
    assert decode(frame) == [
        ForwardMessage(
            "app.ctr",
            [ForwardEvent("app.ctr", T0, {"n": 1}), ForwardEvent("app.ctr", T0 + 5e-9, {"n": 2})],
            "c-2",
        )
    ]


def test_packed_forward_mode_golden_bytes() -> None:
    entries = packed_entries((T0, {"n": 1}), (event_time(T0, 1), {"n": 2}))
    frame = msgpack.packb(["app.ctr", entries, {"chunk": "c-3"}])
    assert frame[9] == 0xC4  # entries travel as msgpack bin 8
    assert decode(frame) == [
        ForwardMessage(
            "app.ctr",
            [ForwardEvent("app.ctr", T0, {"n": 1}), ForwardEvent("app.ctr", T0 + 1e-9, {"n": 2})],
            "c-3",
        )
    ]


def test_packed_forward_mode_accepts_entries_sent_as_str_by_old_clients() -> None:
    entries = packed_entries((T0, {"n": 1}), (T0 + 1, {"n": 2}))
    frame = msgpack.packb(["app.ctr", entries], use_bin_type=False)  # raw, not bin
    [message] = decode(frame)
    assert [e.record for e in message.events] == [{"n": 1}, {"n": 2}]


def test_compressed_packed_forward_mode_golden_bytes() -> None:
    entries = packed_entries((T0, {"n": 1}), (T0 + 1, {"n": 2}))
    frame = msgpack.packb(
        ["app.ctr", gzip.compress(entries), {"compressed": "gzip", "chunk": "c-4"}]
    )
    [message] = decode(frame)
    assert message.chunk == "c-4"
    assert message.events == [
        ForwardEvent("app.ctr", T0, {"n": 1}),
        ForwardEvent("app.ctr", T0 + 1, {"n": 2}),
    ]


def test_compressed_packed_forward_reads_every_gzip_member() -> None:
    first = gzip.compress(packed_entries((T0, {"n": 1})))
    second = gzip.compress(packed_entries((T0 + 1, {"n": 2}), (T0 + 2, {"n": 3})))
    [message] = decode(msgpack.packb(["t", first + second, {"compressed": "gzip"}]))
    assert [e.record["n"] for e in message.events] == [1, 2, 3]


def test_ack_response_is_a_msgpack_map_with_the_chunk() -> None:
    assert ack_response("c-1") == b"\x81\xa3ack\xa3c-1"
    assert msgpack.unpackb(ack_response("c-1")) == {"ack": "c-1"}


# --- time and records ---------------------------------------------------------


@pytest.mark.parametrize(
    ("wire_time", "seconds"),
    [
        (T0, 1764324000.0),
        (T0 + 0.25, 1764324000.25),
        (event_time(T0, 0), 1764324000.0),
        (event_time(T0, 999_999_999), (T0 * 10**9 + 999_999_999) / 10**9),
        (event_time(1, 1), 1.000000001),  # near the epoch a float holds every nanosecond
    ],
)
def test_time_as_int_float_or_event_time(wire_time: object, seconds: float) -> None:
    [message] = decode(msgpack.packb(["t", wire_time, {}]))
    assert message.events[0].time == seconds


def test_event_times_one_float_step_apart_stay_distinct() -> None:
    # A float64 near 1.7e9 s steps by ~238 ns: nanoseconds finer than that
    # cannot survive in ForwardEvent.time, coarser differences do.
    early, late = (
        decode(msgpack.packb(["t", event_time(T0, ns), {}]))[0].events[0].time
        for ns in (123_456_000, 123_456_239)
    )
    assert early == (T0 * 10**9 + 123_456_000) / 10**9
    assert late == math.nextafter(early, math.inf)


def test_bytes_keys_and_values_become_text_and_binary_stays_bytes() -> None:
    record = {b"country": b"DE", "blob": b"\xff\xfe", "nested": {b"k": [b"v"]}}
    [message] = decode(msgpack.packb(["t", T0, record]))
    assert message.events[0].record == {
        "country": "DE",
        "blob": b"\xff\xfe",
        "nested": {"k": ["v"]},
    }


# --- framing ------------------------------------------------------------------


def test_nil_heartbeat_is_ignored() -> None:
    frame = msgpack.packb(["t", T0, {"n": 1}])
    assert decode(b"\xc0" + frame + b"\xc0") == decode(frame)
    assert decode(b"\xc0") == []


def test_feeding_split_at_every_byte_boundary_gives_the_same_messages() -> None:
    stream = b"".join(
        [
            msgpack.packb(["a", event_time(T0, 7), RECORD, {"chunk": "x"}]),
            b"\xc0",
            msgpack.packb(["b", [[T0, {"n": 1}]]]),
            msgpack.packb(
                ["c", gzip.compress(packed_entries((T0, {"n": 2}))), {"compressed": "gzip"}]
            ),
        ]
    )
    expected = decode(stream)
    assert len(expected) == 3
    for cut in range(len(stream) + 1):
        decoder = FrameDecoder()
        got = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert [frame.decode_all() for frame in got] == expected, cut
        assert decoder.pending_bytes == 0


def test_feeding_one_byte_at_a_time() -> None:
    stream = msgpack.packb(["t", T0, RECORD]) * 3
    decoder = FrameDecoder()
    got = [f.decode_all() for i in range(len(stream)) for f in decoder.feed(stream[i : i + 1])]
    assert got == decode(stream)


def test_truncated_buffer_is_an_error_for_decode_but_pending_for_the_frame_decoder() -> None:
    frame = msgpack.packb(["t", T0, RECORD])
    decoder = FrameDecoder()
    assert decoder.feed(frame[:-3]) == []
    assert decoder.pending_bytes == len(frame) - 3
    with pytest.raises(ForwardProtocolError, match="truncated frame"):
        decode(frame[:-3])


def test_default_frame_limit_is_8_mib() -> None:
    assert DEFAULT_MAX_FRAME_BYTES == 8 * 1024 * 1024


def test_frame_larger_than_the_limit_is_rejected_even_when_fed_in_small_reads() -> None:
    frame = msgpack.packb(["t", [[T0, {"n": i}] for i in range(100)]])
    decoder = FrameDecoder(max_frame_bytes=len(frame) - 1)
    with pytest.raises(ForwardProtocolError, match=f"frame exceeds {len(frame) - 1} bytes") as exc:
        for i in range(0, len(frame), 16):
            decoder.feed(frame[i : i + 16])
    assert exc.value.reason == "oversize_frame"


def test_frame_of_exactly_the_limit_passes_and_small_frames_sharing_a_read_pass() -> None:
    frame = msgpack.packb(["t", T0, {"n": 1}])
    assert len(decode(frame, max_frame_bytes=len(frame))) == 1
    # Ten frames in one read: the limit is per frame, not per read.
    assert len(decode(frame * 10, max_frame_bytes=len(frame))) == 10


def test_gzip_bomb_is_cut_at_the_limit_without_inflating_it() -> None:
    # One bin entry (bin 32 header) bigger than the limit, gzipped to a few kB.
    entry = b"\xc6" + (DEFAULT_MAX_FRAME_BYTES + 1).to_bytes(4, "big")
    bomb = gzip.compress(entry + b"\x00" * (DEFAULT_MAX_FRAME_BYTES + 1))
    assert len(bomb) < 20_000
    [message] = decode(msgpack.packb(["t", bomb, {"compressed": "gzip", "chunk": "c"}]))
    [bad] = message.bad
    assert bad.reason == "oversize_frame"
    assert "decompressed entries exceed 8388608 bytes" in bad.detail


def test_many_gzip_members_decompress_in_linear_work() -> None:
    # 400,000 empty members: a quadratic reader copies the rest of the stream per member.
    members = gzip.compress(b"") * 400_000
    [message] = decode(msgpack.packb(["t", members, {"compressed": "gzip"}]))
    assert (message.events, message.bad) == ([], [])


def test_batches_bound_the_work_of_one_step() -> None:
    frame = parse_frame(["t", [[T0, {"n": i}] for i in range(2_500)], {"chunk": "c"}])
    batches = list(frame.batches(1_000))
    assert [len(b.events) for b in batches] == [1_000, 1_000, 500]
    gzipped = parse_frame(["t", gzip.compress(b"") * 3_000, {"compressed": "gzip"}])
    assert len(list(gzipped.batches(1_000))) == 3  # empty members are work too


# --- a frame that cannot be read at all is refused ------------------------------


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        ({"tag": "t"}, "message must be an array, found map"),
        ("t", "message must be an array, found str"),
        (["t"], "at least 2 elements, found 1"),
        ([42, T0, {}], "tag must be a string, found int"),
        ([None, T0, {}], "tag must be a string, found nil"),
        (["t", T0], "Message mode: expected 3 or 4 elements"),
        (["t", T0, {}, {}, {}], "Message mode: expected 3 or 4 elements"),
        (["t", T0, {}, "opt"], "Message mode: option must be a map, found str"),
        (["t", [], {"compressed": "gzip"}], "Forward mode: option compressed needs packed"),
        (["t", b"\x92\x01\x80", {"chunk": 5}], "option chunk must be a string, found int"),
        (["t", gzip.compress(b"\x90"), {"compressed": "zstd"}], "unknown compression 'zstd'"),
    ],
)
def test_garbage_raises_an_error_naming_the_problem(obj: object, problem: str) -> None:
    with pytest.raises(ForwardProtocolError, match=problem):
        decode_message(obj)


# --- a bad entry is one bad entry: the rest of its frame is accepted ------------


@pytest.mark.parametrize(
    ("obj", "reason", "problem"),
    [
        (["t", T0, [1, 2]], "not_a_map", "Message mode: record must be a map, found array"),
        (["t", T0, "oops"], "not_a_map", "Message mode: record must be a map, found str"),
        (["t", True, {}], "bad_time", "time must be an integer, float or EventTime, found bool"),
        (["t", None, {}], "bad_time", "time must be an integer, float or EventTime, found nil"),
        (["t", -1, {}], "bad_time", "time must be finite and not negative"),
        (["t", float("nan"), {}], "bad_time", "time must be finite and not negative"),
        (["t", msgpack.ExtType(1, b"\0" * 8), {}], "bad_time", "found code 1 with 8 bytes"),
        (["t", msgpack.ExtType(0, b"\0" * 4), {}], "bad_time", "found code 0 with 4 bytes"),
        (["t", event_time(T0, 10**9), {}], "bad_time", "nanoseconds out of range"),
        (["t", T0, {1: "x"}], "bad_key", "Message mode: record key must be a string, found int"),
        (["t", T0, {b"\xff": 1}], "bad_key", "Message mode: record key is not valid UTF-8"),
        (["t", [[T0, {}], [T0]]], "bad_entry", "Forward mode entry 1: entry must be a"),
        (["t", [[T0, {}], [T0, 7]]], "not_a_map", "Forward mode entry 1: record must be a map"),
        (["t", b"\x92\x01"], "truncated", "entry 0 on: truncated packed entries"),
        (["t", packed_entries((T0, {}), (T0, {}))[:-1]], "truncated", "PackedForward mode entry 1"),
        (["t", b"\xc1"], "bad_packed", "PackedForward mode entry 0 on: invalid msgpack entries"),
        (["t", b"\x01"], "bad_entry", "PackedForward mode entry 0: entry must be a"),
        (["t", b"not gzip", {"compressed": "gzip"}], "bad_gzip", "invalid gzip data"),
        (
            ["t", gzip.compress(packed_entries((T0, {})))[:-4], {"compressed": "gzip"}],
            "truncated",
            "gzip data truncated",
        ),
        (["t", T0, nested(70)], "too_deep", "Message mode: record nested deeper than 64"),
    ],
)
def test_a_bad_entry_is_reported_with_its_reason(obj: object, reason: str, problem: str) -> None:
    message = decode_message(obj)
    [bad] = message.bad
    assert bad.reason == reason
    assert problem in bad.detail


def test_a_frame_of_99_good_entries_and_1_bad_keeps_the_99() -> None:
    poisons: list[Any] = [
        [T0, {b"\xff\xfe": 1}],
        [T0, {7: "seven"}],
        [T0, nested(65)],
        [T0, ["not", "a", "map"]],
        ["yesterday", {"n": 1}],
    ]
    for poison in poisons:
        good = [[T0 + i, {"n": i}] for i in range(99)]
        frame = msgpack.packb(["t", [*good[:40], poison, *good[40:]], {"chunk": "c"}])
        for sent in (frame, packed_frame([*good[:40], poison, *good[40:]])):
            [message] = decode(sent)
            assert [e.record["n"] for e in message.events] == list(range(99))
            [bad] = message.bad
            assert bad.index == 40
            assert message.chunk == "c"


def packed_frame(entries: list[Any]) -> bytes:
    stream = b"".join(msgpack.packb(e) for e in entries)
    return msgpack.packb(["t", gzip.compress(stream), {"compressed": "gzip", "chunk": "c"}])


def test_a_flood_of_bad_entries_is_kept_as_a_hundred_and_one_summary() -> None:
    [message] = decode(msgpack.packb(["t", b"\x01" * 5_000 + packed_entries((T0, {"n": 1}))]))
    assert [e.record for e in message.events] == [{"n": 1}]
    assert len(message.bad) == 101
    summary = message.bad[-1]
    assert summary.reason == "too_many_bad_entries"
    assert "4900 more bad entries from entry 100 on" in summary.detail


def test_a_bad_entry_keeps_a_json_safe_copy_for_its_dead_letter() -> None:
    [bad] = decode_message(
        ["t", [[T0, {b"\xff": b"\x00\x01", "n": [1, msgpack.ExtType(3, b"x")]}]]]
    ).bad
    assert bad.raw == [T0, {"\\xff": "\x00\x01", "n": [1, "ext(code 3, 1 bytes)"]}]
    assert isinstance(bad.raw, list)
    assert all(isinstance(k, str) for k in bad.raw[1])


def test_garbage_bytes_raise_a_bad_frame_error_without_quoting_them() -> None:
    with pytest.raises(ForwardProtocolError, match=r"invalid msgpack \(\w+\)") as exc:
        decode(b"\xc1secret")
    assert exc.value.reason == "bad_frame"
    assert "secret" not in str(exc.value)


def test_protocol_errors_name_types_never_record_values() -> None:
    with pytest.raises(ForwardProtocolError) as exc:
        decode(msgpack.packb(["t", T0, {"password": "hunter2"}, "not-a-map"]))
    assert "hunter2" not in str(exc.value)
    assert exc.value.reason == "bad_message"


def test_non_string_map_keys_anywhere_in_a_record_make_it_a_bad_entry() -> None:
    [message] = decode(msgpack.packb(["t", T0, {"a": {1: 2}}]))
    assert message.events == []
    assert [b.reason for b in message.bad] == ["bad_key"]


# --- properties ---------------------------------------------------------------

msgpack_objects = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text() | st.binary() | st.integers(), children, max_size=5)
    ),
    max_leaves=20,
)
wire_times = (
    st.integers(min_value=-1, max_value=2**33)
    | st.floats()
    | st.builds(msgpack.ExtType, st.integers(0, 2), st.binary(min_size=7, max_size=9))
)
options = (
    st.none()
    | msgpack_objects
    | st.fixed_dictionaries(
        {}, optional={"chunk": msgpack_objects, "compressed": st.sampled_from(["gzip", "text"])}
    )
)
# Shapes close to real messages, so the search reaches past the first checks.
near_messages = st.one_of(
    msgpack_objects,
    st.tuples(st.text(), wire_times, msgpack_objects, options).map(list),
    st.tuples(st.text(), st.lists(st.lists(wire_times | msgpack_objects, max_size=3)), options).map(
        list
    ),
    st.tuples(st.text(), st.binary(), options).map(list),
)


@given(near_messages)
def test_decode_message_raises_only_forward_protocol_error(obj: object) -> None:
    try:
        message = decode_message(obj)
    except ForwardProtocolError:
        return
    assert all(isinstance(k, str) for e in message.events for k in e.record)
    assert all(b.reason and b.detail for b in message.bad)
    assert all(isinstance(e.time, float) for e in message.events)


@given(st.binary(max_size=200))
def test_frame_decoder_raises_only_forward_protocol_error_on_any_bytes(data: bytes) -> None:
    with contextlib.suppress(ForwardProtocolError):
        FrameDecoder(max_frame_bytes=64).feed(data)


@given(st.integers(0, 2**32 - 1), st.integers(0, 10**9 - 1))
def test_event_time_decodes_to_the_nearest_float(seconds: int, nanos: int) -> None:
    [message] = decode(msgpack.packb(["t", event_time(seconds, nanos), {}]))
    got = message.events[0].time
    exact = Fraction(seconds * 10**9 + nanos, 10**9)
    error = abs(Fraction(got) - exact)
    assert error <= abs(Fraction(math.nextafter(got, math.inf)) - exact)
    assert error <= abs(Fraction(math.nextafter(got, -math.inf)) - exact)


def test_forward_frames_read_from_bytes_keep_their_entries_as_bytes_until_batched() -> None:
    entries = [[T0, {"n": i}] for i in range(1_000)]
    frame = parse_frame_bytes(msgpack.packb(["t", entries, {"chunk": "c"}]))
    assert frame.entries is None and frame.lazy is not None
    assert (frame.mode, frame.chunk) == ("Forward", "c")
    assert [len(b.events) for b in frame.batches(400)] == [400, 400, 200]
    assert frame.decode_all() == decode_message(["t", entries, {"chunk": "c"}])


def test_an_entry_that_cannot_be_unpacked_ends_its_frame_as_one_bad_entry() -> None:
    # A map used as a map key passes the frame scan but cannot become a Python dict.
    good = msgpack.packb([T0, {"n": 1}])
    unhashable = b"\x92\x00\x81\x81\xa1a\x01\x02"  # [0, {{"a": 1}: 2}]
    raw = b"\x93\xa1t\x93" + good + unhashable + good + msgpack.packb({"chunk": "c"})
    [message] = decode(raw)
    assert [e.record for e in message.events] == [{"n": 1}]
    [bad] = message.bad
    assert (bad.index, bad.reason) == (1, "bad_packed")
    assert message.chunk == "c"
