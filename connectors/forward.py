"""Fluentd forward protocol v1: pure decoding of the four event modes, no sockets.

Holds the frame and message types, `parse_frame` for one unpacked msgpack object (the
header: tag, mode, option), `Frame.batches` which decodes its entries a bounded batch
at a time, and `ack_response`. Bytes off a socket: connectors.forward_decoder. A bad
entry (see connectors.forward_entries) is a BadEntry beside the good events; only a frame
that cannot be read at all raises.

Spec: https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
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
    "ack_response",
    "decode_message",
    "parse_frame",
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


def ack_response(chunk: str) -> bytes:
    """The server's answer once a message carrying `option.chunk` is handled."""
    packed: bytes = msgpack.packb({"ack": chunk})
    return packed
