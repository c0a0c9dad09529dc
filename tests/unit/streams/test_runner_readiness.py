"""The embedded runner's readiness over real HTTP: not ready until the listener is up, ready
while it listens, not ready again once it drains for shutdown."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from config.settings import ObservabilitySettings
from connectors.forward_server import ForwardServer
from connectors.store import AnomalyStore
from detectors.engine import Engine, EngineOptions
from detectors.records import FieldMapping
from streams import metrics
from streams.embedded.runner import EmbeddedRunner, Pipeline
from tests.unit.detectors.conftest import traffic_baseline


class SlowToListen(ForwardServer):
    """A listener whose start waits for the test's word."""

    go: asyncio.Event

    async def start(self) -> None:
        await self.go.wait()
        await super().start()


async def status(base: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/readyz") as r:
        return r.status, await r.json()


async def test_ready_only_while_the_listener_is_up(tmp_path: Path) -> None:
    engine = Engine([traffic_baseline(rows=500)], EngineOptions())
    go = asyncio.Event()

    def listener(handler: Any) -> ForwardServer:
        server = SlowToListen(handler, "127.0.0.1", 0)
        server.go = go
        return server

    with AnomalyStore(tmp_path / "a.db") as store:
        pipeline = Pipeline(engine, store, FieldMapping(), emit=lambda line: None)
        endpoint = metrics.runner_endpoint(ObservabilitySettings(port=0), None)
        runner = EmbeddedRunner(pipeline, listener, 30.0, endpoint=endpoint)
        running = asyncio.create_task(runner.run())
        assert endpoint.server is not None
        for _ in range(500):  # the endpoint answers before the listener exists
            if endpoint.server.port:
                try:
                    code, body = await status(endpoint.url or "")
                    break
                except aiohttp.ClientConnectionError:
                    pass
            await asyncio.sleep(0.01)
        assert code == 503
        assert body["checks"] == {"baseline_loaded": True, "listener_up": False}

        go.set()
        for _ in range(200):
            code, body = await status(endpoint.url or "")
            if code == 200:
                break
            await asyncio.sleep(0.01)
        assert (code, body["status"]) == (200, "ready")

        runner.request_stop()
        await asyncio.wait_for(running, 30)
    assert endpoint.health.checks()["listener_up"] is False, "draining is not ready"
