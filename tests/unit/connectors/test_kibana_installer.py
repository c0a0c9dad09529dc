"""connectors.kibana.KibanaInstaller and `logdrift kibana install`, against a local HTTP server
on 127.0.0.1 that answers like Kibana's saved-objects import and alerting APIs and checks every
request's method, path, headers and body (there is no Kibana on this machine)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner

from connectors.es_documents import IndexNames
from connectors.kibana import (
    RULE_UPDATE_FIELDS,
    KibanaAuth,
    KibanaError,
    KibanaInstaller,
    load_rules,
    load_saved_objects,
    render_rule,
    render_saved_objects,
)
from streams.cli.main import main

API_KEY = "a2liYW5hLWtleTpkby1ub3QtbG9n"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class LocalKibana:
    """Kibana's two APIs, as far as the installer uses them. Answers 400 to a request Kibana
    would refuse, so a wrong request fails the install and the test."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    import_answer: dict[str, Any] | None = None
    status: int = 200

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/saved_objects/_import", self.import_)
        app.router.add_post("/s/{space}/api/saved_objects/_import", self.import_)
        app.router.add_route("*", "/api/alerting/rule/{id}", self.rule)
        app.router.add_route("*", "/s/{space}/api/alerting/rule/{id}", self.rule)
        return app

    def record(self, request: web.Request, body: Any) -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.seen.append(Seen(request.method, request.path, dict(request.query), headers, body))

    async def import_(self, request: web.Request) -> web.Response:
        if self.status != 200:
            return web.json_response({"message": "Unauthorized"}, status=self.status)
        if not request.content_type.startswith("multipart/form-data"):
            return web.json_response({"message": "expected multipart"}, status=400)
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField) or not upload.filename.endswith(".ndjson"):
            return web.json_response({"message": "a file field named *.ndjson"}, status=400)
        objects = [orjson.loads(line) for line in upload.file.read().splitlines() if line]
        self.record(request, objects)
        answer = self.import_answer or {"success": True, "successCount": len(objects)}
        return web.json_response(answer)

    async def rule(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.record(request, body)
        rule_id = request.match_info["id"]
        if request.method == "POST":
            if "id" in body or body.get("rule_type_id") != ".es-query":
                return web.json_response({"message": "bad create body"}, status=400)
            if rule_id in self.rules:
                return web.json_response({"message": f"rule {rule_id} exists"}, status=409)
            self.rules[rule_id] = body
            return web.json_response({"id": rule_id, **body})
        if request.method == "PUT":
            if rule_id not in self.rules or not set(body) <= set(RULE_UPDATE_FIELDS):
                return web.json_response({"message": "bad update"}, status=400)
            self.rules[rule_id].update(body)
            return web.json_response({"id": rule_id, **self.rules[rule_id]})
        return web.json_response({"message": "method"}, status=405)


@pytest.fixture
def kibana() -> Iterator[LocalKibana]:
    """The local server, in its own thread and loop (the CLI under test runs its own loop)."""
    server = LocalKibana()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(server.app())
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield server
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


def install(server: LocalKibana, auth: KibanaAuth | None = None, space: str | None = None) -> Any:
    installer = KibanaInstaller(server.url, auth or KibanaAuth(api_key=API_KEY), space=space)
    objects = render_saved_objects(load_saved_objects(), IndexNames())
    rules = [render_rule(r, IndexNames()) for r in load_rules()]
    return asyncio.run(installer.install(objects, rules))


def test_first_install_imports_with_overwrite_and_creates_both_rules(kibana: LocalKibana) -> None:
    report = install(kibana)
    assert report.imported == len(load_saved_objects())
    assert sorted(report.created_rules) == sorted(r["id"] for r in load_rules())
    assert report.updated_rules == []
    first = kibana.seen[0]
    assert (first.method, first.path, first.query) == (
        "POST",
        "/api/saved_objects/_import",
        {"overwrite": "true"},
    )
    assert first.body == load_saved_objects()
    assert [s.method for s in kibana.seen[1:]] == ["POST", "POST"]
    created = kibana.rules[load_rules()[0]["id"]]
    assert created["consumer"] == "stackAlerts" and created["params"]["size"] == 100


def test_every_request_carries_kbn_xsrf_and_the_api_key(kibana: LocalKibana) -> None:
    install(kibana)
    assert kibana.seen
    for request in kibana.seen:
        assert request.headers["kbn-xsrf"]
        assert request.headers["authorization"] == f"ApiKey {API_KEY}"


def test_a_second_install_updates_the_rules_with_only_the_fields_kibana_accepts(
    kibana: LocalKibana,
) -> None:
    install(kibana)
    kibana.seen.clear()
    report = install(kibana)
    assert report.created_rules == []
    assert len(report.updated_rules) == 2
    methods = [(s.method, s.path.rsplit("/", 1)[-1]) for s in kibana.seen[1:]]
    rule_ids = [r["id"] for r in load_rules()]
    assert methods == [(m, i) for i in rule_ids for m in ("POST", "PUT")]
    for put in (s for s in kibana.seen if s.method == "PUT"):
        assert set(put.body) == set(RULE_UPDATE_FIELDS)


def test_basic_auth_and_a_space_are_honoured(kibana: LocalKibana) -> None:
    install(kibana, KibanaAuth(username="elastic", password="changeme"), space="ops")
    assert {s.path.split("/api/")[0] for s in kibana.seen} == {"/s/ops"}
    assert kibana.seen[0].headers["authorization"] == "Basic ZWxhc3RpYzpjaGFuZ2VtZQ=="


def test_a_partial_import_fails_naming_the_objects_kibana_refused(kibana: LocalKibana) -> None:
    kibana.import_answer = {
        "success": False,
        "successCount": 7,
        "errors": [{"type": "lens", "id": "logdrift-anomalies-by-kind", "error": {"type": "x"}}],
    }
    with pytest.raises(KibanaError, match="lens logdrift-anomalies-by-kind"):
        install(kibana)
    assert kibana.rules == {}, "no rule is installed over a broken import"


def test_a_refused_request_fails_with_kibanas_status_and_never_the_key(kibana: LocalKibana) -> None:
    kibana.status = 401
    with pytest.raises(KibanaError, match="401") as caught:
        install(kibana)
    assert API_KEY not in str(caught.value)


def test_the_command_line_installs_with_the_elasticsearch_credentials(
    kibana: LocalKibana, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGDRIFT_ELASTICSEARCH__API_KEY", API_KEY)
    monkeypatch.setenv("LOGDRIFT_ELASTICSEARCH__INDEX_PREFIX", "team-a")
    result = CliRunner().invoke(main, ["kibana", "install", "--url", kibana.url])
    assert result.exit_code == 0, result.output
    assert "imported 11 saved objects" in result.output
    assert "2 created, 0 updated" in result.output
    assert API_KEY not in result.output
    views = [o for o in kibana.seen[0].body if o["type"] == "index-pattern"]
    assert {v["attributes"]["title"] for v in views} == {
        "team-a-anomalies-*",
        "team-a-drift-scores-*",
        "team-a-incidents-*",
        "team-a-rollups-*",
    }
    assert all(s.headers["authorization"] == f"ApiKey {API_KEY}" for s in kibana.seen)


def test_the_command_line_reports_an_unreachable_kibana_without_a_traceback() -> None:
    result = CliRunner().invoke(main, ["kibana", "install", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "Error:" in result.output and "Traceback" not in result.output
