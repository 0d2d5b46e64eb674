"""The page a share link opens, as HTML: it names the study (escaped) unless the link de-identifies it,
says until when the link works, links to the images and goes on to them; a link that no longer works
answers a page that says so."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from pydicom.uid import generate_uid

from lightbox.app import build_archive
from lightbox.config import load_settings
from tests.support.dicom import part10
from tests.support.server import RunningServer, running_server

STUDY = generate_uid()
NAME = 'O<b>Brien & "Sons"^Mary<script>'  # a hostile name: the page shows it as text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("share-page") / "data"
    archive = build_archive(load_settings(data_dir=data))
    blob = part10(
        StudyInstanceUID=STUDY,
        PatientName=NAME,
        PatientID="MRN-4711",
        StudyDescription="CT <thorax> & more",
        StudyDate="20240315",
    )
    archive.ingest.ingest([blob], "t")
    archive.close()
    with running_server(data) as running:
        yield running


def _share(server: RunningServer, **body: object) -> dict[str, str]:
    answer = httpx.post(
        server.base_url + "/api/shares", json={"study_instance_uid": STUDY, **body}, headers=server.headers
    )
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_the_page_names_the_study_escaped_and_until_when(server: RunningServer) -> None:
    created = _share(server, days=2)
    page = httpx.get(created["url"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    text = page.text
    assert "O&lt;b&gt;Brien &amp; &#34;Sons&#34;, Mary&lt;script&gt;" in text  # as text, never as markup
    assert "<b>Brien" not in text and "Mary<script>" not in text
    assert "CT &lt;thorax&gt; &amp; more" in text and "2024-03-15" in text
    expires = datetime.fromisoformat(created["expires_at"])
    shown = re.search(r'<time id="expires" datetime="([^"]+)">([^<]+)</time>', text)
    assert shown, text
    assert datetime.fromisoformat(shown.group(1)) == expires.replace(microsecond=0)
    assert shown.group(2) == f"{expires:%Y-%m-%d %H:%M} UTC"
    viewer = f"/viewer?StudyInstanceUIDs={STUDY}"
    assert f'<a id="open-images" class="button" href="{viewer}">Open the images</a>' in text
    assert '<script src="/static/share.js" defer></script>' in text  # which follows that link at once
    assert "<nav" not in text and "Log out" not in text  # an outside doctor: no navigation of the app
    script = httpx.get(server.base_url + "/static/share.js")
    assert script.status_code == 200 and "open-images" in script.text


def test_a_deidentified_link_names_no_one(server: RunningServer) -> None:
    text = httpx.get(_share(server, deidentify=True)["url"]).text
    assert "A de-identified study" in text
    for secret in ("Brien", "Mary", "MRN-4711", "thorax", "2024-03-15"):
        assert secret not in text, secret
    assert f'href="/viewer?StudyInstanceUIDs={STUDY}"' in text


def test_a_link_that_no_longer_works_says_so(server: RunningServer) -> None:
    created = _share(server)
    revoked = httpx.delete(server.base_url + f"/api/shares/{created['id']}", headers=server.headers)
    assert revoked.status_code == 200
    gone = httpx.get(created["url"])
    assert gone.status_code == 410 and gone.headers["content-type"].startswith("text/html")
    assert "This link has expired or was revoked" in gone.text and "Open the images" not in gone.text
    assert "Brien" not in gone.text and "lightbox_share" not in gone.headers.get("set-cookie", "")
    wrong = httpx.get(server.base_url + "/share/lbs_" + "x" * 43)
    assert wrong.status_code == 404 and "This link is not valid" in wrong.text
