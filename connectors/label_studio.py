"""A small client of Label Studio's HTTP API: projects, task import, annotations, export.

Authentication: a legacy token is sent as ``Authorization: Token ...``; a personal access token
(a JWT, Label Studio's default since 1.14) is a refresh token, exchanged once for an access
token sent as ``Bearer``. Responses are read up to a size limit; errors name the call.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

import orjson

MAX_RESPONSE = 256 * 1024 * 1024  # an export of many tasks is large, never unbounded
TIMEOUT = 60.0


class LabelStudioError(RuntimeError):
    pass


class LabelStudio:
    def __init__(self, url: str, token: str, timeout: float = TIMEOUT) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"--label-studio must be an http(s) URL, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._token = token
        self._auth: str | None = None

    def __repr__(self) -> str:  # never the token
        return f"LabelStudio({self.url!r})"

    def create_project(
        self, title: str, label_config: str, overlap: int, description: str = ""
    ) -> int:
        """A project whose every task is shown to ``overlap`` raters."""
        body = {
            "title": title,
            "description": description,
            "label_config": label_config,
            "maximum_annotations": overlap,
            "overlap_cohort_percentage": 100,
            "show_overlap_first": True,
        }
        return int(self._call("POST", "/api/projects", body)["id"])

    def import_tasks(self, project: int, tasks: Sequence[dict[str, Any]]) -> int:
        found = self._call("POST", f"/api/projects/{project}/import", list(tasks))
        return int(found.get("task_count", len(tasks)))

    def tasks(self, project: int) -> list[dict[str, Any]]:
        """Every task of a project with its annotations, page by page."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            query = urllib.parse.urlencode({"project": project, "page": page, "page_size": 500})
            try:
                found = self._call("GET", f"/api/tasks?{query}")
            except LabelStudioError as exc:
                if page > 1 and "404" in str(exc):
                    break  # past the last page
                raise
            batch = found.get("tasks", []) if isinstance(found, dict) else found
            out += batch
            total = found.get("total") if isinstance(found, dict) else None
            if not batch or (total is not None and len(out) >= total):
                break
            page += 1
        return out

    def export(self, project: int) -> list[dict[str, Any]]:
        """The project's JSON export: every task with its annotations."""
        found = self._call("GET", f"/api/projects/{project}/export?exportType=JSON")
        if not isinstance(found, list):
            raise LabelStudioError(f"export of project {project}: expected a list of tasks")
        return found

    def annotate(self, task_id: int, result: list[dict[str, Any]]) -> int:
        """Post one annotation as the token's user (a rater)."""
        found = self._call("POST", f"/api/tasks/{task_id}/annotations", {"result": result})
        return int(found["id"])

    def users(self) -> dict[int, str]:
        """User id -> e-mail (or username): the raters' names in an export."""
        found = self._call("GET", "/api/users")
        items = found if isinstance(found, list) else found.get("results", [])
        return {int(u["id"]): str(u.get("email") or u.get("username")) for u in items}

    def whoami(self) -> dict[str, Any]:
        return dict(self._call("GET", "/api/current-user/whoami"))

    def _authorization(self) -> str:
        if self._auth is None:
            if self._token.count(".") == 2:  # a JWT: a personal access (refresh) token
                found = self._send("POST", "/api/token/refresh/", {"refresh": self._token}, None)
                self._auth = f"Bearer {found['access']}"
            else:
                self._auth = f"Token {self._token}"
        return self._auth

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        return self._send(method, path, body, self._authorization())

    def _send(self, method: str, path: str, body: Any, auth: str | None) -> Any:
        data = None if body is None else orjson.dumps(body)
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if auth is not None:
            request.add_header("Authorization", auth)
        what = f"Label Studio {method} {path.split('?')[0]}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read(MAX_RESPONSE + 1)
        except urllib.error.HTTPError as exc:
            detail = exc.read(2048).decode("utf-8", "replace")
            raise LabelStudioError(f"{what}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise LabelStudioError(f"{what}: {exc} (is Label Studio at {self.url}?)") from None
        if len(raw) > MAX_RESPONSE:
            raise LabelStudioError(f"{what}: response over {MAX_RESPONSE} bytes")
        try:
            return orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError as exc:
            raise LabelStudioError(f"{what}: not JSON ({exc})") from None
