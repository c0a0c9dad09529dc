"""The Label Studio client against the real server: a legacy token and a personal access token
(a JWT refresh token, exchanged for an access token) both work; a wrong token, a missing project
and an unreachable server are errors naming the call."""

from __future__ import annotations

import pytest

from connectors.label_studio import LabelStudio, LabelStudioError
from tests.integration.conftest import free_port
from tools.label_studio import Running


def test_a_personal_access_token_is_exchanged_and_works(label_studio_server: Running) -> None:
    rater = label_studio_server.users[2]
    legacy = LabelStudio(label_studio_server.url, rater.token)
    assert legacy.whoami()["email"] == rater.email
    try:
        pat = legacy._call("POST", "/api/token/")["token"]
    except LabelStudioError as exc:  # one exists already (409): rotate it for a fresh one
        assert "409" in str(exc)
        pat = legacy._call("POST", "/api/token/rotate/")["refresh"]
    assert pat.count(".") == 2  # a JWT
    assert LabelStudio(label_studio_server.url, pat).whoami()["email"] == rater.email
    assert pat not in repr(LabelStudio(label_studio_server.url, pat))


def test_errors_name_the_call(label_studio_server: Running) -> None:
    with pytest.raises(LabelStudioError, match=r"GET /api/current-user/whoami: HTTP 401"):
        LabelStudio(label_studio_server.url, "not-a-token").whoami()
    admin = LabelStudio(label_studio_server.url, label_studio_server.token)
    with pytest.raises(LabelStudioError, match=r"GET /api/projects/987654/export: HTTP 404"):
        admin.export(987_654)
    with pytest.raises(LabelStudioError, match="is Label Studio at"):
        LabelStudio(f"http://127.0.0.1:{free_port()}", "x").whoami()
    with pytest.raises(ValueError, match="http"):
        LabelStudio("ftp://example", "x")
