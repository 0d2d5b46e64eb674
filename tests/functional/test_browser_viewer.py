"""The diagnostic viewer in a real browser against ``lightbox serve``: a deep link goes through the login
page and straight to the images; the viewer finds the study over QIDO-RS, reads its metadata and frames
over WADO-RS, and draws the first image, without console errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydicom.uid import generate_uid

from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.domain.accounts import Role
from tests.support.browser import Console, browser, screenshot
from tests.support.dicom import ct_volume, make_dataset, to_part10
from tests.support.server import RunningServer, running_server
from tests.support.viewer import overlay, viewport_wrapper

__all__ = ["browser"]  # the fixture, for pytest

PASSWORD = "correct horse battery staple"
STUDY = generate_uid()
SLICES, SIZE = 5, 64
ACCESSION = "RIS-0042"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("browser-viewer") / "data"
    archive = build_archive(load_settings(data_dir=data))
    archive.accounts.add_user("rita", Role.RADIOLOGIST, PASSWORD)
    for blob in ct_volume(
        STUDY, SLICES, SIZE, SeriesDescription="Lightbox viewer test", AccessionNumber=ACCESSION
    ):
        archive.ingest.ingest([blob], "t")
    archive.close()
    with running_server(data) as running:
        yield running


def test_a_deep_link_goes_through_the_login_to_the_images(server: RunningServer, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page, console = context.new_page(), Console()
    console.watch(page)
    deep_link = f"/viewer?StudyInstanceUIDs={STUDY}"
    page.goto(server.base_url + deep_link)
    assert page.url.startswith(server.base_url + "/login?next=")  # the login first
    page.fill("#username", "rita")
    page.fill("#password", PASSWORD)
    with page.expect_response(lambda r: "/frames/" in r.url, timeout=60_000) as first_frame:
        page.press("#password", "Enter")
    assert first_frame.value.status == 200, first_frame.value.url
    assert page.url == server.base_url + deep_link  # then straight to the images
    page.locator("canvas").first.wait_for(state="visible", timeout=30_000)
    page.wait_for_timeout(1500)  # the first frame decoded and drawn
    screenshot(page, "viewer-first-image")
    viewport = page.locator(".cornerstone-viewport-element").first
    wrapper = viewport_wrapper(page)
    before_wl, before_slice = overlay(wrapper)
    assert before_wl == "W: 400 L: 40"

    # window/level with the mouse (the primary button's tool), then a slice further with the wheel
    box = viewport.bounding_box()
    assert box is not None
    middle_x, middle_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(middle_x, middle_y)
    page.mouse.down()
    page.mouse.move(middle_x + 80, middle_y + 40, steps=8)
    page.mouse.up()
    page.mouse.wheel(0, 120)
    page.wait_for_timeout(800)
    after_wl, after_slice = overlay(wrapper)
    screenshot(page, "viewer-window-level-and-scroll")
    assert after_wl != before_wl, after_wl
    assert after_slice != before_slice, after_slice
    assert console.errors == [], console.errors
    context.close()


def test_an_accession_number_link_opens_its_study(server: RunningServer, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page, console = context.new_page(), Console()
    console.watch(page)
    page.goto(server.base_url + f"/accession/{ACCESSION}")  # as a RIS would open it
    assert page.url.startswith(server.base_url + "/login?next=")
    page.fill("#username", "rita")
    page.fill("#password", PASSWORD)
    with page.expect_response(lambda r: "/frames/" in r.url, timeout=60_000):
        page.press("#password", "Enter")
    assert page.url == server.base_url + f"/viewer?StudyInstanceUIDs={STUDY}"
    screenshot(page, "viewer-by-accession")
    missing = page.request.get(server.base_url + "/accession/NO-SUCH", max_redirects=0)
    assert missing.status == 404 and "NO-SUCH" in missing.text()
    assert page.request.get(server.base_url + "/accession/RIS*", max_redirects=0).status == 400
    assert console.errors == [], console.errors
    context.close()


def test_a_share_link_opens_its_study_in_the_viewer_and_nothing_else(
    server: RunningServer, browser: Any
) -> None:
    other = generate_uid()
    stored = httpx.post(
        server.base_url + "/dicom-web/studies",
        content=_multipart(_other_study(other)),
        headers={**server.headers, "Content-Type": 'multipart/related; type="application/dicom"; boundary=x'},
    )
    assert stored.status_code == 200, stored.text
    link = httpx.post(
        server.base_url + "/api/shares",
        json={"study_instance_uid": STUDY, "days": 1, "note": "browser test"},
        headers=server.headers,
    ).json()["url"]

    context = browser.new_context(viewport={"width": 1280, "height": 800})  # a stranger's fresh browser
    page, console = context.new_page(), Console()
    console.watch(page)
    # without scripts the page stays, and its link is the way on
    still = browser.new_context(viewport={"width": 1280, "height": 800}, java_script_enabled=False)
    landing = still.new_page()
    landing.goto(link)
    viewer = f"/viewer?StudyInstanceUIDs={STUDY}"
    assert landing.get_by_role("link", name="Open the images").get_attribute("href") == viewer
    screenshot(landing, "share-landing")
    still.close()
    # with them, the page goes straight on to the images
    with page.expect_response(lambda r: "/frames/" in r.url, timeout=60_000) as first_frame:
        page.goto(link)
    assert first_frame.value.status == 200
    assert page.url == server.base_url + viewer
    page.locator("canvas").first.wait_for(state="visible", timeout=30_000)
    page.wait_for_timeout(1000)
    screenshot(page, "share-viewer")
    assert console.errors == [], console.errors
    # the same browser reaches nothing else: not the other study, not the study list, not the API
    for path in (f"/dicom-web/studies/{other}/metadata", "/api/studies", "/api/audit"):
        assert page.request.get(server.base_url + path).status == 403, path
    assert page.request.get(server.base_url + "/").status in (401, 403)
    found = page.request.get(server.base_url + "/dicom-web/studies").json()
    assert [s["0020000D"]["Value"][0] for s in found] == [STUDY]
    context.close()


def _other_study(study: str) -> bytes:
    return to_part10(make_dataset(StudyInstanceUID=study, PatientID="SOMEONE-ELSE"))


def _multipart(blob: bytes) -> bytes:
    return b"--x\r\nContent-Type: application/dicom\r\n\r\n" + blob + b"\r\n--x--\r\n"
