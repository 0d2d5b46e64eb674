"""Which permission each HTTP route needs, and how the bearer token is read (RFC 6750 2.1)."""

from __future__ import annotations

import pytest

from lightbox.api.auth import bearer_token, required_permission
from lightbox.domain.accounts import Permission

P = Permission


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("GET", "/dicom-web/studies", P.READ),
        ("GET", "/dicom-web/studies/1.2/series/3.4/metadata", P.READ),
        ("HEAD", "/dicom-web/studies/1.2/rendered", P.READ),
        ("GET", "/wado", P.READ),
        ("POST", "/dicom-web/studies", P.STORE),
        ("POST", "/dicom-web/studies/1.2.3", P.STORE),
        ("DELETE", "/dicom-web/studies/1.2.3", P.ADMINISTER),  # not a DICOMweb transaction here
        ("GET", "/api/studies", P.READ),
        ("GET", "/api/instances/1.2.3", P.READ),
        ("GET", "/api/statistics", P.READ),
        ("DELETE", "/api/studies/1.2.3", P.DELETE_OWN),  # the route narrows it to own uploads without DELETE
        ("DELETE", "/api/series/1.2.3", P.DELETE_OWN),
        ("POST", "/api/shares", P.SHARE),
        ("DELETE", "/api/shares/3", P.SHARE),
        ("GET", "/api/audit", P.ADMINISTER),
        ("GET", "/api/users", P.ADMINISTER),  # users, tokens and remote AEs: administration
        ("PATCH", "/api/users/ada", P.ADMINISTER),
        ("POST", "/api/users/ada/tokens", P.ADMINISTER),
        ("DELETE", "/api/users/ada/tokens/ct-1", P.ADMINISTER),
        ("GET", "/api/aes", P.ADMINISTER),
        ("DELETE", "/api/aes/CT1", P.ADMINISTER),
        ("POST", "/api/aes/CT1/echo", P.ADMINISTER),
        ("GET", "/admin/users", None),  # administration pages: the page says whom it is for, the API refuses
        ("GET", "/admin/audit", None),
        ("POST", "/admin/users", P.ADMINISTER),
        ("GET", "/accession/RIS-1", P.READ),  # a deep link: it searches
        ("GET", "/dashboard", None),  # a page: its data comes from the API
        ("GET", "/studies", None),
        ("GET", "/upload", None),
        ("POST", "/upload", P.ADMINISTER),  # the page is read; the upload goes to STOW-RS
        ("POST", "/accession/RIS-1", P.ADMINISTER),
        ("GET", "/api/system", P.ADMINISTER),
        ("GET", "/api/openapi.json", P.ADMINISTER),
        ("GET", "/metrics", P.ADMINISTER),
        ("GET", "/api/studiesX", P.ADMINISTER),  # not a listed route: closed
        ("PUT", "/api/studies/1.2.3", P.ADMINISTER),
        ("GET", "/anything/new", P.ADMINISTER),
        ("GET", "/", None),  # the viewer's app: DICOMweb checks what it shows
        ("GET", "/viewer", None),
        ("HEAD", "/viewer/lightbox", None),
        ("POST", "/viewer", P.ADMINISTER),
        ("GET", "/api/me", None),  # any authenticated user
        ("POST", "/api/logout", None),
        ("GET", "/api/logout", P.ADMINISTER),
    ],
)
def test_required_permission(method: str, path: str, needed: Permission | None) -> None:
    assert required_permission(method, path) is needed


def _scope(*headers: tuple[bytes, bytes]) -> dict[str, object]:
    return {"type": "http", "headers": list(headers)}


def test_bearer_token() -> None:
    assert bearer_token(_scope((b"authorization", b"Bearer lbx_abc"))) == "lbx_abc"
    assert bearer_token(_scope((b"authorization", b"bearer   lbx_abc "))) == "lbx_abc"
    assert bearer_token(_scope((b"authorization", b"Basic dXNlcjpwYXNz"))) is None
    assert bearer_token(_scope((b"authorization", b"Bearer "))) is None
    assert bearer_token(_scope((b"accept", b"*/*"))) is None
