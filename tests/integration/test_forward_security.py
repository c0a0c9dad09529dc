"""The forward listener's opt-in security, as Fluentd's in_forward has it: the shared-key
handshake (HELO/PING/PONG, forward protocol spec v1) with hand-built frames that follow the
spec, and TLS with Python's own ssl client. Without security the real fluent-logger client
is served as before (tests/integration/test_forward_server.py)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from fluent.sender import FluentSender

from connectors.forward import ForwardEvent
from connectors.forward_auth import SharedKeyAuth, tls_context
from connectors.forward_server import ForwardServer

T0 = 1764324000
KEY = b"s3cret-shared-key"
SERVER_NAME = "logdrift.test"


class Received:
    def __init__(self) -> None:
        self.events: list[ForwardEvent] = []

    async def __call__(self, events: list[ForwardEvent]) -> None:
        self.events.extend(events)


def sha512_hex(*parts: bytes) -> str:
    """The spec's digest, computed here from its definition, not by the code under test."""
    return hashlib.sha512(b"".join(parts)).hexdigest()


class Peer:
    """A raw client connection that reads msgpack objects one at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._unpacker = msgpack.Unpacker(raw=False)

    async def read(self) -> Any:
        async with asyncio.timeout(10):
            while True:
                with contextlib.suppress(StopIteration):
                    return next(self._unpacker)
                data = await self.reader.read(4096)
                if not data:
                    raise ConnectionError("closed by server")
                self._unpacker.feed(data)

    def send(self, obj: object) -> None:
        self.writer.write(msgpack.packb(obj))

    async def closed(self) -> bool:
        async with asyncio.timeout(10):
            with contextlib.suppress(ConnectionResetError):
                return await self.reader.read() == b""
        return True


@pytest.fixture
async def received() -> Received:
    return Received()


@pytest.fixture
async def peers() -> AsyncIterator[list[Peer]]:
    opened: list[Peer] = []
    yield opened
    for peer in opened:
        peer.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await peer.writer.wait_closed()


@pytest.fixture
async def secured(received: Received) -> AsyncIterator[ForwardServer]:
    auth = SharedKeyAuth(KEY, SERVER_NAME)
    async with ForwardServer(received, port=0, auth=auth) as server:
        yield server


async def connect(server: ForwardServer, peers: list[Peer], **kwargs: Any) -> Peer:
    peer = Peer(*await asyncio.open_connection("127.0.0.1", server.port, **kwargs))
    peers.append(peer)
    return peer


def ping(nonce: bytes, key: bytes, salt: bytes = b"client-salt-0001") -> list[Any]:
    hostname = "sender.test"
    return ["PING", hostname, salt, sha512_hex(salt, hostname.encode(), nonce, key), "", ""]


# --- the shared-key handshake -----------------------------------------------------


async def test_handshake_with_the_right_key_then_frames_are_acked(
    secured: ForwardServer, received: Received, peers: list[Peer]
) -> None:
    peer = await connect(secured, peers)
    helo = await peer.read()
    assert helo[0] == "HELO"
    options = helo[1]
    assert options["auth"] == "" and options["keepalive"] is True
    nonce = options["nonce"]
    assert isinstance(nonce, bytes) and len(nonce) == 16

    salt = b"\x00\xffraw-salt-bytes"
    peer.send(ping(nonce, KEY, salt))
    pong = await peer.read()
    assert pong == [
        "PONG",
        True,
        "",
        SERVER_NAME,
        sha512_hex(salt, SERVER_NAME.encode(), nonce, KEY),
    ]
    peer.send(["app.ctr", [[T0, {"n": 1}], [T0, {"n": 2}]], {"chunk": "c1"}])
    assert await peer.read() == {"ack": "c1"}
    assert [e.record for e in received.events] == [{"n": 1}, {"n": 2}]


async def test_every_connection_gets_its_own_nonce(
    secured: ForwardServer, peers: list[Peer]
) -> None:
    first, second = [await connect(secured, peers) for _ in range(2)]
    assert (await first.read())[1]["nonce"] != (await second.read())[1]["nonce"]


async def test_a_wrong_key_gets_a_failed_pong_and_the_connection_closes(
    secured: ForwardServer,
    received: Received,
    peers: list[Peer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    peer = await connect(secured, peers)
    nonce = (await peer.read())[1]["nonce"]
    peer.send(ping(nonce, b"wrong-key"))
    assert await peer.read() == ["PONG", False, "shared_key mismatch", "", ""]
    assert await peer.closed()
    assert secured.stats.rejected == {"auth_failed": 1}
    assert KEY.decode() not in caplog.text


async def test_a_digest_over_another_connections_nonce_is_refused(
    secured: ForwardServer, peers: list[Peer]
) -> None:
    first, second = [await connect(secured, peers) for _ in range(2)]
    first_nonce = (await first.read())[1]["nonce"]
    await second.read()
    second.send(ping(first_nonce, KEY))  # a replayed PING
    assert (await second.read())[:2] == ["PONG", False]


async def test_events_before_the_handshake_are_refused(
    secured: ForwardServer, received: Received, peers: list[Peer]
) -> None:
    peer = await connect(secured, peers)
    await peer.read()
    peer.send(["app.ctr", T0, {"n": 1}, {"chunk": "sneaky"}])
    assert await peer.read() == ["PONG", False, "invalid ping message", "", ""]
    assert await peer.closed()
    assert received.events == []


async def test_fluent_logger_without_the_handshake_is_not_served(
    secured: ForwardServer, received: Received
) -> None:
    def emit() -> None:
        sender = FluentSender("app", host="127.0.0.1", port=secured.port, timeout=5)
        sender.emit_with_time("ctr", T0, {"n": 1})
        sender.close()

    await asyncio.to_thread(emit)
    await asyncio.sleep(0.5)
    assert received.events == []


# --- TLS ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def client_context(cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cert)  # verifies the server and its name
    return context


async def test_tls_with_pythons_ssl_client(
    certificate: tuple[Path, Path], received: Received, peers: list[Peer]
) -> None:
    cert, key = certificate
    async with ForwardServer(received, port=0, tls=tls_context(cert, key)) as server:
        peer = await connect(server, peers, ssl=client_context(cert))
        assert peer.writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
        peer.send(["app.ctr", T0, {"n": 1}, {"chunk": "tls"}])
        assert await peer.read() == {"ack": "tls"}
    assert [e.record for e in received.events] == [{"n": 1}]


async def test_tls_and_the_handshake_together(
    certificate: tuple[Path, Path], received: Received, peers: list[Peer]
) -> None:
    cert, key = certificate
    auth = SharedKeyAuth(KEY, SERVER_NAME)
    async with ForwardServer(received, port=0, tls=tls_context(cert, key), auth=auth) as server:
        peer = await connect(server, peers, ssl=client_context(cert))
        nonce = (await peer.read())[1]["nonce"]
        peer.send(ping(nonce, KEY))
        assert (await peer.read())[:2] == ["PONG", True]
        peer.send(["app.ctr", [[T0, {"n": 1}]], {"chunk": "both"}])
        assert await peer.read() == {"ack": "both"}


async def test_a_plain_tcp_client_of_a_tls_listener_gets_nothing(
    certificate: tuple[Path, Path], received: Received, peers: list[Peer]
) -> None:
    cert, key = certificate
    async with ForwardServer(received, port=0, tls=tls_context(cert, key)) as server:
        peer = await connect(server, peers)
        peer.send(["app.ctr", T0, {"n": 1}, {"chunk": "plain"}])
        with contextlib.suppress(ConnectionError):
            assert await peer.closed()
    assert received.events == []


def test_a_key_file_that_does_not_load_is_one_clear_error(
    certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    cert, _ = certificate
    broken = tmp_path / "broken.pem"
    broken.write_text("not a key")
    with pytest.raises(ValueError, match=f"forward TLS: cannot load certificate {cert}"):
        tls_context(cert, broken)
