"""The observability endpoint: Prometheus metrics, liveness and readiness over HTTP (aiohttp).

    GET /metrics  the registry in Prometheus' text format (OpenMetrics when asked for)
    GET /healthz  200 while the event loop answers: liveness (restart me if this fails)
    GET /readyz   200 when every readiness check passes, else 503; JSON names each check

Binds 127.0.0.1 unless told otherwise; only GET, no request body is read, and header sizes
keep aiohttp's limits. No access log: a scrape every few seconds would drown the real lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

logger = logging.getLogger(__name__)

Checks = Callable[[], dict[str, bool]]


def make_app(registry: CollectorRegistry, checks: Checks) -> web.Application:
    async def metrics(request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(registry), headers={"Content-Type": content_type})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(request: web.Request) -> web.Response:
        found = checks()
        ready = bool(found) and all(found.values())
        body = {"status": "ready" if ready else "not ready", "checks": found}
        return web.json_response(body, status=200 if ready else 503)

    app = web.Application(client_max_size=1024)  # nothing here takes a body
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


class MetricsServer:
    """Serves ``make_app`` on ``host:port``; port 0 picks a free one (see ``url`` after start)."""

    def __init__(
        self, registry: CollectorRegistry, checks: Checks, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.host = host
        self.port = port
        self._runner = web.AppRunner(make_app(registry, checks), access_log=None)
        self._started = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise OSError(
                f"metrics endpoint cannot listen on {self.host}:{self.port}: {exc.strerror} "
                "(set observability.port, or observability.metrics_enabled: false)"
            ) from None
        self._started = True
        addresses = self._runner.addresses  # the bound port, when asked for port 0
        if addresses:
            self.port = int(addresses[0][1])
        logger.info("metrics on %s/metrics (health: /healthz, /readyz)", self.url)

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self._runner.cleanup()
