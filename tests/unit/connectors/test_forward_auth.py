"""The shared-key handshake's server half, message by message, against the digests computed
here from the forward protocol spec v1's own definition."""

from __future__ import annotations

import hashlib

import msgpack
import pytest

from connectors.forward_auth import SharedKeyAuth, digest

KEY = b"the-shared-key"
NONCE = bytes(range(16))


def spec_digest(salt: bytes, hostname: bytes, nonce: bytes, key: bytes) -> str:
    return hashlib.sha512(salt + hostname + nonce + key).hexdigest()


def ping(salt: object = b"salt", hostname: object = "client", key: bytes = KEY) -> list[object]:
    raw_salt = salt if isinstance(salt, bytes) else str(salt).encode()
    raw_host = hostname if isinstance(hostname, bytes) else str(hostname).encode()
    return ["PING", hostname, salt, spec_digest(raw_salt, raw_host, NONCE, key), "", ""]


def test_digest_is_sha512_hex_of_salt_hostname_nonce_key() -> None:
    assert digest(b"s", b"h", b"n", b"k") == hashlib.sha512(b"shnk").hexdigest()
    assert len(digest(b"", b"", b"", b"")) == 128


def test_helo_carries_the_nonce_no_user_auth_and_keepalive() -> None:
    helo = msgpack.unpackb(SharedKeyAuth(KEY, "server").helo(NONCE))
    assert helo == ["HELO", {"nonce": NONCE, "auth": "", "keepalive": True}]


def test_nonces_are_16_random_bytes() -> None:
    nonces = {SharedKeyAuth.new_nonce() for _ in range(100)}
    assert len(nonces) == 100
    assert all(len(n) == 16 for n in nonces)


@pytest.mark.parametrize("salt", [b"salt", "salt-as-str", b"\xff\x00binary"])
def test_a_right_ping_gets_a_pong_with_the_servers_digest(salt: object) -> None:
    result = SharedKeyAuth(KEY, "server.example").check_ping(ping(salt), NONCE)
    assert result.ok and result.reason == ""
    raw_salt = salt if isinstance(salt, bytes) else str(salt).encode()
    assert msgpack.unpackb(result.pong) == [
        "PONG",
        True,
        "",
        "server.example",
        spec_digest(raw_salt, b"server.example", NONCE, KEY),
    ]


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (ping(key=b"other-key"), "shared_key mismatch"),
        (["PING", "client", b"salt", "0" * 128, "", ""], "shared_key mismatch"),
        (["PING", "client", b"salt"], "invalid ping message"),
        (["PONG", "client", b"salt", "x", "", ""], "invalid ping message"),
        (["PING", 5, b"salt", "x", "", ""], "invalid ping message"),
        ("PING", "invalid ping message"),
        (["app.ctr", 1764324000, {"n": 1}, {"chunk": "c"}], "invalid ping message"),
    ],
)
def test_a_wrong_ping_gets_a_failed_pong(message: object, reason: str) -> None:
    result = SharedKeyAuth(KEY, "server").check_ping(message, NONCE)
    assert not result.ok
    assert msgpack.unpackb(result.pong) == ["PONG", False, reason, "", ""]


def test_a_ping_for_another_nonce_is_refused() -> None:
    result = SharedKeyAuth(KEY, "server").check_ping(ping(), b"another-nonce-16")
    assert (result.ok, result.reason) == (False, "shared_key mismatch")


def test_the_key_never_shows_in_its_repr() -> None:
    assert "the-shared-key" not in repr(SharedKeyAuth(KEY, "server"))
    with pytest.raises(ValueError, match="shared_key must not be empty"):
        SharedKeyAuth(b"", "server")
