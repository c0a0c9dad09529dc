"""Kibana assets: saved objects (NDJSON) and Elasticsearch-query alert rules, and their installer.

    config/kibana/saved_objects.ndjson --POST /api/saved_objects/_import?overwrite=true-->
    config/kibana/rules/*.json --POST /api/alerting/rule/{id} (409: PUT to update)-->  Kibana

Both are rendered for the configured index prefix first. ``rule_search`` is the search Kibana's
``.es-query`` rule runs (the rule's query, filtered to its time window, grouped by its term), so
a test can run exactly that against a real node.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from connectors.es_documents import TARGETS, IndexNames

KIBANA_DIR = Path(__file__).resolve().parent.parent / "config" / "kibana"
SAVED_OBJECTS = KIBANA_DIR / "saved_objects.ndjson"
RULES_DIR = KIBANA_DIR / "rules"
# Fields Kibana's rule update (PUT) accepts; type, consumer and enabled are fixed at creation.
RULE_UPDATE_FIELDS = ("name", "tags", "schedule", "params", "actions")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class KibanaError(RuntimeError):
    """Kibana refused a request; the message says which and why."""


def load_saved_objects(path: Path = SAVED_OBJECTS) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def load_rules(directory: Path = RULES_DIR) -> list[dict[str, Any]]:
    return [orjson.loads(p.read_bytes()) for p in sorted(directory.glob("*.json"))]


def render_saved_objects(
    objects: Sequence[dict[str, Any]], names: IndexNames
) -> list[dict[str, Any]]:
    """Data views pointed at the prefix's daily indices (the files use the default prefix)."""
    patterns = _patterns(names)
    rendered = []
    for obj in objects:
        obj = orjson.loads(orjson.dumps(obj))  # a deep copy
        if obj["type"] == "index-pattern":
            title = obj["attributes"]["title"]
            obj["attributes"]["title"] = patterns.get(title, title)
        rendered.append(obj)
    return rendered


def render_rule(rule: Mapping[str, Any], names: IndexNames) -> dict[str, Any]:
    rendered: dict[str, Any] = orjson.loads(orjson.dumps(rule))
    patterns = _patterns(names)
    rendered["params"]["index"] = [patterns.get(i, i) for i in rendered["params"]["index"]]
    return rendered


def _patterns(names: IndexNames) -> dict[str, str]:
    """Each target's pattern for the default prefix (the files') -> for ``names``'s."""
    return {IndexNames().pattern(t): names.pattern(t) for t in TARGETS}


def validate_saved_objects(objects: Sequence[Any]) -> list[str]:
    """Structural problems Kibana's import would trip on; empty when the file is sound."""
    problems: list[str] = []
    known: set[tuple[str, str]] = set()
    for n, obj in enumerate(objects, 1):
        if not isinstance(obj, dict) or not all(k in obj for k in ("type", "id", "attributes")):
            problems.append(f"line {n}: needs type, id and attributes")
            continue
        if (obj["type"], obj["id"]) in known:
            problems.append(f"line {n}: duplicate {obj['type']} {obj['id']}")
        known.add((obj["type"], obj["id"]))
    for n, obj in enumerate(objects, 1):
        if isinstance(obj, dict) and "attributes" in obj:
            problems += [
                f"line {n} ({obj.get('id')}): {p}" for p in _reference_problems(obj, known)
            ]
    return problems


def _reference_problems(obj: dict[str, Any], known: set[tuple[str, str]]) -> list[str]:
    refs = obj.get("references", [])
    problems = [
        f"reference {r.get('name')} to {r.get('type')} {r.get('id')} is not in the file"
        for r in refs
        if (r.get("type"), r.get("id")) not in known
    ]
    names = {r.get("name") for r in refs}
    problems += [f"no reference named {name}" for name in _names_used(obj) if name not in names]
    return problems


def _names_used(obj: dict[str, Any]) -> list[str]:
    """Reference names an object's attributes point at (panels, lens layers, searches)."""
    attrs = obj["attributes"]
    if obj["type"] == "dashboard":
        panels = orjson.loads(attrs["panelsJSON"])
        return [f"{p['panelIndex']}:{p['panelRefName']}" for p in panels]
    if obj["type"] == "lens":
        layers = attrs["state"]["datasourceStates"]["formBased"]["layers"]
        return [f"indexpattern-datasource-layer-{layer}" for layer in layers]
    if obj["type"] == "search":
        source = orjson.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
        return [source["indexRefName"]]
    return []


def rule_search(rule: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The search body an ``.es-query`` rule runs at ``now`` (over ``rule.params.index``)."""
    params = rule["params"]
    window = timedelta(**{_UNITS[params["timeWindowUnit"]]: params["timeWindowSize"]})
    time_range = {
        "range": {
            params["timeField"]: {
                "gte": (now - window).isoformat(),
                "lte": now.isoformat(),
                "format": "strict_date_optional_time",
            }
        }
    }
    query = orjson.loads(params["esQuery"])["query"]
    body: dict[str, Any] = {
        "size": params["size"],
        "query": {"bool": {"filter": [query, time_range]}},
        "sort": [{params["timeField"]: {"order": "desc"}}],
    }
    if params.get("groupBy") == "top":
        body["aggs"] = {
            "groups": {"terms": {"field": params["termField"], "size": params["termSize"]}}
        }
    return body


@dataclass(frozen=True, slots=True)
class KibanaAuth:
    api_key: str | None = None
    username: str | None = None
    password: str | None = None

    def headers(self) -> dict[str, str]:
        if self.api_key:
            return {"Authorization": f"ApiKey {self.api_key}"}
        if self.username is not None:
            pair = f"{self.username}:{self.password or ''}".encode()
            return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
        return {}


@dataclass(frozen=True, slots=True)
class InstallReport:
    imported: int
    created_rules: list[str]
    updated_rules: list[str]


class KibanaInstaller:
    """Posts the saved objects and the rules to one Kibana (optionally one space)."""

    def __init__(
        self,
        url: str,
        auth: KibanaAuth | None = None,
        ca_file: Path | None = None,
        space: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        base = url.rstrip("/")
        self.base = f"{base}/s/{space}" if space and space != "default" else base
        self.auth = auth or KibanaAuth()
        self.ssl = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def install(
        self, objects: Sequence[dict[str, Any]], rules: Sequence[dict[str, Any]]
    ) -> InstallReport:
        problems = validate_saved_objects(objects)
        if problems:
            raise KibanaError("saved objects do not validate:\n  " + "\n  ".join(problems))
        headers = {"kbn-xsrf": "logdrift", **self.auth.headers()}
        async with aiohttp.ClientSession(headers=headers, timeout=self.timeout) as session:
            imported = await self._import(session, objects)
            created: list[str] = []
            updated: list[str] = []
            for rule in rules:
                (created if await self._put_rule(session, rule) else updated).append(rule["id"])
        return InstallReport(imported, created, updated)

    async def _import(
        self, session: aiohttp.ClientSession, objects: Sequence[dict[str, Any]]
    ) -> int:
        form = aiohttp.FormData()
        ndjson = b"".join(orjson.dumps(o) + b"\n" for o in objects)
        form.add_field(
            "file", ndjson, filename="logdrift.ndjson", content_type="application/ndjson"
        )
        url = f"{self.base}/api/saved_objects/_import"
        async with session.post(url, params={"overwrite": "true"}, data=form, ssl=self._ssl()) as r:
            body = await _json(r, "importing saved objects")
        if not body.get("success"):
            errors = [
                f"{e.get('type')} {e.get('id')}: {e.get('error')}" for e in body.get("errors", [])
            ]
            raise KibanaError("Kibana did not import every saved object:\n  " + "\n  ".join(errors))
        return int(body.get("successCount", 0))

    async def _put_rule(self, session: aiohttp.ClientSession, rule: dict[str, Any]) -> bool:
        """Create the rule under its fixed id, or update it if it exists; True if created."""
        url = f"{self.base}/api/alerting/rule/{rule['id']}"
        create = {k: v for k, v in rule.items() if k != "id"}
        async with session.post(url, json=create, ssl=self._ssl()) as r:
            if r.status != 409:
                await _json(r, f"creating rule {rule['id']}")
                return True
        update = {k: rule[k] for k in RULE_UPDATE_FIELDS if k in rule}
        async with session.put(url, json=update, ssl=self._ssl()) as r:
            await _json(r, f"updating rule {rule['id']}")
        return False

    def _ssl(self) -> ssl.SSLContext | bool:
        return self.ssl if self.ssl is not None else True


async def _json(response: aiohttp.ClientResponse, what: str) -> dict[str, Any]:
    text = await response.text()
    if response.status >= 300:
        raise KibanaError(f"{what}: Kibana answered {response.status}: {text[:500]}")
    body = orjson.loads(text) if text else {}
    return body if isinstance(body, dict) else {}
