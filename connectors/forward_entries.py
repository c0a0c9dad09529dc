"""Forward protocol entries, one at a time: a bad entry is a `BadEntry`, never a bad frame.

Holds the entry checks (time, record, keys, depth), the linear-time gzip reader and the
packed-entries stream. Every step does a bounded amount of work, so the server can hand
each batch on and let the event loop serve others between batches.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard, cast

import msgpack

# Deeper records are rejected: walking them recursively must stay far below
# Python's recursion limit, and no serving record is legitimately this deep.
MAX_RECORD_DEPTH = 64

_EVENT_TIME_CODE = 0
_EVENT_TIME_SIZE = 8  # big-endian uint32 seconds, then uint32 nanoseconds
_GZIP_WBITS = 16 + zlib.MAX_WBITS
# Compressed bytes offered to zlib per call start small and double: a member's unused
# tail is copied once per member, so small members cost little and big ones stay linear.
_FIRST_WINDOW = 256
_MAX_WINDOW = 1024 * 1024
_OUT_STEP = 256 * 1024  # decompressed bytes per call: one step's work stays bounded
_SHOWN_TEXT = 256  # a dead letter keeps this much of any one string of a bad entry


@dataclass(frozen=True, slots=True)
class ForwardEvent:
    tag: str
    time: float
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BadEntry:
    """One entry that could not be decoded. `reason` is a short code for counters,
    `detail` names where and what (types and sizes, never values), `raw` is the entry
    made JSON-safe for a dead letter (None when nothing of it could be read)."""

    tag: str
    index: int
    reason: str
    detail: str
    raw: object


class ForwardProtocolError(ValueError):
    """A frame, message or entry that does not follow the protocol.

    The message names what was wrong and the type found, never a value: values
    may be sensitive record contents. `reason` is a short code for counters.
    """

    def __init__(self, message: str, reason: str = "bad_message") -> None:
        super().__init__(message)
        self.reason = reason


def type_name(obj: object) -> str:
    names = {type(None): "nil", bool: "bool", dict: "map", list: "array", tuple: "array"}
    if isinstance(obj, msgpack.ExtType):
        return "ext"
    return names.get(type(obj), type(obj).__name__)


def is_array(obj: object) -> TypeGuard[Sequence[Any]]:
    """A msgpack array, unpacked as a tuple (use_list=False); an ExtType is a tuple too."""
    return isinstance(obj, list | tuple) and not isinstance(obj, msgpack.ExtType)


def as_text(obj: object, what: str, reason: str = "bad_message") -> str:
    if isinstance(obj, bytes):
        try:
            return obj.decode("utf-8")
        except UnicodeDecodeError:
            raise ForwardProtocolError(f"{what} is not valid UTF-8", reason) from None
    if not isinstance(obj, str):
        raise ForwardProtocolError(f"{what} must be a string, found {type_name(obj)}", reason)
    if not obj.isascii():
        try:
            # The frame decoder keeps invalid UTF-8 as lone surrogates (see FrameDecoder).
            obj.encode("utf-8")
        except UnicodeEncodeError:
            raise ForwardProtocolError(f"{what} is not valid UTF-8", reason) from None
    return obj


def decode_time(obj: object, where: str) -> float:
    if isinstance(obj, msgpack.ExtType):
        if obj.code != _EVENT_TIME_CODE or len(obj.data) != _EVENT_TIME_SIZE:
            raise ForwardProtocolError(
                f"{where}: time ext type must be EventTime (code 0, 8 bytes), "
                f"found code {obj.code} with {len(obj.data)} bytes",
                "bad_time",
            )
        seconds = int.from_bytes(obj.data[:4], "big")
        nanos = int.from_bytes(obj.data[4:], "big")
        if nanos >= 10**9:
            raise ForwardProtocolError(f"{where}: EventTime nanoseconds out of range", "bad_time")
        # int / int is correctly rounded: the nearest float to the exact instant.
        return (seconds * 10**9 + nanos) / 10**9
    if isinstance(obj, bool) or not isinstance(obj, int | float):
        raise ForwardProtocolError(
            f"{where}: time must be an integer, float or EventTime, found {type_name(obj)}",
            "bad_time",
        )
    if obj < 0 or (isinstance(obj, float) and not math.isfinite(obj)):
        raise ForwardProtocolError(f"{where}: time must be finite and not negative", "bad_time")
    try:
        return float(obj)
    except OverflowError:
        raise ForwardProtocolError(f"{where}: time out of range", "bad_time") from None


def _normalize(value: object, where: str, depth: int) -> object:
    """String keys and UTF-8 text for bytes, at every level of a record."""
    if (isinstance(value, dict) or is_array(value)) and depth > MAX_RECORD_DEPTH:
        raise ForwardProtocolError(
            f"{where}: record nested deeper than {MAX_RECORD_DEPTH}", "too_deep"
        )
    if isinstance(value, dict):
        return {
            as_text(k, f"{where}: record key", "bad_key"): _normalize(v, where, depth + 1)
            for k, v in value.items()
        }
    if is_array(value):
        return [_normalize(v, where, depth + 1) for v in value]
    if isinstance(value, bytes | str):
        try:
            return as_text(value, "value")
        except ForwardProtocolError:
            # Binary payloads are data, not a protocol error: keep their bytes.
            return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    return value


def decode_event(tag: str, time: object, record: object, where: str) -> ForwardEvent:
    seconds = decode_time(time, where)
    if not isinstance(record, dict):
        raise ForwardProtocolError(
            f"{where}: record must be a map, found {type_name(record)}", "not_a_map"
        )
    return ForwardEvent(
        tag=tag, time=seconds, record=cast(dict[str, Any], _normalize(record, where, 0))
    )


def decode_entry(tag: str, index: int, entry: object, where: str) -> ForwardEvent | BadEntry:
    """A [time, record] entry as an event, or as a BadEntry saying why not."""
    try:
        if not is_array(entry) or len(entry) != 2:
            raise ForwardProtocolError(
                f"{where}: entry must be a [time, record] array, found {type_name(entry)}",
                "bad_entry",
            )
        return decode_event(tag, entry[0], entry[1], where)
    except ForwardProtocolError as exc:
        return BadEntry(tag, index, exc.reason, str(exc), plain(entry))


def plain(value: object, depth: int = 0) -> object:
    """A JSON-safe rendering of a bad entry for its dead letter: text for keys and bytes,
    long strings cut, nesting cut at the depth limit."""
    if depth > MAX_RECORD_DEPTH:
        return "..."
    if isinstance(value, dict):
        return {_shown(k): plain(v, depth + 1) for k, v in value.items()}
    if is_array(value):
        return [plain(v, depth + 1) for v in value]
    if isinstance(value, msgpack.ExtType):
        return f"ext(code {value.code}, {len(value.data)} bytes)"
    if isinstance(value, bytes | str):
        return _shown(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _shown(value: object) -> str:
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    text = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)
    return text if len(text) <= _SHOWN_TEXT else text[:_SHOWN_TEXT] + "..."


def gunzip_pieces(data: bytes, limit: int) -> Iterator[bytes]:
    """Every gzip member's output, a bounded step at a time, never more than `limit` bytes.

    Linear in the input: each member is fed a growing window, so the bytes zlib copies
    back as a member's unused tail are bounded by twice that member's size.
    """
    view = memoryview(data)
    pos = produced = 0
    while pos < len(view):
        inflater = zlib.decompressobj(_GZIP_WBITS)
        window = _FIRST_WINDOW
        while not inflater.eof:
            chunk: bytes | memoryview = inflater.unconsumed_tail
            if not chunk:
                chunk = view[pos : pos + window]
                pos += len(chunk)
                window = min(window * 2, _MAX_WINDOW)
            try:
                # Asking for one byte beyond the limit tells "too big" from "exactly full".
                out = inflater.decompress(chunk, min(limit - produced + 1, _OUT_STEP))
            except zlib.error:
                raise ForwardProtocolError("invalid gzip data", "bad_gzip") from None
            produced += len(out)
            if produced > limit:
                raise ForwardProtocolError(
                    f"decompressed entries exceed {limit} bytes", "oversize_frame"
                )
            if not chunk and not out and not inflater.eof:
                raise ForwardProtocolError("gzip data truncated", "truncated")
            yield out
        pos -= len(inflater.unused_data)


Step = tuple[int, object] | BadEntry | None  # an entry, a broken stream's rest, or work done


def packed_entries(pieces: Iterator[bytes], mode: str, tag: str, limit: int) -> Iterator[Step]:
    """The entries of a packed stream as (index, entry), one step of work per item.

    A stream that breaks (invalid msgpack, bad gzip, truncation, too big) ends with
    one BadEntry standing for everything from the break on.
    """
    unpacker = object_unpacker(limit + 16)
    fed = index = 0
    try:
        for piece in pieces:
            unpacker.feed(piece)
            fed += len(piece)
            for entry, _ in _drain(unpacker):
                yield index, entry
                index += 1
            yield None
        # The C unpacker swallows a trailing partial entry silently: a nil sentinel fed
        # after the data comes back on its own only if every entry was complete.
        unpacker.feed(b"\xc0")
        for entry, start in _drain(unpacker):
            if start == fed and entry is None:
                return
            break  # the sentinel completed a partial entry
        raise ForwardProtocolError("truncated packed entries", "truncated")
    except ForwardProtocolError as exc:
        yield BadEntry(tag, index, exc.reason, f"{mode} mode entry {index} on: {exc}", None)
    except Exception as exc:  # msgpack documents no narrower set
        detail = f"{mode} mode entry {index} on: invalid msgpack entries ({type(exc).__name__})"
        yield BadEntry(tag, index, "bad_packed", detail, None)


def object_unpacker(max_bytes: int) -> msgpack.Unpacker:
    """An unpacker for frame contents: invalid UTF-8 kept recoverable (surrogateescape, an
    old client's str-typed PackedForward stream is not UTF-8), any map key allowed and
    arrays as tuples (so that an array used as a key still unpacks): the entry decoder
    checks keys, one entry at a time."""
    return msgpack.Unpacker(
        raw=False,
        max_buffer_size=max_bytes,
        unicode_errors="surrogateescape",
        strict_map_key=False,
        use_list=False,
    )


def lazy_entries(raw: bytes, start: int, count: int, mode: str, tag: str) -> Iterator[Step]:
    """The `count` entries of a Forward-mode array at `raw[start:]`, unpacked one at a time:
    a frame of millions of tiny entries never exists as Python objects all at once."""
    unpacker = object_unpacker(len(raw) + 16)
    unpacker.feed(memoryview(raw)[start:])
    for index in range(count):
        try:
            entry = unpacker.unpack()
        except Exception as exc:  # msgpack documents no narrower set
            detail = f"{mode} mode entry {index} on: invalid msgpack entries ({type(exc).__name__})"
            yield BadEntry(tag, index, "bad_packed", detail, None)
            return
        yield index, entry


def _drain(unpacker: msgpack.Unpacker) -> Iterator[tuple[object, int]]:
    while True:
        start = int(unpacker.tell())
        try:
            obj = unpacker.unpack()
        except msgpack.OutOfData:
            return
        yield obj, start
