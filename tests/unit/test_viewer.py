"""The viewer's files as the web adapter serves them, from a small folder laid out like the installed one:
cache headers, content types, precompressed siblings, the app's routes, and nothing outside the folder."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path

import brotli
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lightbox.dicomweb import problems
from lightbox.web.app_config import app_config_js, viewer_config
from lightbox.web.viewer import IMMUTABLE, REVALIDATE, Viewer, install, is_page

BUNDLE = "app.bundle.0f6159c501addfe9.js"
WASM = "0ddf166f7a343eda.wasm"
SCRIPT = b"console.log('viewer');\n" * 100


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "viewer"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>OHIF Viewer</title>")
    (root / BUNDLE).write_bytes(SCRIPT)
    (root / (BUNDLE + ".gz")).write_bytes(gzip.compress(SCRIPT))
    (root / WASM).write_bytes(b"\0asm\1\0\0\0")
    (root / "1602.css").write_text("body{}")  # a chunk number, not a content hash
    (root / "assets" / "favicon.ico").write_bytes(b"\0\0\1\0")
    (root / ".installed").write_text("@ohif/app@3.13.2\n")
    (tmp_path / "secret.txt").write_text("not the viewer's")
    (root / "escape.txt").symlink_to(tmp_path / "secret.txt")
    return root


def _client(folder: Path | None) -> TestClient:
    app = FastAPI()
    problems.install(app)

    @app.get("/api/thing")
    async def thing() -> dict[str, str]:
        return {"thing": "archive"}

    install(app, Viewer(folder))
    return TestClient(app)


@pytest.fixture
def client(folder: Path) -> Iterator[TestClient]:
    with _client(folder) as running:
        yield running


@pytest.mark.parametrize(
    ("path", "page"),
    [
        ("/", True),
        ("/index.html", True),
        ("/viewer", True),
        ("/viewer/lightbox", True),
        ("/segmentation", True),
        ("/local", True),
        ("/viewerX", False),
        ("/api/studies", False),
        ("/dicom-web/studies", False),
        ("/login", False),
        ("/anything/new", False),
        ("//viewer", False),
    ],
)
def test_the_app_routes(path: str, page: bool) -> None:
    assert is_page(path) is page


def test_pages_answer_index_html_and_are_revalidated(client: TestClient) -> None:
    for path in ("/", "/viewer?StudyInstanceUIDs=1.2.3", "/segmentation", "/viewer/lightbox"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert "OHIF Viewer" in answer.text and answer.headers["content-type"].startswith("text/html")
        assert answer.headers["cache-control"] == REVALIDATE


def test_content_hashed_files_are_immutable_and_the_rest_revalidated(client: TestClient) -> None:
    assert client.get("/" + BUNDLE).headers["cache-control"] == IMMUTABLE
    wasm = client.get("/" + WASM)
    assert wasm.headers["content-type"] == "application/wasm"
    assert wasm.headers["cache-control"] == IMMUTABLE
    css = client.get("/1602.css")  # named by chunk number: a new version may change it under the same name
    assert css.headers["cache-control"] == REVALIDATE and css.headers["content-type"].startswith("text/css")
    assert client.get("/assets/favicon.ico").headers["cache-control"] == REVALIDATE


def test_the_precompressed_sibling_when_accepted(client: TestClient) -> None:
    packed = client.get("/" + BUNDLE, headers={"Accept-Encoding": "gzip, deflate"})
    assert packed.headers["content-encoding"] == "gzip" and packed.headers["vary"] == "Accept-Encoding"
    assert packed.content == SCRIPT  # decoded by the client: the same bytes
    assert packed.headers["content-type"] == "text/javascript; charset=utf-8"
    for refused in ("identity", "gzip;q=0", "br"):
        plain = client.get("/" + BUNDLE, headers={"Accept-Encoding": refused})
        assert "content-encoding" not in plain.headers and plain.content == SCRIPT, refused
        assert plain.headers["vary"] == "Accept-Encoding"


def test_brotli_is_preferred_when_installed(client: TestClient, folder: Path) -> None:
    (folder / (BUNDLE + ".br")).write_bytes(brotli.compress(SCRIPT))
    with _client(folder) as fresh:
        for accepted in ("gzip, deflate, br, zstd", "br", "br;q=0.5, gzip"):
            answer = fresh.get("/" + BUNDLE, headers={"Accept-Encoding": accepted})
            assert answer.headers["content-encoding"] == "br", accepted
            assert answer.headers["vary"] == "Accept-Encoding"
            assert answer.headers["cache-control"] == IMMUTABLE
            assert answer.content == SCRIPT  # decoded by the client: the original bytes
        with fresh.stream("GET", "/" + BUNDLE, headers={"Accept-Encoding": "br"}) as raw:
            assert brotli.decompress(b"".join(raw.iter_raw())) == SCRIPT  # the bytes on the wire
        gzipped = fresh.get("/" + BUNDLE, headers={"Accept-Encoding": "gzip, br;q=0"})
        assert gzipped.headers["content-encoding"] == "gzip" and gzipped.content == SCRIPT
        plain = fresh.get("/" + BUNDLE, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == SCRIPT
        # each encoding is its own representation: its own ETag, so a cache never mixes them up
        assert answer.headers["etag"] != gzipped.headers["etag"] != plain.headers["etag"]


def test_a_current_copy_is_not_sent_again(client: TestClient) -> None:
    first = client.get("/")
    again = client.get("/", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["cache-control"] == REVALIDATE and again.headers["etag"] == first.headers["etag"]
    since = client.get("/1602.css", headers={"If-Modified-Since": first.headers["last-modified"]})
    assert since.status_code == 304
    assert client.get("/", headers={"If-None-Match": '"other"'}).status_code == 200


def test_head_answers_the_headers(client: TestClient) -> None:
    answer = client.head("/" + BUNDLE, headers={"Accept-Encoding": "identity"})
    assert answer.status_code == 200 and answer.content == b""
    assert int(answer.headers["content-length"]) == len(SCRIPT)


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/..%2fsecret.txt",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/escape.txt",  # a symbolic link out of the folder
        "/.installed",
        "/" + BUNDLE + ".gz",  # a sibling is an encoding, not a file of its own
        "/assets",
        "/assets/",
        "/missing.js",
    ],
)
def test_nothing_else_is_served(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404, path
    assert "not the viewer's" not in answer.text
    assert answer.headers["content-type"] == "application/problem+json"


def test_the_archive_keeps_its_answers(client: TestClient) -> None:
    assert client.get("/api/thing").json() == {"thing": "archive"}
    assert client.get("/api/other").status_code == 404
    assert client.post("/api/thing").status_code == 405
    assert client.post("/viewer").status_code == 404  # the app's pages are read-only


def test_without_the_viewer_its_pages_say_so() -> None:
    with _client(None) as client:
        page = client.get("/viewer")
        assert page.status_code == 503 and "not installed" in page.text and "make viewer" in page.text
        assert client.get("/" + BUNDLE).status_code == 404
        assert client.get("/api/thing").status_code == 200


def test_open_means_a_file_of_the_viewer(folder: Path) -> None:
    viewer = Viewer(folder)
    assert viewer.is_open("GET", "/" + BUNDLE) and viewer.is_open("HEAD", "/assets/favicon.ico")
    assert viewer.is_open("GET", "/app-config.js")
    assert not viewer.is_open("POST", "/" + BUNDLE)
    closed = ("/", "/index.html", "/viewer", "/.installed", "/escape.txt", "/api/studies", "/x/../" + BUNDLE)
    for path in closed:
        assert not viewer.is_open("GET", path), path


def _config_of(script: str) -> dict[str, object]:
    match = re.search(r"var config = (\{.*?\n  \});", script, re.DOTALL)
    assert match, script
    parsed: dict[str, object] = json.loads(match.group(1))
    return parsed


def test_app_config_points_at_this_archive(client: TestClient) -> None:
    answer = client.get("/app-config.js")
    assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
    assert answer.headers["cache-control"] == REVALIDATE
    script = answer.text
    assert script == app_config_js() and _config_of(script) == viewer_config()
    assert 'source.qidoRoot = origin + "/dicom-web";' in script
    assert 'source.wadoRoot = origin + "/dicom-web";' in script
    assert 'source.wadoUriRoot = origin + "/wado";' in script
    assert "window.config = config;" in script
    # a request refused for want of a session (it expired) sends the browser to log in and come back
    assert "error.status === 401" in script and 'window.location.assign("/login?next="' in script


def test_app_config_settings() -> None:
    config = viewer_config()
    assert config["routerBasename"] == "/" and config["defaultDataSourceName"] == "lightbox"
    assert config["investigationalUseDialog"] == {"option": "never"}
    assert config["customizationService"] == {"ohif.tours": {"$set": []}}
    (source,) = config["dataSources"]
    assert source["namespace"] == "@ohif/extension-default.dataSourcesModule.dicomweb"
    assert source["sourceName"] == "lightbox"
    dicomweb = source["configuration"]
    assert dicomweb["imageRendering"] == dicomweb["thumbnailRendering"] == "wadors"
    assert dicomweb["staticWado"] is False and "singlepart" not in dicomweb
    assert dicomweb["bulkDataURI"] == {"enabled": True, "relativeResolution": "studies"}
    flags = ("qidoSupportsIncludeField", "supportsFuzzyMatching", "supportsWildcard", "enableStudyLazyLoad")
    for flag in flags:
        assert dicomweb[flag] is True, flag
