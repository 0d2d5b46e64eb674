"""Every HTTP route but the health check asks for a bearer token, and each role gets what it may do:
401 without valid credentials (with the Bearer challenge), 403 for a role that may not, as problem+json."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydicom.uid import generate_uid

from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.domain.accounts import Role
from tests.support.dicom import part10
from tests.support.server import RunningServer, running_server

STUDY = generate_uid()
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, dict[str, str]]]:
    """The server, and a token for a user of each role (and of a disabled and a revoked token)."""
    data = tmp_path_factory.mktemp("auth") / "data"
    archive = build_archive(load_settings(data_dir=data))
    archive.ingest.ingest([part10(StudyInstanceUID=STUDY)], "t")
    tokens = {}
    for role in Role:
        archive.accounts.add_user(role.value, role, None)
        tokens[role.value], _ = archive.accounts.create_token(role.value, "t")
    archive.accounts.add_user("gone", Role.ADMIN, None)
    tokens["disabled"], _ = archive.accounts.create_token("gone", "t")
    archive.accounts.disable_user("gone")
    tokens["revoked"], _ = archive.accounts.create_token("admin", "old")
    archive.accounts.revoke_token("admin", "old")
    archive.close()
    with running_server(data) as running:
        yield running, tokens


def _call(server: RunningServer, method: str, path: str, token: str | None, **kw: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, server.base_url + path, headers=headers, timeout=30, **kw)  # type: ignore[arg-type]


def _stow_body(blob: bytes | None = None) -> tuple[bytes, dict[str, str]]:
    boundary = "lightbox-auth-test"
    blob = blob or part10(StudyInstanceUID=STUDY)
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + blob
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'}


ROUTES = [
    ("GET", "/dicom-web/studies"),
    ("GET", f"/dicom-web/studies/{STUDY}/metadata"),
    ("GET", "/api/studies"),
    ("GET", "/api/statistics"),
    ("GET", "/api/system"),
    ("GET", "/api/openapi.json"),
    ("GET", "/metrics"),
    ("DELETE", f"/api/studies/{generate_uid()}"),
    ("GET", f"/wado?requestType=WADO&studyUID={STUDY}&seriesUID=1.2&objectUID=1.3"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_or_bad_credentials_are_401(
    server: tuple[RunningServer, dict[str, str]], method: str, path: str
) -> None:
    running, tokens = server
    admin = tokens["admin"]
    tampered = admin[:-2] + ("xy" if not admin.endswith("xy") else "zz")
    for token in (None, "", tampered, "lbx_" + "A" * 43, tokens["disabled"], tokens["revoked"], admin[4:]):
        answer = _call(running, method, path, token)
        assert answer.status_code == 401, (token, answer.text)
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == 401
    basic = httpx.request(method, running.base_url + path, auth=("admin", PASSWORD))
    assert basic.status_code == 401


def test_health_is_open(server: tuple[RunningServer, dict[str, str]]) -> None:
    running, _ = server
    assert _call(running, "GET", "/api/health", None).status_code == 200


# What each role gets: the status of each request (200/204 allowed, 403 refused, 404 allowed but absent)
EXPECTED = {
    "admin": {
        **{"search": 200, "store": 200, "delete": 404, "system": 200, "metrics": 200, "list": 200},
        **{"audit": 200, "shares": 200, "users": 200, "aes": 200},
    },
    "radiologist": {  # a radiologist may delete what they stored: here, nothing of that UID
        **{"search": 200, "store": 200, "delete": 404, "system": 403, "metrics": 403, "list": 200},
        **{"audit": 403, "shares": 200, "users": 403, "aes": 403},
    },
    "viewer": {
        **{"search": 200, "store": 403, "delete": 403, "system": 403, "metrics": 403, "list": 200},
        **{"audit": 403, "shares": 403, "users": 403, "aes": 403},
    },
    "uploader": {
        **{"search": 403, "store": 200, "delete": 403, "system": 403, "metrics": 403, "list": 403},
        **{"audit": 403, "shares": 403, "users": 403, "aes": 403},
    },
}


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_each_role_gets_what_it_may(server: tuple[RunningServer, dict[str, str]], role: str) -> None:
    running, tokens = server
    token = tokens[role]
    body, headers = _stow_body()
    got = {
        "search": _call(running, "GET", "/dicom-web/studies", token).status_code,
        "store": httpx.post(
            running.base_url + "/dicom-web/studies",
            content=body,
            headers={**headers, "Authorization": f"Bearer {token}"},
            timeout=30,
        ).status_code,
        "delete": _call(running, "DELETE", f"/api/studies/{generate_uid()}", token).status_code,
        "system": _call(running, "GET", "/api/system", token).status_code,
        "metrics": _call(running, "GET", "/metrics", token).status_code,
        "list": _call(running, "GET", "/api/studies", token).status_code,
        "audit": _call(running, "GET", "/api/audit", token).status_code,
        "shares": _call(running, "GET", "/api/shares", token).status_code,
        "users": _call(running, "GET", "/api/users", token).status_code,
        "aes": _call(running, "GET", "/api/aes", token).status_code,
    }
    assert got == EXPECTED[role]
    refused = _call(running, "GET", "/api/system", token)
    if refused.status_code == 403:
        assert refused.headers["content-type"] == "application/problem+json"
        assert role in refused.json()["detail"]


def test_openapi_declares_the_bearer_scheme(server: tuple[RunningServer, dict[str, str]]) -> None:
    running, tokens = server
    document = _call(running, "GET", "/api/openapi.json", tokens["admin"]).json()
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token: lightbox token create --user NAME --name LABEL",
    }
    assert document["security"] == [{"bearer": []}]
    assert document["paths"]["/api/health"]["get"]["security"] == []
    assert {"401", "403"} <= document["paths"]["/api/studies"]["get"]["responses"].keys()


def test_injection_in_the_token_is_refused_and_harmless(
    server: tuple[RunningServer, dict[str, str]],
) -> None:
    running, tokens = server
    for token in (
        "lbx_' OR '1'='1",
        'lbx_"; DROP TABLE users;--',
        "lbx_" + "%00" * 10,
        "lbx_../../etc/passwd",
    ):
        assert _call(running, "GET", "/api/studies", token).status_code == 401
    assert _call(running, "GET", "/api/studies", tokens["viewer"]).status_code == 200  # users still there


def test_a_radiologist_deletes_only_what_they_stored(server: tuple[RunningServer, dict[str, str]]) -> None:
    running, tokens = server
    own, mixed = generate_uid(), generate_uid()

    def stow(token: str, study: str) -> str:
        instance = generate_uid()
        body, headers = _stow_body(part10(StudyInstanceUID=study, SOPInstanceUID=instance))
        answer = httpx.post(
            running.base_url + "/dicom-web/studies",
            content=body,
            headers={**headers, "Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return instance

    stow(tokens["radiologist"], own)
    mine = stow(tokens["radiologist"], mixed)
    stow(tokens["uploader"], mixed)
    radiologist = tokens["radiologist"]
    refused = _call(running, "DELETE", f"/api/studies/{mixed}", radiologist)
    assert refused.status_code == 403 and "did not store" in refused.json()["detail"]
    assert _call(running, "DELETE", f"/api/studies/{STUDY}", radiologist).status_code == 403  # imported
    assert _call(running, "DELETE", f"/api/instances/{mine}", radiologist).status_code == 200
    assert _call(running, "DELETE", f"/api/studies/{own}", radiologist).status_code == 200
    assert _call(running, "GET", f"/api/studies/{own}", radiologist).status_code == 404
    assert _call(running, "GET", f"/api/studies/{mixed}", radiologist).status_code == 200  # the rest stays
    assert _call(running, "DELETE", f"/api/studies/{mixed}", tokens["admin"]).status_code == 200
