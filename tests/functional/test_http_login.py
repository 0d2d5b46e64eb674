"""Web logins against ``lightbox serve``: the session cookie and its attributes, CSRF protection of the
requests that change something, logout, and the throttling of repeated failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom.uid import generate_uid

from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.domain.accounts import Role
from tests.support.server import RunningServer, running_server

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("login") / "data"
    archive = build_archive(load_settings(data_dir=data))
    archive.accounts.add_user("alice", Role.ADMIN, PASSWORD)
    archive.accounts.add_user("vera", Role.VIEWER, PASSWORD)
    archive.accounts.add_user("gone", Role.ADMIN, PASSWORD)
    archive.accounts.disable_user("gone")
    archive.close()
    with running_server(data) as running:
        yield running


def _login(client: httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/api/login", json={"username": name, "password": password})


def test_login_sets_a_session_cookie_that_authenticates(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        answer = _login(client, "alice")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["user"] == "alice" and body["role"] == "admin" and body["expires_in"] == 12 * 3600
        cookies = answer.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("lightbox_session="))
        assert "HttpOnly" in session and "SameSite=lax" in session and "Path=/" in session
        assert "Secure" not in session  # plain HTTP here; set on HTTPS
        csrf = next(c for c in cookies if c.startswith("lightbox_csrf="))
        assert "HttpOnly" not in csrf and body["csrf_token"] in csrf

        me = client.get("/api/me")
        assert me.json() == {"user": "alice", "role": "admin", "via": "session"}
        assert client.get("/dicom-web/studies").status_code in (200, 204)


def test_changes_need_the_csrf_token(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        csrf = _login(client, "alice").json()["csrf_token"]
        path = f"/api/studies/{generate_uid()}"
        refused = client.delete(path)
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
        assert client.delete(path, headers={"X-CSRF-Token": "not-it"}).status_code == 403
        assert client.delete(path, headers={"X-CSRF-Token": csrf}).status_code == 404  # allowed; not stored
    # A bearer token is not sent by a browser on its own: no CSRF token needed
    assert httpx.delete(server.base_url + path, headers=server.headers).status_code == 404


def test_role_applies_to_the_session(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        _login(client, "vera")
        assert client.get("/api/studies").status_code == 200
        assert client.get("/api/system").status_code == 403


def test_logout_ends_the_session(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        csrf = _login(client, "alice").json()["csrf_token"]
        stolen = client.cookies["lightbox_session"]
        assert client.post("/api/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
        assert client.get("/api/me").status_code == 401
    replayed = httpx.get(server.base_url + "/api/me", cookies={"lightbox_session": stolen})
    assert replayed.status_code == 401  # the server forgot it, not only the browser


def test_wrong_or_disabled_logins_are_401(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        for name, password in (("alice", "wrong password!"), ("nobody", PASSWORD), ("gone", PASSWORD)):
            answer = _login(client, name, password)
            assert answer.status_code == 401
            assert answer.json()["detail"] == "wrong user name or password, or the account is disabled"
            assert "lightbox_session" not in client.cookies
        assert client.post("/api/login", json={"username": "alice"}).status_code == 400
        forged = httpx.get(server.base_url + "/api/me", cookies={"lightbox_session": "forged"})
        assert forged.status_code == 401


def test_repeated_failures_are_throttled(tmp_path: Path) -> None:
    data = tmp_path / "data"
    archive = build_archive(load_settings(data_dir=data))
    archive.accounts.add_user("bob", Role.VIEWER, PASSWORD)
    archive.close()
    env = {"LIGHTBOX_SECURITY_LOGIN_ATTEMPTS": "3"}
    with running_server(data, env=env) as running, httpx.Client(base_url=running.base_url) as client:
        for _ in range(3):
            assert _login(client, "bob", "not the password").status_code == 401
        locked = _login(client, "bob")  # even the right password, while locked
        assert locked.status_code == 429
        assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
        assert locked.headers["content-type"] == "application/problem+json"
