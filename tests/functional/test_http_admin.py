"""Administration over HTTP against ``lightbox serve``: users, their API tokens and the remote AE registry
(/api/users, /api/aes), a C-ECHO from the archive to real peers, and what others than administrators get."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.domain.accounts import Role
from tests.support.server import RunningServer, free_port, running_server

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    """The server (its ``client()`` acts as the tests' admin) and a viewer's API token."""
    data = tmp_path_factory.mktemp("admin") / "data"
    archive = build_archive(load_settings(data_dir=data))
    archive.accounts.add_user("vic", Role.VIEWER, PASSWORD)
    viewer_token, _ = archive.accounts.create_token("vic", "t")
    archive.close()
    with running_server(data) as running:
        yield running, viewer_token


@pytest.fixture(scope="module")
def peer() -> Iterator[tuple[str, int]]:
    """A DICOM peer that answers C-ECHO as ECHOSCP, and refuses associations called by another title."""
    ae = AE(ae_title="ECHOSCP")
    ae.add_supported_context(Verification)
    ae.require_called_aet = True
    port = free_port()
    listener = ae.start_server(("127.0.0.1", port), block=False)
    try:
        yield "ECHOSCP", port
    finally:
        listener.shutdown()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections (the kernel's backlog) but never answers an A-ASSOCIATE-RQ."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(4)
        yield int(listening.getsockname()[1])


def _admin(running: RunningServer) -> httpx.Client:
    return running.client(timeout=30)


def _problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    return body


def _admin_records(running: RunningServer, since: str) -> list[str]:
    """The details of the admin records since ``since``, oldest first (the trail is written every second)."""
    deadline = time.monotonic() + 10
    with _admin(running) as client:
        while True:
            records = client.get("/api/audit", params={"action": "admin", "since": since}).json()["records"]
            if records or time.monotonic() > deadline:
                return [f"{r['user']}:{r['protocol']}:{r['detail']}" for r in reversed(records)]
            time.sleep(0.2)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))


def test_users_are_added_listed_and_changed(server: tuple[RunningServer, str]) -> None:
    running, _ = server
    since = _now()
    with _admin(running) as client:
        added = client.post("/api/users", json={"name": "rita", "role": "radiologist", "password": PASSWORD})
        assert added.status_code == 201, added.text
        assert added.json()["name"] == "rita" and added.json()["role"] == "radiologist"
        assert added.json()["disabled"] is False
        device = client.post("/api/users", json={"name": "ct-1", "role": "uploader", "password": None})
        assert device.status_code == 201, device.text  # tokens only, as `lightbox user add --no-password`

        users = client.get("/api/users").json()
        by_name = {u["name"]: u for u in users}
        assert {"rita", "ct-1", "vic"} <= by_name.keys()
        assert [u["name"] for u in users] == sorted(u["name"] for u in users)
        assert all(set(u) == {"name", "role", "disabled", "created_at"} for u in users)  # never a hash
        assert "argon2" not in client.get("/api/users").text

        changed = client.patch("/api/users/rita", json={"role": "viewer", "disabled": True})
        assert changed.status_code == 200, changed.text
        assert changed.json()["role"] == "viewer" and changed.json()["disabled"] is True
        login = httpx.post(running.base_url + "/api/login", json={"username": "rita", "password": PASSWORD})
        assert login.status_code == 401  # disabled
        new_password = "another long passphrase"
        assert client.patch("/api/users/rita", json={"disabled": False, "password": new_password}).is_success
        login = httpx.post(running.base_url + "/api/login", json={"username": "rita", "password": PASSWORD})
        assert login.status_code == 401  # the old password no longer works
        login = httpx.post(
            running.base_url + "/api/login", json={"username": "rita", "password": new_password}
        )
        assert login.status_code == 200, login.text
        assert client.patch("/api/users/rita", json={}).json()["role"] == "viewer"  # nothing to change
    details = _admin_records(running, since)
    assert "tester:api:user added (radiologist): rita" in details
    assert "tester:api:role changed (viewer): rita" in details
    assert "tester:api:user disabled: rita" in details
    assert "tester:api:password changed: rita" in details


def test_user_errors(server: tuple[RunningServer, str]) -> None:
    running, _ = server
    with _admin(running) as client:
        assert client.post(
            "/api/users", json={"name": "dup", "role": "viewer", "password": PASSWORD}
        ).is_success
        taken = client.post("/api/users", json={"name": "dup", "role": "admin", "password": PASSWORD})
        assert "dup" in _problem(taken, 409)["detail"]
        short = client.post("/api/users", json={"name": "shorty", "role": "viewer", "password": "short"})
        assert "password" in _problem(short, 400)["detail"]
        for body in (
            {"name": "bad name", "role": "viewer", "password": PASSWORD},
            {"name": "x", "role": "king", "password": PASSWORD},
            {"name": "x", "role": "viewer", "password": PASSWORD, "extra": 1},
        ):
            _problem(client.post("/api/users", json=body), 400)
        _problem(client.patch("/api/users/nobody", json={"disabled": True}), 404)
        _problem(client.patch("/api/users/dup", json={"password": "short"}), 400)
        _problem(client.patch("/api/users/dup", json={"disable": True}), 400)  # a misspelt field
        # An administrator cannot lock themselves out; another one could
        own = client.patch("/api/users/tester", json={"disabled": True})
        assert "your own" in _problem(own, 409)["detail"]
        _problem(client.patch("/api/users/tester", json={"role": "viewer"}), 409)
        assert client.get("/api/users").is_success  # still an administrator
        _problem(client.get("/api/users/nobody/tokens"), 404)
        _problem(client.post("/api/users/nobody/tokens", json={"label": "x"}), 404)
        _problem(client.delete("/api/users/dup/tokens/none"), 404)


def test_tokens_are_created_used_and_revoked(server: tuple[RunningServer, str]) -> None:
    running, _ = server
    with _admin(running) as client:
        assert client.post("/api/users", json={"name": "pacs-script", "role": "viewer"}).status_code == 201
        created = client.post("/api/users/pacs-script/tokens", json={"label": "nightly", "days": 30})
        assert created.status_code == 201, created.text
        body = created.json()
        token = body["token"]
        assert token.startswith("lbx_") and body["label"] == "nightly" and body["revoked_at"] is None
        assert body["expires_at"] is not None and body["user"] == "pacs-script"
        forever = client.post("/api/users/pacs-script/tokens", json={"label": "forever"})
        assert forever.status_code == 201 and forever.json()["expires_at"] is None
        again = client.post("/api/users/pacs-script/tokens", json={"label": "nightly"})
        _problem(again, 409)
        _problem(client.post("/api/users/pacs-script/tokens", json={"label": "x", "days": 0}), 400)

        me = httpx.get(running.base_url + "/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["user"] == "pacs-script"

        listed = client.get("/api/users/pacs-script/tokens").json()
        assert [t["label"] for t in listed] == ["forever", "nightly"]
        assert all("token" not in t for t in listed)  # never the token again
        assert token not in client.get("/api/users/pacs-script/tokens").text

        revoked = client.delete("/api/users/pacs-script/tokens/nightly")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        me = httpx.get(running.base_url + "/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401
        listed = {t["label"]: t for t in client.get("/api/users/pacs-script/tokens").json()}
        assert listed["nightly"]["revoked_at"] is not None and listed["nightly"]["last_used_at"] is not None
        assert listed["forever"]["revoked_at"] is None


def test_remote_aes_are_added_and_removed(server: tuple[RunningServer, str]) -> None:
    running, _ = server
    since = _now()
    with _admin(running) as client:
        body = {
            "ae_title": "WORKSTATION1",
            "host": "10.0.0.7",
            "port": 11112,
            "description": "reading room 2",
            "permissions": ["find", "move", "echo"],
        }
        added = client.post("/api/aes", json=body)
        assert added.status_code == 201, added.text
        assert added.json() == {**body, "permissions": ["echo", "find", "move"]}
        default = client.post("/api/aes", json={"ae_title": "CT2", "host": "ct2.example", "port": 104})
        assert default.json()["permissions"] == ["echo", "store", "find", "get", "move"]
        assert {"WORKSTATION1", "CT2"} <= {ae["ae_title"] for ae in client.get("/api/aes").json()}

        _problem(client.post("/api/aes", json=body), 409)
        for invalid in (
            {**body, "ae_title": "A\\B"},
            {**body, "ae_title": "   "},
            {**body, "ae_title": "X" * 17},
            {**body, "port": 0},
            {**body, "host": "a b"},
            {**body, "permissions": ["everything"]},
        ):
            _problem(client.post("/api/aes", json=invalid), 400)

        removed = client.delete("/api/aes/WORKSTATION1")
        assert removed.status_code == 200 and removed.json()["ae_title"] == "WORKSTATION1"
        _problem(client.delete("/api/aes/WORKSTATION1"), 404)
        assert "WORKSTATION1" not in {ae["ae_title"] for ae in client.get("/api/aes").json()}
        slashed = client.post("/api/aes", json={"ae_title": "A/B", "host": "h", "port": 104})
        assert slashed.status_code == 201
        assert client.delete("/api/aes/A%2FB").status_code == 200  # a slash in a title is a title's
    details = _admin_records(running, since)
    assert "tester:api:remote AE registered (10.0.0.7:11112, echo,find,move): WORKSTATION1" in details
    assert "tester:api:remote AE removed: WORKSTATION1" in details


def test_echo_of_a_peer_that_answers(server: tuple[RunningServer, str], peer: tuple[str, int]) -> None:
    running, _ = server
    title, port = peer
    with _admin(running) as client:
        assert client.post("/api/aes", json={"ae_title": title, "host": "127.0.0.1", "port": port}).is_success
        answer = client.post(f"/api/aes/{title}/echo")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["ok"] is True and body["status"] == 0 and body["error"] is None
        assert 0 < body["milliseconds"] < 5000


def test_echo_failures_are_answers(
    server: tuple[RunningServer, str], peer: tuple[str, int], silent_port: int
) -> None:
    running, _ = server
    _, port = peer
    closed = free_port()  # nothing listens there
    with _admin(running) as client:
        for title, host, where in (
            ("CLOSED", "127.0.0.1", closed),
            ("WRONGTITLE", "127.0.0.1", port),  # the peer answers to ECHOSCP only
            ("SILENT", "127.0.0.1", silent_port),
            ("NOHOST", "no-such-host.invalid", 104),
        ):
            assert client.post("/api/aes", json={"ae_title": title, "host": host, "port": where}).is_success
        results = {
            title: client.post(f"/api/aes/{title}/echo").json()
            for title in ("CLOSED", "WRONGTITLE", "SILENT", "NOHOST")
        }
        _problem(client.post("/api/aes/NOTREGISTERED/echo"), 404)
    for result in results.values():
        assert result["ok"] is False and result["error"], result
    assert results["CLOSED"]["status"] is None and "cannot reach CLOSED" in results["CLOSED"]["error"]
    assert "called AE title not recognized" in results["WRONGTITLE"]["error"]
    assert "within 5 seconds" in results["SILENT"]["error"]
    assert 4500 <= results["SILENT"]["milliseconds"] < 8000
    assert "cannot reach NOHOST" in results["NOHOST"]["error"]


def test_others_than_administrators_are_refused(server: tuple[RunningServer, str]) -> None:
    running, viewer_token = server
    headers = {"Authorization": f"Bearer {viewer_token}"}
    for method, path, body in (
        ("GET", "/api/users", None),
        ("POST", "/api/users", {"name": "eve", "role": "admin", "password": PASSWORD}),
        ("PATCH", "/api/users/vic", {"role": "admin"}),
        ("GET", "/api/users/vic/tokens", None),
        ("POST", "/api/users/vic/tokens", {"label": "mine"}),
        ("DELETE", "/api/users/vic/tokens/t", None),
        ("GET", "/api/aes", None),
        ("POST", "/api/aes", {"ae_title": "EVE", "host": "h", "port": 104}),
        ("DELETE", "/api/aes/EVE", None),
        ("POST", "/api/aes/EVE/echo", None),
    ):
        answer = httpx.request(method, running.base_url + path, json=body, headers=headers)
        assert "viewer" in _problem(answer, 403)["detail"], (method, path)
    with _admin(running) as client:
        assert "eve" not in {u["name"] for u in client.get("/api/users").json()}
        assert {u["name"]: u["role"] for u in client.get("/api/users").json()}["vic"] == "viewer"
