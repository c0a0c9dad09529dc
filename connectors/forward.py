"""Fluentd forward protocol v1: pure decoding of the four event modes, no sockets.

Holds the event and message types, `decode_message` for one unpacked msgpack
object, the incremental `FrameDecoder` a server feeds with socket reads, the
whole-buffer `decode` helper and `ack_response`.

Spec: https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, cast

import msgpack

DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024
# Deeper records are rejected: walking them recursively must stay far below
# Python's recursion limit, and no serving record is legitimately this deep.
MAX_RECORD_DEPTH = 64

_EVENT_TIME_CODE = 0
_EVENT_TIME_SIZE = 8  # big-endian uint32 seconds, then uint32 nanoseconds
_GZIP_WBITS = 16 + zlib.MAX_WBITS


@dataclass(frozen=True, slots=True)
class ForwardEvent:
    tag: str
    time: float
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ForwardMessage:
    tag: str
    events: list[ForwardEvent]
    chunk: str | None


class ForwardProtocolError(ValueError):
    """A frame or message that does not follow the protocol.

    The message names what was wrong and the type found, never a value: values
    may be sensitive record contents. `reason` is a short code for counters.
    """

    def __init__(self, message: str, reason: str = "bad_message") -> None:
        super().__init__(message)
        self.reason = reason


def _type_name(obj: object) -> str:
    names = {type(None): "nil", bool: "bool", dict: "map", list: "array"}
    return names.get(type(obj), type(obj).__name__)


def _as_text(obj: object, what: str) -> str:
    if isinstance(obj, bytes):
        try:
            return obj.decode("utf-8")
        except UnicodeDecodeError:
            raise ForwardProtocolError(f"{what} is not valid UTF-8") from None
    if not isinstance(obj, str):
        raise ForwardProtocolError(f"{what} must be a string, found {_type_name(obj)}")
    if not obj.isascii():
        try:
            # The frame decoder keeps invalid UTF-8 as lone surrogates (see FrameDecoder).
            obj.encode("utf-8")
        except UnicodeEncodeError:
            raise ForwardProtocolError(f"{what} is not valid UTF-8") from None
    return obj


def _decode_time(obj: object, where: str) -> float:
    if isinstance(obj, msgpack.ExtType):
        if obj.code != _EVENT_TIME_CODE or len(obj.data) != _EVENT_TIME_SIZE:
            raise ForwardProtocolError(
                f"{where}: time ext type must be EventTime (code 0, 8 bytes), "
                f"found code {obj.code} with {len(obj.data)} bytes"
            )
        seconds = int.from_bytes(obj.data[:4], "big")
        nanos = int.from_bytes(obj.data[4:], "big")
        if nanos >= 10**9:
            raise ForwardProtocolError(f"{where}: EventTime nanoseconds out of range")
        # int / int is correctly rounded: the nearest float to the exact instant.
        return (seconds * 10**9 + nanos) / 10**9
    if isinstance(obj, bool) or not isinstance(obj, int | float):
        raise ForwardProtocolError(
            f"{where}: time must be an integer, float or EventTime, found {_type_name(obj)}"
        )
    if obj < 0 or (isinstance(obj, float) and not math.isfinite(obj)):
        raise ForwardProtocolError(f"{where}: time must be finite and not negative")
    try:
        return float(obj)
    except OverflowError:
        raise ForwardProtocolError(f"{where}: time out of range") from None


def _normalize(value: object, where: str, depth: int) -> object:
    """String keys and UTF-8 text for bytes, at every level of a record."""
    if isinstance(value, dict | list) and depth > MAX_RECORD_DEPTH:
        raise ForwardProtocolError(f"{where}: record nested deeper than {MAX_RECORD_DEPTH}")
    if isinstance(value, dict):
        return {
            _as_text(k, f"{where}: record key"): _normalize(v, where, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_normalize(v, where, depth + 1) for v in value]
    if isinstance(value, bytes | str):
        try:
            return _as_text(value, "value")
        except ForwardProtocolError:
            # Binary payloads are data, not a protocol error: keep their bytes.
            return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    return value


def _decode_event(tag: str, time: object, record: object, where: str) -> ForwardEvent:
    seconds = _decode_time(time, where)
    if not isinstance(record, dict):
        raise ForwardProtocolError(f"{where}: record must be a map, found {_type_name(record)}")
    return ForwardEvent(
        tag=tag, time=seconds, record=cast(dict[str, Any], _normalize(record, where, 0))
    )


def _decode_entry(tag: str, entry: object, where: str) -> ForwardEvent:
    if not isinstance(entry, list) or len(entry) != 2:
        raise ForwardProtocolError(
            f"{where}: entry must be a [time, record] array, found {_type_name(entry)}"
        )
    return _decode_event(tag, entry[0], entry[1], where)


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress all gzip members, never producing more than `limit` bytes."""
    out: list[bytes] = []
    size = 0
    rest = data
    while rest:
        inflater = zlib.decompressobj(_GZIP_WBITS)
        try:
            # Asking for one byte beyond the limit tells "too big" from "exactly full".
            piece = inflater.decompress(rest, limit - size + 1)
        except zlib.error:
            raise ForwardProtocolError("CompressedPackedForward mode: invalid gzip data") from None
        size += len(piece)
        if size > limit:
            raise ForwardProtocolError(
                f"CompressedPackedForward mode: decompressed entries exceed {limit} bytes",
                reason="oversize_frame",
            )
        if not inflater.eof:
            raise ForwardProtocolError("CompressedPackedForward mode: gzip data truncated")
        out.append(piece)
        rest = inflater.unused_data
    return b"".join(out)


def _unpack_entries(data: bytes, mode: str) -> list[object]:
    unpacker = msgpack.Unpacker(
        raw=False, max_buffer_size=len(data) + 1, unicode_errors="surrogateescape"
    )
    # The C unpacker swallows a trailing partial entry silently: a nil sentinel
    # fed after the data comes back on its own only if every entry was complete
    # (otherwise it completes the partial entry, which is then not nil).
    unpacker.feed(data)
    unpacker.feed(b"\xc0")
    try:
        entries = list(unpacker)
    except Exception as exc:  # msgpack documents no narrower set
        raise ForwardProtocolError(
            f"{mode} mode: invalid msgpack entries ({type(exc).__name__})"
        ) from None
    if not entries or entries.pop() is not None:
        raise ForwardProtocolError(f"{mode} mode: truncated packed entries")
    return entries


def _read_option(message: list[Any], size: int, mode: str) -> dict[Any, Any]:
    if len(message) == size:
        return {}
    if len(message) != size + 1:
        raise ForwardProtocolError(f"{mode} mode: expected {size} or {size + 1} elements")
    option = message[size]
    if option is None:
        return {}
    if not isinstance(option, dict):
        raise ForwardProtocolError(f"{mode} mode: option must be a map, found {_type_name(option)}")
    return option


def _read_chunk(option: dict[Any, Any]) -> str | None:
    chunk = option.get("chunk")
    return None if chunk is None else _as_text(chunk, "option chunk")


def _decode_packed(
    tag: str, entries: bytes | str, option: dict[Any, Any], limit: int
) -> list[ForwardEvent]:
    # A str stream comes from old clients; surrogateescape gives back its exact bytes.
    data = entries.encode("utf-8", "surrogateescape") if isinstance(entries, str) else entries
    mode = "PackedForward"
    compressed = option.get("compressed")
    if compressed is not None:
        if compressed != "gzip":
            shown = repr(compressed[:16]) if isinstance(compressed, str) else _type_name(compressed)
            raise ForwardProtocolError(
                f"CompressedPackedForward mode: unknown compression {shown}, only 'gzip'"
            )
        mode = "CompressedPackedForward"
        data = _gunzip(data, limit)
    return [
        _decode_entry(tag, entry, f"{mode} mode entry {i}")
        for i, entry in enumerate(_unpack_entries(data, mode))
    ]


def decode_message(
    obj: object, max_decompressed_bytes: int = DEFAULT_MAX_FRAME_BYTES
) -> ForwardMessage:
    """Decode one unpacked msgpack object in any of the four modes.

    The mode is told by the second element: a time (Message), an array of
    entries (Forward), or a bin/str stream of entries (PackedForward, gzip when
    `option.compressed == "gzip"`). Raises ForwardProtocolError, nothing else.
    """
    if not isinstance(obj, list):
        raise ForwardProtocolError(f"message must be an array, found {_type_name(obj)}")
    if len(obj) < 2:
        raise ForwardProtocolError(f"message must have at least 2 elements, found {len(obj)}")
    tag = _as_text(obj[0], "tag")
    second = obj[1]
    if isinstance(second, list):
        option = _read_option(obj, 2, "Forward")
        if option.get("compressed") is not None:
            raise ForwardProtocolError("Forward mode: option compressed needs packed entries")
        events = [
            _decode_entry(tag, entry, f"Forward mode entry {i}") for i, entry in enumerate(second)
        ]
    elif isinstance(second, bytes | str):
        option = _read_option(obj, 2, "PackedForward")
        events = _decode_packed(tag, second, option, max_decompressed_bytes)
    else:
        option = _read_option(obj, 3, "Message")
        events = [_decode_event(tag, second, obj[2], "Message mode")]
    return ForwardMessage(tag=tag, events=events, chunk=_read_chunk(option))


class FrameDecoder:
    """Incremental decoder for one connection: feed socket reads, get messages.

    A frame (one top-level msgpack object) larger than `max_frame_bytes` raises
    ForwardProtocolError; after any error the connection must be dropped.
    """

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes < 1:
            raise ValueError(f"max_frame_bytes must be positive, got {max_frame_bytes}")
        self._max = max_frame_bytes
        self._fed = 0
        self._frame_start = 0
        # surrogateescape: an old client's str-typed PackedForward stream is not
        # UTF-8; keeping its bytes recoverable lets decode_message accept it.
        self._unpacker = msgpack.Unpacker(
            raw=False, max_buffer_size=max_frame_bytes, unicode_errors="surrogateescape"
        )

    @property
    def pending_bytes(self) -> int:
        """Bytes received of a frame not yet complete."""
        return self._fed - self._frame_start

    def feed(self, data: bytes) -> list[ForwardMessage]:
        messages: list[ForwardMessage] = []
        view = memoryview(data)
        # The C unpacker parses partial frames as bytes arrive, so its buffer
        # limit does not bound a frame: count the frame's bytes here, and feed
        # no more than the room left so small frames sharing a read still pass.
        while True:
            room = self._max - self.pending_bytes
            if view and room == 0:
                raise ForwardProtocolError(
                    f"frame exceeds {self._max} bytes", reason="oversize_frame"
                )
            piece, view = view[:room], view[room:]
            self._feed_unpacker(piece)
            messages.extend(self._drain())
            if not view:
                return messages

    def _feed_unpacker(self, piece: memoryview) -> None:
        try:
            self._unpacker.feed(piece)
        except msgpack.BufferFull:
            raise ForwardProtocolError(
                f"frame exceeds {self._max} bytes", reason="oversize_frame"
            ) from None
        self._fed += len(piece)

    def _drain(self) -> list[ForwardMessage]:
        messages: list[ForwardMessage] = []
        while True:
            try:
                obj = self._unpacker.unpack()
            except msgpack.OutOfData:
                return messages
            except Exception as exc:  # msgpack documents no narrower set
                # Type name only: msgpack's messages can quote offending bytes.
                raise ForwardProtocolError(
                    f"invalid msgpack ({type(exc).__name__})", reason="bad_frame"
                ) from None
            self._frame_start = int(self._unpacker.tell())
            if obj is not None:  # nil is a heartbeat
                messages.append(decode_message(obj, self._max))


def decode(data: bytes, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> list[ForwardMessage]:
    """Decode a whole buffer of frames; a trailing partial frame is an error."""
    decoder = FrameDecoder(max_frame_bytes)
    messages = decoder.feed(data)
    if decoder.pending_bytes:
        raise ForwardProtocolError(
            f"truncated frame: {decoder.pending_bytes} bytes left", reason="truncated_frame"
        )
    return messages


def ack_response(chunk: str) -> bytes:
    """The server's answer once a message carrying `option.chunk` is handled."""
    packed: bytes = msgpack.packb({"ack": chunk})
    return packed
