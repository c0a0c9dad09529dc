"""Fluentd forward protocol v1: pure decoding of the four event modes, no sockets.

Holds the frame and message types, `parse_frame` for one unpacked msgpack object (the
header: tag, mode, option), `Frame.batches` which decodes its entries a bounded batch
at a time, the incremental `FrameDecoder` a server feeds with socket reads, the
whole-buffer `decode` helper and `ack_response`. A bad entry (see connectors.forward_entries)
is a BadEntry beside the good events; only a frame that cannot be read at all raises.

Spec: https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import msgpack

from connectors.forward_entries import (
    BadEntry,
    ForwardEvent,
    ForwardProtocolError,
    Step,
    as_text,
    decode_entry,
    gunzip_pieces,
    is_array,
    lazy_entries,
    object_unpacker,
    packed_entries,
    type_name,
)

__all__ = [
    "DEFAULT_BATCH_EVENTS",
    "DEFAULT_MAX_FRAME_BYTES",
    "BadEntry",
    "Batch",
    "ForwardEvent",
    "ForwardMessage",
    "ForwardProtocolError",
    "Frame",
    "FrameDecoder",
    "ack_response",
    "decode",
    "decode_message",
    "parse_frame",
    "parse_frame_bytes",
]

DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024
# Bad entries kept one by one per frame; beyond that they are counted in one summary, so a
# frame of a million one-byte bad entries is one frame's worth of dead letters, not a flood.
MAX_BAD_ENTRIES = 100
# Entries (or gzip steps) decoded per batch: a few milliseconds of work, after which the
# server lets the event loop serve every other connection and /healthz.
DEFAULT_BATCH_EVENTS = 250


@dataclass(frozen=True, slots=True)
class Batch:
    events: list[ForwardEvent]
    bad: list[BadEntry]


@dataclass(frozen=True, slots=True)
class ForwardMessage:
    tag: str
    events: list[ForwardEvent]
    chunk: str | None
    bad: list[BadEntry] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame whose header was read: its entries are decoded by `batches`."""

    tag: str
    mode: str
    chunk: str | None
    entries: Sequence[Any] | None = None  # Message and Forward modes: unpacked already
    packed: bytes | None = None  # PackedForward: the entry stream, gunzipped or not
    compressed: bool = False
    limit: int = DEFAULT_MAX_FRAME_BYTES  # most bytes a compressed stream may inflate to
    # Forward mode read from bytes: (frame bytes, offset of the first entry, entry count)
    lazy: tuple[bytes, int, int] | None = field(default=None, repr=False)

    def batches(self, size: int = DEFAULT_BATCH_EVENTS) -> Iterator[Batch]:
        """Batches of at most `size` steps of work each (an entry, or a gzip step)."""
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        events: list[ForwardEvent] = []
        bad: list[BadEntry] = []
        work = kept = dropped = 0
        first_dropped = 0
        for step in self._steps():
            if isinstance(step, tuple):
                index, entry = step
                where = (
                    "Message mode" if self.mode == "Message" else f"{self.mode} mode entry {index}"
                )
                decoded = decode_entry(self.tag, index, entry, where)
                if not isinstance(decoded, BadEntry):
                    events.append(decoded)
                    step = None
                else:
                    step = decoded
            if step is not None:
                if kept < MAX_BAD_ENTRIES:
                    bad.append(step)
                    kept += 1
                else:
                    first_dropped = first_dropped or step.index
                    dropped += 1
            work += 1
            if work >= size:
                yield Batch(events, bad)
                events, bad, work = [], [], 0
        if dropped:
            detail = (
                f"{self.mode} mode: {dropped} more bad entries from entry {first_dropped} on "
                f"(only the first {MAX_BAD_ENTRIES} of a frame are kept one by one)"
            )
            bad.append(BadEntry(self.tag, first_dropped, "too_many_bad_entries", detail, None))
        if events or bad:
            yield Batch(events, bad)

    def decode_all(self) -> ForwardMessage:
        events: list[ForwardEvent] = []
        bad: list[BadEntry] = []
        for batch in self.batches():
            events.extend(batch.events)
            bad.extend(batch.bad)
        return ForwardMessage(self.tag, events, self.chunk, bad)

    def _steps(self) -> Iterator[Step]:
        if self.lazy is not None:
            yield from lazy_entries(*self.lazy, self.mode, self.tag)
            return
        if self.entries is not None:
            yield from enumerate(self.entries)
            return
        data = self.packed or b""
        pieces = gunzip_pieces(data, self.limit) if self.compressed else iter([data])
        yield from packed_entries(pieces, self.mode, self.tag, self.limit)


def _read_option(message: Sequence[Any], size: int, mode: str) -> dict[Any, Any]:
    if len(message) == size:
        return {}
    if len(message) != size + 1:
        raise ForwardProtocolError(f"{mode} mode: expected {size} or {size + 1} elements")
    option = message[size]
    if option is None:
        return {}
    if not isinstance(option, dict):
        raise ForwardProtocolError(f"{mode} mode: option must be a map, found {type_name(option)}")
    return option


def _read_chunk(option: dict[Any, Any]) -> str | None:
    chunk = option.get("chunk")
    return None if chunk is None else as_text(chunk, "option chunk")


def _packed_frame(tag: str, entries: bytes | str, option: dict[Any, Any], limit: int) -> Frame:
    # A str stream comes from old clients; surrogateescape gives back its exact bytes.
    data = entries.encode("utf-8", "surrogateescape") if isinstance(entries, str) else entries
    compressed = option.get("compressed")
    if compressed is None:
        return Frame(tag, "PackedForward", _read_chunk(option), packed=data, limit=limit)
    if compressed != "gzip":
        shown = repr(compressed[:16]) if isinstance(compressed, str) else type_name(compressed)
        raise ForwardProtocolError(
            f"CompressedPackedForward mode: unknown compression {shown}, only 'gzip'"
        )
    return Frame(
        tag,
        "CompressedPackedForward",
        _read_chunk(option),
        packed=data,
        compressed=True,
        limit=limit,
    )


def parse_frame(obj: object, max_decompressed_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> Frame:
    """Read one unpacked msgpack object's header in any of the four modes.

    The mode is told by the second element: a time (Message), an array of entries
    (Forward), or a bin/str stream of entries (PackedForward, gzip when
    `option.compressed == "gzip"`). Raises ForwardProtocolError, nothing else, and only
    when the frame as a whole is unreadable; its entries are checked by `Frame.batches`.
    """
    if not is_array(obj):
        raise ForwardProtocolError(f"message must be an array, found {type_name(obj)}")
    if len(obj) < 2:
        raise ForwardProtocolError(f"message must have at least 2 elements, found {len(obj)}")
    tag = as_text(obj[0], "tag")
    second = obj[1]
    if is_array(second):
        option = _read_option(obj, 2, "Forward")
        if option.get("compressed") is not None:
            raise ForwardProtocolError("Forward mode: option compressed needs packed entries")
        return Frame(tag, "Forward", _read_chunk(option), entries=second)
    if isinstance(second, bytes | str):
        option = _read_option(obj, 2, "PackedForward")
        return _packed_frame(tag, second, option, max_decompressed_bytes)
    option = _read_option(obj, 3, "Message")
    return Frame(tag, "Message", _read_chunk(option), entries=[[second, obj[2]]])


def decode_message(
    obj: object, max_decompressed_bytes: int = DEFAULT_MAX_FRAME_BYTES
) -> ForwardMessage:
    """A whole frame decoded at once: its events and its bad entries."""
    return parse_frame(obj, max_decompressed_bytes).decode_all()


_ARRAY_HEADERS = frozenset([*range(0x90, 0xA0), 0xDC, 0xDD])


def parse_frame_bytes(raw: bytes, max_decompressed_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> Frame:
    """`parse_frame` of one complete frame's bytes. A Forward-mode frame's entries stay
    bytes until `Frame.batches` unpacks them a batch at a time; the other modes carry one
    entry or one bin stream, and are unpacked whole."""
    try:
        header = _forward_header(raw)
        if header is None:
            unpacker = object_unpacker(len(raw) + 16)
            unpacker.feed(raw)
            return parse_frame(unpacker.unpack(), max_decompressed_bytes)
    except ForwardProtocolError:
        raise
    except Exception as exc:  # msgpack documents no narrower set (and keys may be unhashable)
        raise ForwardProtocolError(f"invalid msgpack ({type(exc).__name__})", "bad_frame") from None
    tag, rest, start, count = header
    frame = parse_frame([tag, (), *rest], max_decompressed_bytes)  # checks tag and option
    return replace(frame, entries=None, lazy=(raw, start, count))


def _forward_header(raw: bytes) -> tuple[object, list[object], int, int] | None:
    """Tag, option elements, entries offset and count of a Forward-mode frame; None when
    the frame is in another mode (or not an array: parse_frame says what it is)."""
    unpacker = object_unpacker(len(raw) + 16)
    unpacker.feed(raw)
    if raw[:1] and raw[0] not in _ARRAY_HEADERS:
        return None
    size = unpacker.read_array_header()
    if size < 2:
        return None
    tag = unpacker.unpack()
    if raw[unpacker.tell()] not in _ARRAY_HEADERS:
        return None
    count = unpacker.read_array_header()
    start = unpacker.tell()
    for _ in range(count):
        unpacker.skip()
    return tag, [unpacker.unpack() for _ in range(size - 2)], start, count


class FrameDecoder:
    """Incremental decoder for one connection: feed socket reads, get complete frames.

    Frame boundaries are found by skipping through the msgpack structure, which builds no
    Python objects: an incomplete frame costs its bytes only (`pending_bytes`). A frame
    (one top-level msgpack object) larger than `max_frame_bytes`, or bytes that are not
    msgpack, raise ForwardProtocolError; after any error the connection must be dropped.
    """

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes < 1:
            raise ValueError(f"max_frame_bytes must be positive, got {max_frame_bytes}")
        self._max = max_frame_bytes
        self._fed = 0
        self._frame_start = 0
        self._buffer = bytearray()  # the stream's bytes from offset _frame_start on
        self._scanner = msgpack.Unpacker(max_buffer_size=max_frame_bytes)

    @property
    def max_frame_bytes(self) -> int:
        return self._max

    @property
    def pending_bytes(self) -> int:
        """Bytes received of a frame not yet complete."""
        return self._fed - self._frame_start

    def feed(self, data: bytes) -> list[Frame]:
        return [parse_frame_bytes(raw, self._max) for raw in self.feed_raw(data)]

    def feed_objects(self, data: bytes) -> list[object]:
        """The complete top-level objects `data` finished, unpacked (the handshake's)."""
        objects: list[object] = []
        for raw in self.feed_raw(data):
            unpacker = object_unpacker(len(raw) + 16)
            unpacker.feed(raw)
            try:
                objects.append(unpacker.unpack())
            except Exception as exc:  # msgpack documents no narrower set
                raise ForwardProtocolError(
                    f"invalid msgpack ({type(exc).__name__})", reason="bad_frame"
                ) from None
        return objects

    def feed_raw(self, data: bytes) -> list[bytes]:
        """The bytes of each complete frame `data` finished (nil heartbeats left out)."""
        frames: list[bytes] = []
        view = memoryview(data)
        # The scanner's buffer limit does not bound a frame that arrives in pieces: count
        # the frame's bytes here, and feed no more than the room left so small frames
        # sharing a read still pass.
        while True:
            room = self._max - self.pending_bytes
            if view and room == 0:
                raise ForwardProtocolError(
                    f"frame exceeds {self._max} bytes", reason="oversize_frame"
                )
            piece, view = view[:room], view[room:]
            self._feed_scanner(piece)
            frames.extend(self._complete_frames())
            if not view:
                return frames

    def _feed_scanner(self, piece: memoryview) -> None:
        try:
            self._scanner.feed(piece)
        except msgpack.BufferFull:
            raise ForwardProtocolError(
                f"frame exceeds {self._max} bytes", reason="oversize_frame"
            ) from None
        self._buffer += piece
        self._fed += len(piece)

    def _complete_frames(self) -> list[bytes]:
        frames: list[bytes] = []
        start = self._frame_start
        while True:
            try:
                self._scanner.skip()
            except msgpack.OutOfData:
                break
            except Exception as exc:  # msgpack documents no narrower set
                # Type name only: msgpack's messages can quote offending bytes.
                raise ForwardProtocolError(
                    f"invalid msgpack ({type(exc).__name__})", reason="bad_frame"
                ) from None
            end = int(self._scanner.tell())
            raw = bytes(self._buffer[start - self._frame_start : end - self._frame_start])
            if raw != b"\xc0":  # nil is a heartbeat
                frames.append(raw)
            start = end
        del self._buffer[: start - self._frame_start]
        self._frame_start = start
        return frames


def decode(data: bytes, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> list[ForwardMessage]:
    """Decode a whole buffer of frames; a trailing partial frame is an error."""
    decoder = FrameDecoder(max_frame_bytes)
    frames = decoder.feed(data)
    if decoder.pending_bytes:
        raise ForwardProtocolError(
            f"truncated frame: {decoder.pending_bytes} bytes left", reason="truncated_frame"
        )
    return [frame.decode_all() for frame in frames]


def ack_response(chunk: str) -> bytes:
    """The server's answer once a message carrying `option.chunk` is handled."""
    packed: bytes = msgpack.packb({"ack": chunk})
    return packed
