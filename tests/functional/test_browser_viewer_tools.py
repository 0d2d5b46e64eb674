"""The viewer in a real browser against ``lightbox serve``, for every transfer syntax the archive stores
and every tool a reader uses: each syntax's first image is drawn; a multi-frame object scrolls frame by
frame; the study list lists, filters and expands; window/level presets, zoom, pan, a length measurement,
cine and the MPR layout all work on a CT series; and no page logs an error on its console."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydicom.uid import generate_uid

from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.domain.accounts import Role
from lightbox.domain.compression import Codec
from lightbox.formats import lossless
from tests.support.browser import Console, browser, log_in, screenshot
from tests.support.dicom import ct_volume, restamped
from tests.support.server import RunningServer, running_server
from tests.support.viewer import canvas_stats, overlay, viewport_wrapper, wait_for_image

__all__ = ["browser"]  # the fixture, for pytest

PASSWORD = "correct horse battery staple"
# One study per stored transfer syntax, from pydicom's test files: label -> file
SYNTAXES = {
    "explicit-little-endian": "CT_small.dcm",
    "implicit-little-endian": "MR_small_implicit.dcm",
    "explicit-big-endian": "MR_small_bigendian.dcm",
    "deflated": "image_dfl.dcm",
    "jpeg-baseline": "SC_rgb_jpeg_dcmtk.dcm",
    "jpeg-baseline-422": "SC_rgb_dcmtk_+eb+cy+np.dcm",
    "jpeg-extended-12bit": "JPEG-lossy.dcm",
    "jpeg-lossless": "JPEG-LL.dcm",
    "jpeg-ls-lossless": "MR_small_jpeg_ls_lossless.dcm",
    "jpeg-ls-near-lossless": "JPEGLSNearLossless_16.dcm",
    "jpeg-2000-lossless": "MR_small_jp2klossless.dcm",
    "jpeg-2000": "JPEG2000.dcm",
    "htj2k-lossless": "MR_small.dcm",  # HTJ2K-encoded here, as the archive's compression does
    "rle-lossless": "MR_small_RLE.dcm",
    "multi-frame-native": "emri_small.dcm",
    "multi-frame-rle": "emri_small_RLE.dcm",
    "multi-frame-jpeg-baseline": "examples_ybr_color.dcm",
    "multi-frame-jpeg-ls": "emri_small_jpeg_ls_lossless.dcm",
}
MULTI_FRAME = {  # label -> frames
    "multi-frame-native": 10,
    "multi-frame-rle": 10,
    "multi-frame-jpeg-baseline": 30,
    "multi-frame-jpeg-ls": 10,
}
CT_SLICES = 40  # stored in JPEG-LS lossless, as the archive's default compression leaves CT series
# Files of bare image attributes, stored as they are, without a Modality: the study list still lists every
# study (OHIF 3.13's worklist showed none when one study answered an empty ModalitiesInStudy)
BARE = {"JPEGLSNearLossless_16.dcm": {"SeriesNumber": 1, "InstanceNumber": 1}}


@dataclass(frozen=True)
class Archive:
    server: RunningServer
    studies: dict[str, str]  # label -> Study Instance UID
    ct_study: str


def _syntax_study(label: str, name: str) -> bytes:
    attrs = {
        "PatientName": f"Syntax^{label}",
        "PatientID": f"TS-{label}",
        "StudyDescription": f"Transfer syntax {label}",
        "SeriesDescription": label,
        "StudyDate": "20240102",
        **BARE.get(name, {}),
    }
    blob = restamped(name, **attrs)
    return lossless.compress(blob, Codec.HTJ2K) if label == "htj2k-lossless" else blob


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    data = tmp_path_factory.mktemp("browser-tools") / "data"
    stored = build_archive(load_settings(data_dir=data))
    stored.accounts.add_user("rita", Role.RADIOLOGIST, PASSWORD)
    studies = {}
    for label, name in SYNTAXES.items():
        studies[label] = stored.ingest.ingest([_syntax_study(label, name)], "t").study_instance_uid
    ct_study = generate_uid()
    for blob in ct_volume(ct_study, CT_SLICES, 128, PatientName="Volume^CT", PatientID="CT-MPR"):
        stored.ingest.ingest([lossless.compress(blob, Codec.JPEG_LS)], "t")
    stored.close()
    with running_server(data) as server:
        yield Archive(server, studies, ct_study)


@pytest.fixture(scope="module")
def context(archive: Archive, browser: Any) -> Iterator[Any]:
    """One logged-in browser for the module: its pages share the cache of the viewer's files."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    log_in(context.new_page(), archive.server.base_url + "/", "rita", PASSWORD)
    yield context
    context.close()


@pytest.fixture
def page(context: Any) -> Iterator[tuple[Any, Console]]:
    """A new page of the logged-in browser, its console watched."""
    page, console = context.new_page(), Console()
    console.watch(page)
    page.set_default_timeout(60_000)
    yield page, console
    page.close()


def _open(page: Any, archive: Archive, study: str) -> dict[str, float]:
    page.goto(archive.server.base_url + f"/viewer?StudyInstanceUIDs={study}")
    return wait_for_image(page)


def _middle(page: Any, index: int = 0) -> tuple[float, float]:
    """The middle of viewport ``index``, the mouse moved there."""
    box = page.locator(".cornerstone-viewport-element").nth(index).bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    return x, y


def _drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=10)
    page.mouse.up()


def _changed(page: Any, before: Any, read: Any, timeout: float = 30.0) -> Any:
    """Poll ``read()`` until it differs from ``before`` (the viewer renders asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value != before or time.monotonic() > deadline:
            return value
        page.wait_for_timeout(100)


@pytest.mark.parametrize("label", [label for label in SYNTAXES if label not in MULTI_FRAME])
def test_the_first_image_of_every_transfer_syntax_is_drawn(
    archive: Archive, page: tuple[Any, Console], label: str
) -> None:
    tab, console = page
    stats = _open(tab, archive, archive.studies[label])
    screenshot(tab, f"viewer-syntax-{label}")
    assert stats["lit"] > 0.01, stats  # more than a few specks
    assert console.errors == [], console.errors


@pytest.mark.parametrize(("label", "frames"), MULTI_FRAME.items())
def test_a_multi_frame_object_scrolls_frame_by_frame(
    archive: Archive, page: tuple[Any, Console], label: str, frames: int
) -> None:
    tab, console = page
    first = _open(tab, archive, archive.studies[label])["hash"]
    viewport = viewport_wrapper(tab)
    assert _reads(tab, f"(1/{frames})", lambda: _frame(viewport)) == f"(1/{frames})"
    _middle(tab)
    tab.mouse.wheel(0, 120)  # a frame further with the wheel...
    assert _reads(tab, f"(2/{frames})", lambda: _frame(viewport)) == f"(2/{frames})"
    second = _changed(tab, first, lambda: _hash(tab))
    tab.keyboard.press("ArrowDown")  # ...and one more with the hotkey
    assert _reads(tab, f"(3/{frames})", lambda: _frame(viewport)) == f"(3/{frames})"
    third = _changed(tab, second, lambda: _hash(tab))
    screenshot(tab, f"viewer-frames-{label}")
    assert len({first, second, third}) == 3, "the frames drawn do not differ"
    assert console.errors == [], console.errors


def _frame(viewport: Any) -> str:
    """The "(n/N)" part of the slice overlay."""
    return overlay(viewport)[1].rpartition(" ")[2]


def _hash(page: Any, index: int = 0) -> float:
    stats = canvas_stats(page, index)
    assert stats is not None
    return stats["hash"]


def test_the_study_list_lists_filters_and_opens_studies(archive: Archive, page: tuple[Any, Console]) -> None:
    tab, console = page
    queries: list[Any] = []
    tab.on("response", lambda r: "/dicom-web/studies?" in r.url and queries.append(r))
    tab.goto(archive.server.base_url + "/")
    rows = tab.locator("tbody tr", has_text="Syntax")
    rows.first.wait_for()
    assert rows.count() == len(SYNTAXES)
    assert tab.locator("tbody tr", has_text="Volume").count() == 1
    screenshot(tab, "study-list")

    tab.locator("input").first.fill("Volume")  # the patient name filter: a new search
    tab.wait_for_function("() => !document.querySelector('tbody').innerText.includes('Syntax')")
    row = tab.locator("tbody tr", has_text="Volume")
    assert row.count() == 1
    row.click()  # the study's series, in the panel beside the list
    # one CT series of 40 images, as a series search finds it
    tab.wait_for_function("() => /Modality \\/ Series\\s+CT\\s+40\\b/.test(document.body.innerText)")
    screenshot(tab, "study-list-filtered")
    # the list's QIDO search: paged, fuzzy, with the attributes it shows (fewer studies than a page are
    # filtered in the browser, without searching again)
    assert queries and [q.status for q in queries] == [200] * len(queries)
    for parameter in ("limit=", "offset=", "fuzzymatching=true", "includefield="):
        assert parameter in queries[0].url, queries[0].url

    tab.get_by_role("button", name="Basic Viewer").click()
    wait_for_image(tab)
    assert f"StudyInstanceUIDs={archive.ct_study}" in tab.url
    tab.locator("[data-cy=study-browser-thumbnail] img").first.wait_for()
    # looked up again each time: the panel may draw the thumbnail's element anew while it loads
    tab.wait_for_function(
        "() => { const img = document.querySelector('[data-cy=study-browser-thumbnail] img');"
        " return !!img && img.complete && img.naturalWidth > 0; }"
    )
    assert "40" in tab.locator("[data-cy=study-browser-thumbnail]").first.inner_text()
    screenshot(tab, "study-list-opened")
    assert console.errors == [], console.errors


def test_window_level_presets_zoom_and_pan(archive: Archive, page: tuple[Any, Console]) -> None:
    tab, console = page
    _open(tab, archive, archive.ct_study)
    viewport = viewport_wrapper(tab)
    window = lambda: overlay(viewport)[0]  # noqa: E731
    assert _reads(tab, "W: 400 L: 40", window) == "W: 400 L: 40"  # the images' own window
    middle = _middle(tab)
    # the presets' hotkeys: lung, liver, bone, then back to soft tissue
    for key, expected in (("2", "W: 1500 L: -600"), ("3", "W: 150 L: 90"), ("4", "W: 2500 L: 480")):
        tab.keyboard.press(key)
        assert _reads(tab, expected, window) == expected, key
    screenshot(tab, "viewer-preset-bone")
    tab.keyboard.press("1")
    assert _reads(tab, "W: 400 L: 40", window) == "W: 400 L: 40"

    drawn = _hash(tab)
    tab.locator("[data-cy=Zoom-btn]").click()
    _drag(tab, middle, (middle[0], middle[1] - 150))  # dragging up zooms in
    zoomed = _changed(tab, drawn, lambda: _hash(tab))
    assert zoomed != drawn, "zoom changed nothing"
    tab.locator("[data-cy=Pan-btn]").click()
    _drag(tab, middle, (middle[0] + 120, middle[1] + 60))
    assert _changed(tab, zoomed, lambda: _hash(tab)) != zoomed, "pan changed nothing"
    screenshot(tab, "viewer-zoom-pan")
    assert overlay(viewport)[0] == "W: 400 L: 40"  # neither touched the window
    assert console.errors == [], console.errors


def _reads(page: Any, expected: Any, read: Any, timeout: float = 30.0) -> Any:
    """Poll ``read()`` until it returns ``expected``; the last value read."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value == expected or time.monotonic() > deadline:
            return value
        page.wait_for_timeout(100)


def test_a_length_measurement_is_listed_in_millimetres(archive: Archive, page: tuple[Any, Console]) -> None:
    tab, console = page
    _open(tab, archive, archive.ct_study)
    box = tab.locator(".cornerstone-viewport-element").first.bounding_box()
    assert box is not None
    x, y = _middle(tab)
    tab.locator("[data-cy=Length-btn]").click()
    _drag(tab, (x - 100, y), (x + 100, y))
    tab.get_by_role("button", name="Yes", exact=True).click()  # track measurements for this series
    tab.locator("[data-cy=trackedMeasurements-btn]").click()
    row = tab.locator("[data-cy=measurement-table-row-0]")
    row.wait_for()
    screenshot(tab, "viewer-length")
    found = re.search(r"(\d+(?:\.\d+)?) mm", row.inner_text())
    assert found, row.inner_text()
    # 128 mm of image fit the viewport's smaller side: 200 pixels of it are that many millimetres
    expected = 200 * 128 / min(box["width"], box["height"])
    assert abs(float(found.group(1)) - expected) < 0.1 * expected, (found.group(0), expected)
    assert console.errors == [], console.errors


def test_cine_plays_through_the_slices(archive: Archive, page: tuple[Any, Console]) -> None:
    tab, console = page
    _open(tab, archive, archive.ct_study)
    viewport = viewport_wrapper(tab)
    before = overlay(viewport)[1]
    tab.locator("[data-cy=MoreTools-split-button-secondary]").click()
    tab.locator("[data-cy=Cine]").click()
    play = tab.locator("[data-cy=cine-player-play-pause]")
    play.click()
    first = _changed(tab, before, lambda: overlay(viewport)[1])
    second = _changed(tab, first, lambda: overlay(viewport)[1])
    play.click()
    screenshot(tab, "viewer-cine")
    assert len({before, first, second}) == 3, (before, first, second)
    assert console.errors == [], console.errors


def test_the_mpr_layout_shows_three_planes(archive: Archive, page: tuple[Any, Console]) -> None:
    tab, console = page
    _open(tab, archive, archive.ct_study)
    tab.locator("[data-cy=Layout]").click()
    tab.locator("[data-cy=MPR]").click()
    tab.wait_for_function("() => document.querySelectorAll('.cornerstone-viewport-element').length === 3")
    drawn = [wait_for_image(tab, index)["hash"] for index in range(3)]
    screenshot(tab, "viewer-mpr")
    assert len(set(drawn)) == 3, "the three planes look alike"
    texts = [" ".join(viewport_wrapper(tab, index).inner_text().split()) for index in range(3)]
    assert f"/{CT_SLICES})" in texts[0], texts  # axial: a slice of the series
    assert "/128" in texts[1] and "/128" in texts[2], texts  # sagittal, coronal: 128 planes each way
    assert console.errors == [], console.errors


# What OHIF 3.13's study list sends once the archive holds more studies than its page of 101 (its
# mapParams): filters wrapped in wildcards, the patient ID by tag number, fuzzy matching, paging, and the
# attributes it shows by tag number
LIST_PARAMETERS = "fuzzymatching=true&includefield=00081030%2C00080060%2C00080090%2C00100030"


def test_the_searches_the_study_list_sends(archive: Archive) -> None:
    def found(query: str) -> list[str]:
        response = http.get(f"/dicom-web/studies?{query}&{LIST_PARAMETERS}")
        assert response.status_code == 200, (query, response.text)
        studies = response.json()
        assert all("00081030" in study and "00080090" in study for study in studies), studies
        return [study["0020000D"]["Value"][0] for study in studies]

    labels = {uid: label for label, uid in archive.studies.items()} | {archive.ct_study: "ct"}
    with archive.server.client() as http:
        assert found("PatientName=*olume*&limit=101&offset=0") == [archive.ct_study]
        assert found("00100020=*CT-MPR*&limit=101&offset=0") == [archive.ct_study]
        assert found("00100010=*olume*&limit=101&offset=0") == [archive.ct_study]  # a tag number
        j2k = found("StudyDescription=*jpeg-2000*&limit=101&offset=0")
        assert sorted(labels[uid] for uid in j2k) == ["jpeg-2000", "jpeg-2000-lossless"]
        ct = found("ModalitiesInStudy=CT&limit=101&offset=0")
        assert sorted(labels[uid] for uid in ct) == ["ct", "explicit-little-endian"]
        assert len(found("StudyDate=20240101-20240103&limit=101&offset=0")) == len(labels)
        pages = [found(f"limit=7&offset={offset}") for offset in (0, 7, 14)]
        assert [len(page) for page in pages] == [7, 7, len(labels) - 14]
        assert sorted(uid for page in pages for uid in page) == sorted(labels)  # each study once
