"""A thin asyncio TCP server for the Fluentd forward protocol, around connectors.forward.

Holds `ForwardServer`, which hands each decoded message's events to an async
handler and acks `option.chunk` only once the handler has returned, and
`ForwardStats`, its counters. No shared-key handshake and no TLS yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

from connectors.forward import (
    DEFAULT_MAX_FRAME_BYTES,
    ForwardEvent,
    ForwardMessage,
    ForwardProtocolError,
    FrameDecoder,
    ack_response,
)

logger = logging.getLogger(__name__)

Handler = Callable[[list[ForwardEvent]], Awaitable[None]]

_READ_BYTES = 64 * 1024
# fluent-logger sends without acks: on shutdown, what it already wrote is read and handled
# until the connection has been quiet this long (or the drain deadline passes).
_DRAIN_IDLE_SECONDS = 0.5


@dataclass(slots=True)
class ForwardStats:
    """Counters since start; `rejected` counts closed connections by reason."""

    connections_total: int = 0
    connections_open: int = 0
    messages: int = 0
    events: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1


@dataclass(eq=False, slots=True)
class _Connection:
    task: asyncio.Task[None]
    # True while a message is in the handler or its ack is being written:
    # stop() lets that finish instead of cancelling it.
    busy: bool = False
    # Set by stop(): finish what the peer already sent, then close once it goes quiet.
    draining: bool = False
    stopping: bool = False


class ForwardServer:
    """Receives forward-protocol frames on TCP and awaits `handler` per message.

    Messages on one connection are handled in order, and reading pauses while
    the handler runs, so a slow handler pushes back on the sender through TCP.
    A bad frame or a failing handler closes only that connection.
    """

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 24224,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_connections: int = 256,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be positive, got {max_connections}")
        if max_frame_bytes < 1:
            raise ValueError(f"max_frame_bytes must be positive, got {max_frame_bytes}")
        self.host = host
        self.port = port
        self.stats = ForwardStats()
        self._handler = handler
        self._max_frame_bytes = max_frame_bytes
        self._max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()

    async def start(self) -> None:
        """Listen; with port 0 the bound port is in `self.port` afterwards."""
        if self._server is not None:
            raise RuntimeError("ForwardServer already started")
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]
        logger.info("forward: listening on %s:%d", self.host, self.port)

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

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer_name(writer)
        task = asyncio.current_task()
        if self._server is None or task is None:  # accepted just as stop() began
            await _close(writer)
            return
        if len(self._connections) >= self._max_connections:
            self._reject(peer, "too_many_connections", f"limit is {self._max_connections}")
            await _close(writer)
            return
        conn = _Connection(task)
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

    async def _pump(
        self,
        conn: _Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
    ) -> None:
        decoder = FrameDecoder(self._max_frame_bytes)
        while not conn.stopping:
            try:
                data = await asyncio.wait_for(reader.read(_READ_BYTES), _DRAIN_IDLE_SECONDS)
            except TimeoutError:
                if conn.draining:
                    return
                continue
            if not data:
                if decoder.pending_bytes:
                    self._reject(peer, "truncated_frame", "connection closed inside a frame")
                return
            try:
                messages = decoder.feed(data)
            except ForwardProtocolError as exc:
                self._reject(peer, exc.reason, str(exc))
                return
            for message in messages:
                if conn.stopping or not await self._deliver(conn, message, writer, peer):
                    return

    async def _deliver(
        self,
        conn: _Connection,
        message: ForwardMessage,
        writer: asyncio.StreamWriter,
        peer: str,
    ) -> bool:
        """Hand one message on and ack it; False when the connection must close."""
        conn.busy = True
        try:
            try:
                await self._handler(message.events)
            except Exception:
                # No ack: a client that asked for one will resend the chunk.
                logger.exception(
                    "forward: handler failed on %d events from %s; closing without ack",
                    len(message.events),
                    peer,
                )
                self.stats.reject("handler_error")
                return False
            self.stats.messages += 1
            self.stats.events += len(message.events)
            if message.chunk is not None:
                writer.write(ack_response(message.chunk))
                await writer.drain()
            return True
        finally:
            conn.busy = False

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
