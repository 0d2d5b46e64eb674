"""Lightbox's own pages against ``lightbox serve``: the login page and its assets need no credentials,
and the page sends the browser on only to a path of this site."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import RunningServer, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("pages") / "data") as running:
        yield running


def _next_of(page: str) -> str:
    match = re.search(r'data-next="([^"]*)"', page)
    assert match, page
    return html.unescape(match.group(1))


def test_the_login_page_needs_no_credentials(server: RunningServer) -> None:
    page = httpx.get(server.base_url + "/login")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    body = page.text
    assert '<form id="login"' in body and 'autocomplete="current-password"' in body
    assert '<html lang="en">' in body and 'href="#main"' in body  # language and a skip link
    for asset, kind in (("/static/login.js", "javascript"), ("/static/lightbox.css", "text/css")):
        answer = httpx.get(server.base_url + asset)
        assert answer.status_code == 200 and kind in answer.headers["content-type"], asset
        assert f'"{asset}"' in body


def test_the_page_sends_the_browser_on_to_this_site_only(server: RunningServer) -> None:
    def target(next_: str) -> str:
        return _next_of(httpx.get(server.base_url + "/login", params={"next": next_}).text)

    assert target("/viewer?StudyInstanceUIDs=1.2.3") == "/viewer?StudyInstanceUIDs=1.2.3"
    assert target("//evil.example/") == "/"
    assert target("https://evil.example/") == "/"
    hostile = '/"><script>alert(1)</script>'
    page = httpx.get(server.base_url + "/login", params={"next": hostile}).text
    assert "<script>alert(1)" not in page and _next_of(page) == hostile  # escaped, and only a path here


def test_the_static_folder_holds_nothing_else(server: RunningServer) -> None:
    for path in ("/static/../pyproject.toml", "/static/%2e%2e/%2e%2e/pyproject.toml", "/static/missing.js"):
        answer = httpx.get(server.base_url + path)
        assert answer.status_code in (401, 404), path  # outside /static/: not open; inside: not there
        assert "[project]" not in answer.text
    assert httpx.get(server.base_url + "/static/").status_code == 404  # no listing
