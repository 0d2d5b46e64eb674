"""The study list and the upload page in a real browser: a radiologist uploads files and a folder through
/upload and watches the progress, finds the study in /studies, opens it, shares it through the dialog and
deletes it through the confirmation; a study someone else stored is refused; a viewer may open only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.uid import generate_uid

from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.domain.accounts import Role
from tests.support.browser import Console, browser, logged_in, screenshot
from tests.support.dicom import part10
from tests.support.server import RunningServer, running_server

__all__ = ["browser"]  # the fixture, for pytest

PASSWORD = "correct horse battery staple"
PRIOR = generate_uid()  # stored by an import, not by the radiologist
MANY = 52  # studies of one patient: more than a page of 50
IN_FOLDER = 22  # instances: more than one request of 20
UPLOADED, UPLOADED_SERIES = generate_uid(), generate_uid()
FOLDER, DROPPED, WALKED = generate_uid(), generate_uid(), generate_uid()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("browser-studies") / "data"
    archive = build_archive(load_settings(data_dir=data))
    archive.accounts.add_user("rita", Role.RADIOLOGIST, PASSWORD)
    archive.accounts.add_user("vera", Role.VIEWER, PASSWORD)
    prior = part10(StudyInstanceUID=PRIOR, PatientName="Prior^Paula", PatientID="PID-PRIOR")
    archive.ingest.ingest([prior], "import")
    for n in range(MANY):
        study = part10(
            PatientName="Many^Mo", PatientID="PID-MANY", StudyDate=f"2023{1 + n // 28:02}{1 + n % 28:02}"
        )
        archive.ingest.ingest([study], "import")
    archive.close()
    with running_server(data) as running:
        yield running


def _log_in(
    browser: Any, server: RunningServer, name: str, path: str, width: int = 1280, height: int = 800
) -> tuple[Any, Any, Console]:
    return logged_in(browser, server.base_url + path, name, PASSWORD, width, height)


def _files(folder: Path) -> tuple[list[Path], Path]:
    """Two instances of one study, a text file and a broken DICOM file; and a folder of another study."""
    folder.mkdir()
    picked = []
    for n in (1, 2):
        blob = part10(
            StudyInstanceUID=UPLOADED,
            SeriesInstanceUID=UPLOADED_SERIES,
            InstanceNumber=n,
            PatientName="Upload^Ulla",
            PatientID="PID-UP-1",
            StudyDate="20250301",
            StudyDescription="MR KNEE",
            Modality="MR",
        )
        picked.append(folder / f"knee-{n}.dcm")
        picked[-1].write_bytes(blob)
    picked.append(folder / "notes.txt")
    picked[-1].write_text("not an image")
    picked.append(folder / "broken.dcm")
    picked[-1].write_bytes(bytes(128) + b"DICM" + b"\x01" * 300)  # the magic, then nothing DICOM
    tree = folder / "cd" / "series"
    tree.mkdir(parents=True)
    for n in range(1, IN_FOLDER + 1):
        blob = part10(
            StudyInstanceUID=FOLDER, InstanceNumber=n, PatientName="Folder^Fritz", PatientID="PID-F"
        )
        (tree / f"IM{n}").write_bytes(blob)
    return picked, folder / "cd"


def _summary_says(page: Any, text: str) -> None:
    page.wait_for_function(
        "text => document.getElementById('upload-summary').textContent.startsWith(text)", arg=text
    )


def test_upload_find_open_share_and_delete(server: RunningServer, browser: Any, tmp_path: Path) -> None:
    picked, folder = _files(tmp_path / "files")
    context, page, console = _log_in(browser, server, "rita", "/upload")
    screenshot(page, "upload-empty")
    page.set_input_files("#files", [str(p) for p in picked])
    _summary_says(page, "2 stored, 1 failed, 1 not DICOM")
    page.locator("#stored-studies li").first.wait_for()
    value, maximum = page.eval_on_selector("#progress", "p => [p.value, p.max]")
    assert value == maximum > 0
    assert "(100%)" in page.inner_text("#progress-text")
    failures = dict(
        tuple(row.locator("td").all_inner_texts()) for row in page.locator("#failures tbody tr").all()
    )
    assert failures.keys() == {"notes.txt", "broken.dcm"}
    assert failures["notes.txt"].startswith("not a DICOM file")
    assert failures["broken.dcm"].startswith("not understood")
    stored = page.locator("#stored-studies li")
    assert "Upload Ulla · PID-UP-1 · MR KNEE: 2 instances stored" in stored.inner_text()
    assert stored.get_by_role("link", name="Open in the viewer").get_attribute("href") == (
        f"/viewer?StudyInstanceUIDs={UPLOADED}"
    )
    screenshot(page, "upload-files")

    stows: list[int] = []
    page.on("request", lambda r: r.method == "POST" and "/dicom-web/studies" in r.url and stows.append(1))
    page.set_input_files("#folder", str(folder))  # a folder: its files, in its subfolders too
    _summary_says(page, f"{2 + IN_FOLDER} stored, 1 failed, 1 not DICOM")
    page.locator("#stored-studies li", has_text="Folder Fritz").wait_for()
    assert len(stows) == 2  # 20 files, then 2
    assert page.locator("#failures tbody tr").count() == 2
    screenshot(page, "upload-folder")

    # a file dropped on the page (a script's DataTransfer: the drop event a browser sends)
    dropped = part10(StudyInstanceUID=DROPPED, PatientName="Drop^Dora", PatientID="PID-D")
    page.evaluate(
        """([name, bytes]) => {
          const transfer = new DataTransfer();
          transfer.items.add(new File([new Uint8Array(bytes)], name));
          const drop = new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true });
          document.getElementById("drop").dispatchEvent(drop);
        }""",
        ["dropped.dcm", list(dropped)],
    )
    _summary_says(page, f"{3 + IN_FOLDER} stored, 1 failed, 1 not DICOM")
    page.locator("#stored-studies li", has_text="Drop Dora").wait_for()

    # a dropped folder is walked: readEntries answers part of a folder at a time, subfolders included.
    # A script cannot make a DataTransfer of a folder, so its entries stand in for the file system's.
    walked = part10(StudyInstanceUID=WALKED, PatientName="Walk^Wanda", PatientID="PID-W")
    page.evaluate(
        """(bytes) => {
          const file = (path, parts) => ({ isFile: true, isDirectory: false, fullPath: path,
            file: (ok) => ok(new File(parts, path.split("/").pop())) });
          const folder = (path, chunks) => ({ isFile: false, isDirectory: true, fullPath: path,
            createReader: () => {
              const left = [...chunks, []];
              return { readEntries: (ok) => ok(left.shift()) };
            } });
          const tree = folder("/scan", [
            [file("/scan/image", [new Uint8Array(bytes)])],
            [folder("/scan/sub", [[file("/scan/sub/readme.txt", ["hello"])]])],
          ]);
          DataTransferItem.prototype.webkitGetAsEntry = () => tree;
          const transfer = new DataTransfer();
          transfer.items.add(new File(["stand-in"], "scan"));
          const drop = new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true });
          document.body.dispatchEvent(drop);
        }""",
        list(walked),
    )
    _summary_says(page, f"{4 + IN_FOLDER} stored, 1 failed, 2 not DICOM")
    page.locator("#stored-studies li", has_text="Walk Wanda").wait_for()
    assert "scan/sub/readme.txt" in page.locator("#failures tbody").inner_text()

    # the study list finds the upload by the start of the patient's name, whatever its case
    page.goto(server.base_url + "/studies")
    page.fill("#f-name", "upload")
    with page.expect_navigation():
        page.press("#f-name", "Enter")
    assert page.url == server.base_url + "/studies?PatientName=upload"  # empty fields left out
    row = page.locator(f'tr[data-uid="{UPLOADED}"]')
    row.wait_for()
    assert page.locator("#studies tbody tr").count() == 1
    cells = row.locator("td").all_inner_texts()
    assert cells[:6] == ["Upload, Ulla\nPID-UP-1", "2025-03-01", "MR KNEE", "ACC-1", "MR", "1 / 2"]
    assert (
        row.get_by_role("link", name="Open").get_attribute("href") == f"/viewer?StudyInstanceUIDs={UPLOADED}"
    )
    screenshot(page, "studies-search")

    # share it, de-identified, through the dialog
    row.get_by_role("button", name="Share…").click()
    dialog = page.locator("#share-dialog")
    assert dialog.is_visible() and "Upload, Ulla (PID-UP-1): MR KNEE, 2025-03-01" in dialog.inner_text()
    page.fill("#share-days", "3")
    page.check("#share-deidentify")
    page.fill("#share-note", "for Dr. Outside")
    page.get_by_role("button", name="Create the link").click()
    page.locator("#share-result").wait_for()
    link = page.input_value("#share-link")
    assert link.startswith(server.base_url + "/share/lbs_")
    page.get_by_role("button", name="Copy").click()
    page.wait_for_function("document.getElementById('share-copied').textContent !== ''")
    screenshot(page, "studies-share-dialog")
    page.get_by_role("button", name="Close").click()
    landing = httpx.get(link)
    assert landing.status_code == 200 and "A de-identified study" in landing.text
    assert "Ulla" not in landing.text
    shares = httpx.get(server.base_url + "/api/shares", headers=server.headers).json()
    made = next(s for s in shares if s["note"] == "for Dr. Outside")
    assert (made["study_instance_uid"], made["deidentify"], made["created_by"]) == (UPLOADED, True, "rita")

    # delete it: the dialog names the study and waits for the word
    row.get_by_role("button", name="Delete…").click()
    assert "Upload, Ulla (PID-UP-1): MR KNEE, 2025-03-01" in page.inner_text("#delete-what")
    confirm = page.get_by_role("button", name="Delete the study")
    assert confirm.is_disabled()
    page.fill("#delete-confirm", "delete")
    assert confirm.is_enabled()
    screenshot(page, "studies-delete-dialog")
    confirm.click()
    row.wait_for(state="detached")
    assert "Deleted Upload, Ulla" in page.inner_text("#studies-done")
    gone = httpx.get(
        server.base_url + "/dicom-web/studies", params={"StudyInstanceUID": UPLOADED}, headers=server.headers
    )
    assert gone.status_code == 204
    page.reload()
    page.wait_for_function("document.getElementById('studies-status').textContent !== 'Searching…'")
    assert page.inner_text("#studies-status") == "No study matches the search."
    assert console.errors == [], console.errors

    # the folder's study opens in the viewer
    page.goto(server.base_url + "/studies?PatientID=PID-F")
    with page.expect_response(lambda r: "/frames/" in r.url, timeout=60_000) as frame:
        page.locator(f'tr[data-uid="{FOLDER}"]').get_by_role("link", name="Open").click()
    assert frame.value.status == 200
    assert page.url == server.base_url + f"/viewer?StudyInstanceUIDs={FOLDER}"
    assert console.errors == [], console.errors
    context.close()


def test_pages_of_fifty_newest_first(server: RunningServer, browser: Any) -> None:
    context, page, console = _log_in(
        browser, server, "vera", "/studies?PatientID=PID-MANY", 1024, 768
    )  # a tablet
    rows = page.locator("#studies tbody tr")
    rows.first.wait_for()
    assert rows.count() == 50
    dates = rows.locator("td:nth-child(2)").all_inner_texts()
    assert dates == sorted(dates, reverse=True)  # stored in the order of their dates: the last first
    assert page.locator("#previous").is_hidden()
    screenshot(page, "studies-page-1")
    with page.expect_navigation():
        page.get_by_role("link", name="Next →").click()
    assert page.url.endswith("/studies?PatientID=PID-MANY&offset=50")
    page.locator("#studies tbody tr").first.wait_for()
    assert rows.count() == MANY - 50 and page.locator("#next").is_hidden()
    assert page.inner_text("#studies-status") == f"Studies 51\N{EN DASH}{MANY}, the last stored first."
    assert rows.locator("td:nth-child(2)").all_inner_texts() == ["2023-01-02", "2023-01-01"]  # stored first
    with page.expect_navigation():
        page.get_by_role("link", name="← Previous").click()
    assert page.url.endswith("/studies?PatientID=PID-MANY")
    # a name as the list shows it finds the patient
    page.fill("#f-name", "many, m")
    with page.expect_navigation():
        page.get_by_role("button", name="Search").click()
    assert page.url.endswith("/studies?PatientName=many%2C+m&PatientID=PID-MANY")
    # a viewer opens studies; sharing and deleting are not offered
    rows.first.wait_for()
    assert page.get_by_role("link", name="Open").count() == 50
    assert page.get_by_role("button", name="Share…").count() == 0
    assert page.get_by_role("button", name="Delete…").count() == 0
    assert console.errors == [], console.errors
    context.close()


def test_a_radiologist_may_not_delete_what_others_stored(server: RunningServer, browser: Any) -> None:
    context, page, console = _log_in(browser, server, "rita", "/studies?PatientID=PID-PRIOR")
    row = page.locator(f'tr[data-uid="{PRIOR}"]')
    row.get_by_role("button", name="Delete…").click()
    page.fill("#delete-confirm", "DELETE")
    page.get_by_role("button", name="Delete the study").click()
    error = page.locator("#delete-error")
    error.wait_for()
    assert error.inner_text() == (
        f"Not allowed: study {PRIOR} holds instances rita did not store: ask an administrator"
    )
    assert error.get_attribute("role") == "alert"
    screenshot(page, "studies-delete-refused")
    page.get_by_role("button", name="Cancel").click()
    assert row.is_visible()
    still = httpx.get(
        server.base_url + "/dicom-web/studies", params={"StudyInstanceUID": PRIOR}, headers=server.headers
    )
    assert still.status_code == 200
    # the browser logs the refused request; nothing else went wrong
    assert [e for e in console.errors if "403" not in e] == [], console.errors
    context.close()


def test_a_viewer_may_not_upload(server: RunningServer, browser: Any, tmp_path: Path) -> None:
    image = tmp_path / "image.dcm"
    image.write_bytes(part10(PatientID="PID-VIEWER"))
    context, page, console = _log_in(browser, server, "vera", "/upload")
    page.set_input_files("#files", str(image))
    error = page.locator("#upload-error")
    error.wait_for()
    assert error.inner_text().startswith("Your account may not store: user vera (viewer) may not store")
    assert page.inner_text("#upload-summary") == "0 stored, 1 failed"
    screenshot(page, "upload-refused")
    assert [e for e in console.errors if "403" not in e] == [], console.errors
    context.close()
