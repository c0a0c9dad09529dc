"""Fluentd in_forward's security, server side: the shared-key handshake and TLS.

Handshake (forward protocol spec v1, "Handshake Messages"), once per connection, before
any event:

    server  ["HELO", {"nonce": <random bytes>, "auth": "", "keepalive": true}]
    client  ["PING", client_hostname, salt, hex(sha512(salt + client_hostname + nonce + key)),
             username, password_digest]
    server  ["PONG", true, "", server_hostname, hex(sha512(salt + server_hostname + nonce + key))]
            or ["PONG", false, reason, "", ""] and the connection closes.

`auth` is empty: user/password authentication is not offered, so the client's username
and password digest are ignored (Fluentd sends empty strings then). The key never
leaves this module in any message or log line.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgpack

_NONCE_BYTES = 16


def digest(salt: bytes, hostname: bytes, nonce: bytes, shared_key: bytes) -> str:
    """The spec's hex(sha512(salt + hostname + nonce + shared_key))."""
    return hashlib.sha512(salt + hostname + nonce + shared_key).hexdigest()


def _raw(value: object) -> bytes | None:
    """A msgpack str or bin as the bytes that were sent (str keeps them via surrogateescape)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return None


@dataclass(frozen=True, slots=True)
class PingResult:
    ok: bool
    reason: str  # why it failed, fit for a log line and for the client ("" when ok)
    pong: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class SharedKeyAuth:
    """The server's half of the handshake; `self_hostname` is what PONG says we are."""

    shared_key: bytes = field(repr=False)
    self_hostname: str

    def __post_init__(self) -> None:
        if not self.shared_key:
            raise ValueError("shared_key must not be empty")
        if not self.self_hostname:
            raise ValueError("self_hostname must not be empty")

    @staticmethod
    def new_nonce() -> bytes:
        return os.urandom(_NONCE_BYTES)

    def helo(self, nonce: bytes) -> bytes:
        packed: bytes = msgpack.packb(["HELO", {"nonce": nonce, "auth": "", "keepalive": True}])
        return packed

    def check_ping(self, message: object, nonce: bytes) -> PingResult:
        """Check one PING against the nonce this connection was sent; the PONG to answer."""
        if (
            not isinstance(message, Sequence)
            or isinstance(message, str | bytes)
            or len(message) != 6
            or message[0] != "PING"
        ):
            return self._refuse("invalid ping message")
        hostname, salt, client_digest = (_raw(v) for v in message[1:4])
        if hostname is None or salt is None or client_digest is None:
            return self._refuse("invalid ping message")
        expected = digest(salt, hostname, nonce, self.shared_key).encode()
        if not hmac.compare_digest(client_digest, expected):
            return self._refuse("shared_key mismatch")
        server = self.self_hostname.encode()
        pong = ["PONG", True, "", self.self_hostname, digest(salt, server, nonce, self.shared_key)]
        return PingResult(True, "", msgpack.packb(pong))

    @staticmethod
    def _refuse(reason: str) -> PingResult:
        return PingResult(False, reason, msgpack.packb(["PONG", False, reason, "", ""]))


def tls_context(cert_file: Path, key_file: Path, key_password: str | None = None) -> ssl.SSLContext:
    """A server context from PEM files: TLS 1.2 or later, no client certificate asked."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file, password=key_password)
    except (OSError, ssl.SSLError) as exc:
        # Paths and the library's reason only: never the password.
        raise ValueError(
            f"forward TLS: cannot load certificate {cert_file} with key {key_file} "
            f"({type(exc).__name__}: {getattr(exc, 'reason', None) or exc.strerror or 'bad file'})"
        ) from None
    return context
