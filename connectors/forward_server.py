"""A thin asyncio TCP server for the Fluentd forward protocol, around connectors.forward.

Holds `ForwardServer`, which hands each frame's events to an async handler a bounded
batch at a time and acks `option.chunk` only once every batch has been handled, and
`ForwardStats`, its counters. Bad entries go to their own handler (dead letters) and
the frame is acked all the same; only an unreadable frame closes the connection.
Deadlines and bounds: connectors.forward_limits. Opt-in security as Fluentd's in_forward
has it (shared-key handshake, TLS): connectors.forward_auth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from types import TracebackType

import msgpack

from connectors.forward import (
    DEFAULT_MAX_FRAME_BYTES,
    BadEntry,
    ForwardEvent,
    ForwardProtocolError,
    Frame,
    ack_response,
)
from connectors.forward_auth import SharedKeyAuth
from connectors.forward_connection import Connection, ForwardStats, overdue
from connectors.forward_decoder import FrameDecoder, parse_frame_bytes
from connectors.forward_limits import ForwardLimits

__all__ = ["BadEntryHandler", "ForwardServer", "ForwardStats", "Handler"]

logger = logging.getLogger(__name__)

Handler = Callable[[list[ForwardEvent]], Awaitable[None]]
BadEntryHandler = Callable[[list[BadEntry]], Awaitable[None]]

_READ_BYTES = 64 * 1024
# Reads wake at least this often, to check deadlines and (on shutdown) to see that a
# connection went quiet: fluent-logger sends without acks, so on shutdown what it already
# wrote is read and handled until the connection has been quiet this long.
_TICK_SECONDS = 0.5


class ForwardServer:
    """Receives forward-protocol frames on TCP and awaits `handler` per batch of events.

    Frames on one connection are handled in order, and reading pauses while the handler
    runs, so a slow handler pushes back on the sender through TCP. Between batches the
    event loop serves every other connection. A bad frame, a missed deadline or a failing
    handler closes only that connection. At the connection limit the longest-idle
    connection (no frame in progress, nothing in the handler) makes room for a new one.
    """

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 24224,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_connections: int = 256,
        *,
        limits: ForwardLimits | None = None,
        auth: SharedKeyAuth | None = None,
        tls: ssl.SSLContext | None = None,
        on_bad_entries: BadEntryHandler | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be positive, got {max_connections}")
        if max_frame_bytes < 1:
            raise ValueError(f"max_frame_bytes must be positive, got {max_frame_bytes}")
        self.host = host
        self.port = port
        self.stats = ForwardStats()
        self.limits = limits or ForwardLimits()
        self._handler = handler
        self._on_bad_entries = on_bad_entries
        self._auth = auth
        self._tls = tls
        self._max_frame_bytes = max_frame_bytes
        self._max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._connections: set[Connection] = set()

    async def start(self) -> None:
        """Listen; with port 0 the bound port is in `self.port` afterwards."""
        if self._server is not None:
            raise RuntimeError("ForwardServer already started")
        self._server = await asyncio.start_server(
            self._serve,
            self.host,
            self.port,
            ssl=self._tls,
            ssl_handshake_timeout=self.limits.read_timeout_seconds if self._tls else None,
        )
        self.host, self.port = self._server.sockets[0].getsockname()[:2]
        security = ", ".join(
            name for name, on in (("TLS", self._tls), ("shared key", self._auth)) if on
        )
        logger.info(
            "forward: listening on %s:%d (%s)", self.host, self.port, security or "no security"
        )

    async def stop(self, drain_seconds: float = 10.0) -> None:
        """Stop accepting; handle what connected peers already sent until each goes quiet
        (at most ``drain_seconds``); let in-flight handlers finish; close every connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for conn in self._connections:
            conn.draining = True
        tasks = [c.task for c in self._connections]
        if tasks:
            await asyncio.wait(tasks, timeout=drain_seconds)
        for conn in list(self._connections):
            conn.stopping = True
            if not conn.busy:
                conn.task.cancel()
        await asyncio.gather(*(c.task for c in list(self._connections)), return_exceptions=True)
        await server.wait_closed()
        logger.info("forward: stopped")

    async def __aenter__(self) -> ForwardServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def buffered_bytes(self) -> int:
        """Bytes of incomplete frames held across every connection."""
        return sum(c.decoder.pending_bytes for c in self._connections)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer_name(writer)
        task = asyncio.current_task()
        if self._server is None or task is None:  # accepted just as stop() began
            await _close(writer)
            return
        if len(self._connections) >= self._max_connections and not self._evict_idlest():
            self._reject(peer, "too_many_connections", f"limit is {self._max_connections}")
            await _close(writer)
            return
        now = time.monotonic()
        conn = Connection(task, FrameDecoder(self._max_frame_bytes), now, now)
        self._connections.add(conn)
        self.stats.connections_total += 1
        self.stats.connections_open += 1
        try:
            await self._pump(conn, reader, writer, peer)
        except ConnectionError:
            pass  # the peer went away; nothing was acked that was not handled
        except asyncio.CancelledError:
            if not conn.stopping:
                raise
        except Exception:
            logger.exception("forward: unexpected error on connection from %s", peer)
        finally:
            self._connections.discard(conn)
            self.stats.connections_open -= 1
            await _close(writer)

    def _evict_idlest(self) -> bool:
        idle = [
            c
            for c in self._connections
            if not c.busy and not c.stopping and c.decoder.pending_bytes == 0
        ]
        if not idle:
            return False
        victim = min(idle, key=lambda c: c.last_read)
        victim.stopping = True
        victim.task.cancel()
        self._connections.discard(victim)
        self.stats.reject("idle_evicted")
        return True

    async def _pump(
        self,
        conn: Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
    ) -> None:
        nonce = b""
        if self._auth is not None:
            conn.authenticated = False
            nonce = self._auth.new_nonce()
            writer.write(self._auth.helo(nonce))
            await writer.drain()
        while not conn.stopping:
            try:
                data = await asyncio.wait_for(reader.read(_READ_BYTES), _TICK_SECONDS)
            except TimeoutError:
                if conn.draining:
                    return
                if self._overdue(conn, peer):
                    return
                continue
            if not data:
                if conn.decoder.pending_bytes:
                    self._reject(peer, "truncated_frame", "connection closed inside a frame")
                return
            frames = self._feed(conn, data, peer)
            if frames is None or self._overdue(conn, peer):
                return
            for raw in frames:
                if conn.stopping or not await self._receive(conn, raw, nonce, writer, peer):
                    return

    def _feed(self, conn: Connection, data: bytes, peer: str) -> list[bytes] | None:
        """The frames this read completed; None when the connection must close."""
        now = conn.last_read = time.monotonic()
        try:
            frames = conn.decoder.feed_raw(data)
        except ForwardProtocolError as exc:
            self._reject(peer, exc.reason, str(exc))
            return None
        if not conn.decoder.pending_bytes:
            conn.frame_started = None
        elif frames or conn.frame_started is None:
            conn.frame_started = now  # the frame left pending began in this read
        if (total := self.buffered_bytes()) > self.limits.max_buffered_bytes:
            detail = f"{total} bytes of incomplete frames, limit {self.limits.max_buffered_bytes}"
            self._reject(peer, "buffer_full", detail)
            return None
        return frames

    def _overdue(self, conn: Connection, peer: str) -> bool:
        """Close (True) a connection that missed a deadline."""
        missed = overdue(conn, self.limits, time.monotonic())
        if missed is None:
            return False
        self._reject(peer, *missed)
        return True

    async def _receive(
        self,
        conn: Connection,
        raw: bytes,
        nonce: bytes,
        writer: asyncio.StreamWriter,
        peer: str,
    ) -> bool:
        """One complete frame's bytes: the PING of the handshake, or a frame to deliver."""
        if not conn.authenticated:
            assert self._auth is not None
            try:
                ping = msgpack.unpackb(raw, raw=False, unicode_errors="surrogateescape")
            except Exception:  # msgpack documents no narrower set; check_ping refuses None
                ping = None
            result = self._auth.check_ping(ping, nonce)
            writer.write(result.pong)
            await writer.drain()
            if not result.ok:
                self._reject(peer, "auth_failed", result.reason)
                return False
            conn.authenticated = True
            return True
        try:
            frame = parse_frame_bytes(raw, self._max_frame_bytes)
        except ForwardProtocolError as exc:
            self._reject(peer, exc.reason, str(exc))
            return False
        delivered = await self._deliver(conn, frame, writer, peer)
        # The time spent handling was ours, not the sender's: neither idleness nor a slow
        # frame (the next frame may have begun in the same read).
        conn.last_read = time.monotonic()
        if conn.frame_started is not None:
            conn.frame_started = conn.last_read
        return delivered

    async def _deliver(
        self,
        conn: Connection,
        frame: Frame,
        writer: asyncio.StreamWriter,
        peer: str,
    ) -> bool:
        """Hand one frame on, batch by batch, and ack it; False when the connection must
        close. Between batches the loop serves everyone else."""
        conn.busy = True
        try:
            count = 0
            try:
                for batch in frame.batches(self.limits.batch_events):
                    if batch.bad:
                        await self._bad_entries(batch.bad, peer)
                    if batch.events:
                        await self._handler(batch.events)
                        count += len(batch.events)
                        self.stats.events += len(batch.events)
                    await asyncio.sleep(0)
            except Exception:
                # No ack: a client that asked for one will resend the chunk.
                logger.exception(
                    "forward: handler failed after %d events of a frame from %s; "
                    "closing without ack",
                    count,
                    peer,
                )
                self.stats.reject("handler_error")
                return False
            self.stats.messages += 1
            if frame.chunk is not None:
                writer.write(ack_response(frame.chunk))
                await writer.drain()
            return True
        finally:
            conn.busy = False

    async def _bad_entries(self, bad: list[BadEntry], peer: str) -> None:
        for entry in bad:
            self.stats.bad_entries[entry.reason] = self.stats.bad_entries.get(entry.reason, 0) + 1
        if self._on_bad_entries is not None:
            await self._on_bad_entries(bad)
            return
        # Without a dead-letter handler they are counted and said, never silently gone.
        reasons = sorted({e.reason for e in bad})
        logger.warning("forward: %d bad entries from %s (%s)", len(bad), peer, ", ".join(reasons))

    def _reject(self, peer: str, reason: str, detail: str) -> None:
        # Reason and detail only name types and sizes, never record contents.
        self.stats.reject(reason)
        logger.warning("forward: closing connection from %s: %s (%s)", peer, reason, detail)


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
