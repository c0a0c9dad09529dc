"""Forward protocol frames from bytes: the incremental `FrameDecoder` a server feeds with
socket reads, `parse_frame_bytes` for one complete frame, and the whole-buffer `decode`.
"""

from __future__ import annotations

from dataclasses import replace

import msgpack

from connectors.forward import (
    DEFAULT_MAX_FRAME_BYTES,
    ForwardMessage,
    ForwardProtocolError,
    Frame,
    parse_frame,
)
from connectors.forward_entries import object_unpacker

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
