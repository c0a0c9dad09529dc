"""The embedded runner's write-ahead journal: what it accepted since its last checkpoint, on
disk before a forward chunk is acknowledged, so that ``kill -9`` loses nothing acknowledged.

A directory holds ``checkpoint.json`` (the runner's state as plain JSON and the first segment
to replay after it) and segments ``segment-<n>.log`` of frames, one frame per chunk:

    uint32 big-endian payload length | uint32 crc32 of the payload | payload (msgpack list)

A checkpoint is written to a temporary file, fsynced and renamed over the old one (the
directory fsynced too), then a new segment starts and the segments it covers are deleted: at
every moment the checkpoint plus the segments from its ``segment`` on are the whole state.
Recovery reads frames until the first torn or corrupt one (a write cut short by the crash, never
acknowledged) and truncates it away. Its size is bounded by the checkpoint interval.

fsync policy. Every frame is written to the operating system (``write``, then ``flush``) before
``append`` returns: that alone survives ``kill -9`` of the process, whatever the policy. Then
``"always"`` fsyncs each frame before ``append`` returns, so an acknowledged chunk survives a
power cut too, at the cost of one fsync per chunk (fluent-logger sends one record per message);
``"interval"`` (the default) fsyncs from ``sync()``, which the runner calls once a second: a power
cut loses at most that second; ``"never"`` leaves it to the kernel.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import msgpack

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.json"
_SEGMENT = re.compile(r"segment-(\d{12})\.log")
_HEADER = struct.Struct(">II")
FsyncPolicy = Literal["always", "interval", "never"]
MAX_FRAME_BYTES = 256 * 1024 * 1024  # a length past this is a torn header, not a frame


class JournalError(RuntimeError):
    """A journal directory that cannot be used (named in the message)."""


def _segment_name(n: int) -> str:
    return f"segment-{n:012d}.log"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    def __init__(self, directory: Path, *, fsync: FsyncPolicy = "interval") -> None:
        self.directory = directory
        self.fsync = fsync
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(f"journal directory {directory}: {exc.strerror}") from None
        self._segment = 0  # the segment appended to
        self._file: Any = None
        self._dirty = False  # written since the last fsync
        self.entries = 0  # appended since the last checkpoint
        self.bytes = 0

    # ---- recovery -----------------------------------------------------------------------
    def recover(self) -> tuple[Any, Iterator[list[Any]]]:
        """The last checkpoint's state (None without one) and the chunks appended after it, in
        order. Call once, before ``append``; then ``checkpoint`` to fold the replay in."""
        state, first = self._read_checkpoint()
        segments = [n for n in self._segments() if n >= first]
        self._segment = max([first, *segments])
        return state, self._chunks(segments)

    def _read_checkpoint(self) -> tuple[Any, int]:
        path = self.directory / CHECKPOINT
        try:
            plain = json.loads(path.read_bytes())
            return plain["state"], int(plain["segment"])
        except FileNotFoundError:
            return None, 0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Written by rename, a checkpoint is whole or absent; this one was edited or the
            # disk is failing: the journal after it still replays onto a fresh state.
            logger.warning(
                "journal checkpoint %s not read (%s): replayed onto fresh state", path, exc
            )
            return None, 0

    def _segments(self) -> list[int]:
        found = (_SEGMENT.fullmatch(p.name) for p in self.directory.iterdir())
        return sorted(int(m[1]) for m in found if m)

    def _chunks(self, segments: list[int]) -> Iterator[list[Any]]:
        for n in segments:
            yield from self._frames(self.directory / _segment_name(n))

    def _frames(self, path: Path) -> Iterator[list[Any]]:
        with path.open("rb+") as f:
            good = 0
            while True:
                header = f.read(_HEADER.size)
                if not header:
                    return
                chunk = self._frame(f, header)
                if chunk is None:  # torn by the crash: never acknowledged, cut it away
                    logger.warning("journal %s: torn frame at byte %d truncated", path, good)
                    f.truncate(good)
                    return
                good = f.tell()
                yield chunk

    @staticmethod
    def _frame(f: Any, header: bytes) -> list[Any] | None:
        if len(header) < _HEADER.size:
            return None
        size, crc = _HEADER.unpack(header)
        if size > MAX_FRAME_BYTES:
            return None
        payload = f.read(size)
        if len(payload) < size or zlib.crc32(payload) != crc:
            return None
        try:
            entries = msgpack.unpackb(payload, raw=False, unicode_errors="surrogateescape")
        except Exception:  # msgpack documents no narrower set; the crc matched, so rare
            return None
        return entries if isinstance(entries, list) else None

    # ---- writing ------------------------------------------------------------------------
    def append(self, entries: list[Any]) -> None:
        """Write one chunk's entries as a frame; on disk (fsynced, by policy) when it returns."""
        if not entries:
            return
        payload = msgpack.packb(entries, use_bin_type=True, unicode_errors="surrogateescape")
        f = self._open()
        f.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        f.flush()  # in the kernel's hands: kill -9 of this process cannot lose it now
        self._dirty = True
        if self.fsync == "always":
            self.sync()
        self.entries += len(entries)
        self.bytes += _HEADER.size + len(payload)

    def sync(self) -> None:
        """fsync what was appended since the last call (the "interval" policy's tick)."""
        if self._dirty and self._file is not None and self.fsync != "never":
            os.fsync(self._file.fileno())
        self._dirty = False

    def checkpoint(self, state: Any) -> None:
        """Make ``state`` (plain JSON data: everything appended so far folded in) the new
        starting point, and drop the segments it covers."""
        old = self._segment
        self.close()
        self._segment = old + 1
        tmp = self.directory / (CHECKPOINT + ".tmp")
        with tmp.open("wb") as f:
            f.write(json.dumps({"segment": self._segment, "state": state}).encode())
            f.flush()
            os.fsync(f.fileno())  # always: a checkpoint replaces the segments it deletes
        os.replace(tmp, self.directory / CHECKPOINT)
        _fsync_dir(self.directory)
        for n in self._segments():
            if n < self._segment:
                (self.directory / _segment_name(n)).unlink(missing_ok=True)
        self.entries = self.bytes = 0

    def _open(self) -> Any:
        if self._file is None:
            path = self.directory / _segment_name(self._segment)
            self._file = path.open("ab")
            if self.fsync != "never":
                _fsync_dir(self.directory)  # the new segment's name survives a power cut too
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
