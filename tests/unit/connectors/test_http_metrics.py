"""The observability endpoint over real HTTP on loopback: metrics in Prometheus' text format,
liveness always, readiness only when every check passes."""

from __future__ import annotations

import aiohttp
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from connectors.http_metrics import MetricsServer


async def test_serves_metrics_health_and_readiness_on_loopback() -> None:
    registry = CollectorRegistry()
    seen = Counter("demo_events", "Events.", registry=registry)
    checks = {"listener_up": False, "baseline_loaded": True}
    server = MetricsServer(registry, lambda: dict(checks), port=0)
    await server.start()
    try:
        assert server.host == "127.0.0.1" and server.port > 0
        async with aiohttp.ClientSession(server.url) as http:
            seen.inc(3)
            async with http.get("/metrics") as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("text/plain")
                families = {f.name: f for f in text_string_to_metric_families(await r.text())}
            assert families["demo_events"].samples[0].value == 3

            async with http.get("/healthz") as r:
                assert r.status == 200
            async with http.get("/readyz") as r:
                assert r.status == 503
                body = await r.json()
            assert body["checks"] == {"listener_up": False, "baseline_loaded": True}

            checks["listener_up"] = True
            async with http.get("/readyz") as r:
                assert r.status == 200
                assert (await r.json())["status"] == "ready"

            async with http.post("/metrics", data=b"x" * 4096) as r:
                assert r.status == 405  # GET only
    finally:
        await server.stop()


async def test_a_taken_port_is_an_error_that_names_the_setting() -> None:
    first = MetricsServer(CollectorRegistry(), dict, port=0)
    await first.start()
    try:
        second = MetricsServer(CollectorRegistry(), dict, port=first.port)
        try:
            await second.start()
        except OSError as exc:
            assert "observability.port" in str(exc)
        else:
            await second.stop()
            raise AssertionError("a second server bound a taken port")
    finally:
        await first.stop()


async def test_no_checks_means_not_ready() -> None:
    server = MetricsServer(CollectorRegistry(), dict, port=0)
    await server.start()
    try:
        async with aiohttp.ClientSession(server.url) as http, http.get("/readyz") as r:
            assert r.status == 503
    finally:
        await server.stop()
