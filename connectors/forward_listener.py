"""The forward listener built from its settings: limits, shared key and TLS in one place, so
`logdrift run` and `logdrift forward-to-kafka` listen alike."""

from __future__ import annotations

import socket

from config.settings import ForwardSettings
from connectors.forward_auth import SharedKeyAuth, tls_context
from connectors.forward_limits import ForwardLimits
from connectors.forward_server import BadEntryHandler, ForwardServer, Handler


def limits_from(settings: ForwardSettings) -> ForwardLimits:
    return ForwardLimits(
        idle_timeout_seconds=settings.idle_timeout_seconds,
        read_timeout_seconds=settings.read_timeout_seconds,
        frame_deadline_seconds=settings.frame_deadline_seconds,
        max_buffered_bytes=settings.max_buffered_bytes,
        batch_events=settings.batch_events,
    )


def auth_from(settings: ForwardSettings) -> SharedKeyAuth | None:
    """The handshake when a shared key is configured (environment or file), else None."""
    try:
        key = settings.shared_key_value()
    except OSError as exc:
        raise ValueError(
            f"forward.shared_key_file {settings.shared_key_file}: {exc.strerror or 'unreadable'}"
        ) from None
    if key is None:
        return None
    if not key:
        raise ValueError("forward.shared_key is empty: set a key or leave it unset")
    return SharedKeyAuth(key.encode(), settings.self_hostname or socket.gethostname())


def forward_listener(
    settings: ForwardSettings,
    handler: Handler,
    *,
    on_bad_entries: BadEntryHandler | None = None,
) -> ForwardServer:
    """A ForwardServer as `settings` say. Raises ValueError (naming the file, never a secret)
    when a TLS file does not load or the shared key is empty."""
    tls = None
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        tls = tls_context(
            settings.tls_cert_file, settings.tls_key_file, settings.tls_key_password_value()
        )
    return ForwardServer(
        handler,
        settings.host,
        settings.port,
        settings.max_frame_bytes,
        settings.max_connections,
        limits=limits_from(settings),
        auth=auth_from(settings),
        tls=tls,
        on_bad_entries=on_bad_entries,
    )
