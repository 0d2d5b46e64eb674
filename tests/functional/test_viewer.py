"""The installed viewer (OHIF, from make viewer) served by ``lightbox serve``: its configuration, its pages
behind the login, its files open, cached and precompressed, and nothing outside its folder."""

from __future__ import annotations

import gzip
import http.client
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import brotli
import httpx
import pytest
from pydicom.uid import generate_uid

from lightbox.app import build_archive
from lightbox.config import INSTALLED_VIEWER, load_settings
from lightbox.domain.accounts import Role
from tests.support.ci import IN_CI
from tests.support.dicom import part10
from tests.support.server import RunningServer, running_server

PASSWORD = "correct horse battery staple"
STUDY = generate_uid()
INSTALLER = Path(__file__).resolve().parents[2] / "scripts" / "install_viewer.py"


@pytest.fixture(scope="module")
def viewer_dir() -> Path:
    """The viewer as make viewer installs it; installed here when it is not (CI has npm)."""
    if not (INSTALLED_VIEWER / "index.html").is_file():
        done = subprocess.run([sys.executable, str(INSTALLER)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            if IN_CI:
                pytest.fail(f"the viewer could not be installed: {done.stderr}")
            pytest.skip(f"the viewer is not installed: {done.stderr.strip()}")
    return INSTALLED_VIEWER


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, viewer_dir: Path) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("viewer") / "data"
    archive = build_archive(load_settings(data_dir=data))
    archive.accounts.add_user("vera", Role.VIEWER, PASSWORD)
    archive.ingest.ingest([part10(StudyInstanceUID=STUDY)], "t")
    archive.close()
    with running_server(data, env={"LIGHTBOX_WEB_VIEWER_DIR": str(viewer_dir)}) as running:
        yield running


@pytest.fixture
def browser(server: RunningServer) -> Iterator[httpx.Client]:
    """A logged-in browser: the session cookie of POST /api/login."""
    with httpx.Client(base_url=server.base_url) as client:
        answer = client.post("/api/login", json={"username": "vera", "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        yield client


def _bundle(viewer_dir: Path) -> str:
    return next(p.name for p in viewer_dir.glob("app.bundle.*.js"))


def test_app_config_points_at_the_archive(server: RunningServer) -> None:
    answer = httpx.get(server.base_url + "/app-config.js")  # no credentials: no patient data in it
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert answer.headers["cache-control"] == "no-cache"
    config = _evaluate(answer.text, "https://pacs.example.org:8443")
    assert config["routerBasename"] == "/" and config["showStudyList"] is True
    assert config["investigationalUseDialog"] == {"option": "never"}
    assert config["customizationService"] == {"ohif.tours": {"$set": []}}
    assert config["defaultDataSourceName"] == "lightbox"
    (source,) = config["dataSources"]
    assert source["sourceName"] == "lightbox"
    assert source["namespace"] == "@ohif/extension-default.dataSourcesModule.dicomweb"
    dicomweb = source["configuration"]
    assert dicomweb["qidoRoot"] == dicomweb["wadoRoot"] == "https://pacs.example.org:8443/dicom-web"
    assert dicomweb["wadoUriRoot"] == "https://pacs.example.org:8443/wado"
    assert dicomweb["imageRendering"] == dicomweb["thumbnailRendering"] == "wadors"
    assert dicomweb["qidoSupportsIncludeField"] and dicomweb["enableStudyLazyLoad"]
    assert dicomweb["staticWado"] is False and dicomweb["omitQuotationForMultipartRequest"] is True


def _evaluate(script: str, origin: str) -> dict:  # type: ignore[type-arg]
    """``window.config`` as a browser at ``origin`` gets it: run by node when there is one, else read."""
    node = shutil.which("node")
    if node is not None:
        program = f"global.window = {{location: {{origin: {json.dumps(origin)}}}}};\n{script}\n"
        program += "process.stdout.write(JSON.stringify(window.config));\n"
        done = subprocess.run([node, "-"], input=program, capture_output=True, text=True, check=True)
        return json.loads(done.stdout)  # type: ignore[no-any-return]
    match = re.search(r"var config = (\{.*?\n  \});", script, re.DOTALL)
    assert match, script
    config = json.loads(match.group(1))
    roots = dict(re.findall(r'source\.(\w+) = origin \+ "([^"]+)";', script))
    config["dataSources"][0]["configuration"].update({k: origin + v for k, v in roots.items()})
    return config  # type: ignore[no-any-return]


def test_pages_need_a_login(server: RunningServer) -> None:
    for path in ("/", "/viewer?StudyInstanceUIDs=1.2.3", "/segmentation"):
        answer = httpx.get(server.base_url + path)
        assert answer.status_code == 303, path
        location = urlsplit(answer.headers["location"])
        assert location.path == "/login" and not location.netloc
        assert parse_qs(location.query)["next"] == [path]
    # An API client without credentials still gets the API's answer
    for path in ("/api/studies", "/dicom-web/studies"):
        answer = httpx.get(server.base_url + path)
        assert answer.status_code == 401, path
        assert answer.headers["content-type"] == "application/problem+json"


def test_pages_are_the_app_for_a_logged_in_user(browser: httpx.Client) -> None:
    for path in ("/", "/viewer?StudyInstanceUIDs=1.2.3", "/viewer/lightbox", "/local"):
        answer = browser.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["cache-control"] == "no-cache"
        page = answer.text
        assert '<div id="root">' in page and 'src="/app-config.js"' in page
        assert "init-service-worker" not in page  # trimmed with the service worker


def test_only_the_apps_own_routes_are_pages(server: RunningServer) -> None:
    assert httpx.get(server.base_url + "/viewer", headers=server.headers).status_code == 200  # a token too
    other = httpx.get(server.base_url + "/nothing-of-the-viewer", headers=server.headers)
    assert other.status_code == 404 and other.headers["content-type"] == "application/problem+json"
    assert httpx.get(server.base_url + "/api/nothing", headers=server.headers).status_code == 404


def test_files_are_open_cached_and_precompressed(server: RunningServer, viewer_dir: Path) -> None:
    bundle = _bundle(viewer_dir)
    plain = httpx.get(f"{server.base_url}/{bundle}", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert plain.content == (viewer_dir / bundle).read_bytes()
    with httpx.stream(
        "GET", f"{server.base_url}/{bundle}", headers={"Accept-Encoding": "gzip, deflate"}
    ) as packed:
        assert packed.headers["content-encoding"] == "gzip" and packed.headers["vary"] == "Accept-Encoding"
        raw = b"".join(packed.iter_raw())  # the bytes on the wire
    assert len(raw) < len(plain.content) / 3 and gzip.decompress(raw) == plain.content
    with httpx.stream(
        "GET", f"{server.base_url}/{bundle}", headers={"Accept-Encoding": "gzip, deflate, br, zstd"}
    ) as best:  # what chromium asks for: brotli, written at install, is preferred
        assert best.headers["content-encoding"] == "br" and best.headers["vary"] == "Accept-Encoding"
        smallest = b"".join(best.iter_raw())
    assert len(smallest) < len(raw) and brotli.decompress(smallest) == plain.content

    wasm = next(p.name for p in viewer_dir.glob("*.wasm"))
    answer = httpx.get(f"{server.base_url}/{wasm}")
    assert answer.headers["content-type"] == "application/wasm"
    assert answer.headers["cache-control"].endswith("immutable")
    assert httpx.get(server.base_url + "/manifest.json").headers["cache-control"] == "no-cache"
    assert httpx.get(server.base_url + "/app.bundle.css").status_code == 200


def test_index_html_is_revalidated(browser: httpx.Client) -> None:
    first = browser.get("/viewer")
    again = browser.get("/viewer", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_a_share_link_opens_the_viewer_page_only(server: RunningServer) -> None:
    created = httpx.post(
        server.base_url + "/api/shares", headers=server.headers, json={"study_instance_uid": STUDY}
    )
    assert created.status_code == 201, created.text
    with httpx.Client(base_url=server.base_url) as holder:
        assert holder.get(urlsplit(created.json()["url"]).path).status_code == 200  # sets the share cookie
        page = holder.get(f"/viewer?StudyInstanceUIDs={STUDY}")
        assert page.status_code == 200 and '<div id="root">' in page.text
        assert holder.get("/").status_code == 403  # the study list is not for a share link
        assert holder.get("/api/studies").status_code == 403


@pytest.mark.parametrize(
    "path",
    ["/..%2f..%2fetc/passwd", "/assets/../../pyproject.toml", "/%2e%2e/pyproject.toml", "/.installed"],
)
def test_nothing_outside_the_folder(server: RunningServer, path: str) -> None:
    # http.client sends the path as written (httpx would resolve the dot segments itself)
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    try:
        connection.request("GET", path, headers=server.headers)
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    assert answer.status in (400, 404), (path, answer.status)
    assert b"root:" not in body and b"[project]" not in body
